//! Unit tests of the boundary itself (the C programs in tests/c cover the ABI from C).

use super::*;

#[test]
fn every_core_error_maps_to_its_own_code() {
    use crate::session::Status;
    use crate::token::Refusal;
    let errors = [
        Error::MissingApiKey,
        Error::InvalidApiKey,
        Error::ApiKeyRevoked,
        Error::ApiKeyExpired,
        Error::InsufficientScope { required: "admin:all" },
        Error::RateLimited { window: "minute".into(), limit: 1, retry_after: 1 },
        Error::ConcurrentSessionLimit { limit: 1 },
        Error::invalid("f", "m"),
        Error::NotFound { resource: "session" },
        Error::Forbidden("no"),
        Error::AlreadyExists { resource: "worker" },
        Error::InvalidTransition { from: Status::Completed, event: "connect" },
        Error::InvalidToken { reason: Refusal::Expired },
        Error::NoWorkerAvailable,
        Error::PayloadTooLarge,
        Error::config("f", "m"),
        Error::Unavailable("down".into()),
        Error::Internal("bug".into()),
    ];
    for error in &errors {
        let result = astack_result::from(error);
        assert_eq!(result.code_cstr().to_str().unwrap(), error.code(), "{error:?}");
    }
}

#[test]
fn numbers_are_distinct_and_round_trip() {
    let mut seen = std::collections::HashSet::new();
    for result in astack_result::ALL {
        assert!(seen.insert(*result as u32));
        assert_eq!(astack_result::from_u32(*result as u32), Some(*result));
        assert!(!result.message_cstr().to_bytes().is_empty());
    }
    assert_eq!(astack_result::from_u32(9999), None);
}

#[test]
fn a_panic_becomes_an_internal_error() {
    let result = call(|| panic!("boom"));
    assert_eq!(result, ASTACK_INTERNAL_ERROR);
    let mut out: *mut c_char = ptr::null_mut();
    let result = json_call(&mut out, || panic!("boom"));
    assert_eq!(result, ASTACK_INTERNAL_ERROR);
    let body = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
    astack_string_free(out);
    assert!(body.contains("internal_error"), "{body}");
}

#[test]
fn version_matches_the_crate() {
    let version = unsafe { CStr::from_ptr(astack_version()) };
    assert_eq!(version.to_str().unwrap(), crate::VERSION);
}
