//! API keys (SPEC §2): format and checksum, digests, plaintext returned once, revocation,
//! rotation, expiry, `last_used_at`, and who may create keys for which account.

mod common;

use astack::keys::{self, CreateKey};
use astack::limits::KeyLimits;
use astack::{Operation, Permission, Scope};
use common::*;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`), bit by bit: independent of the crate's.
fn zlib_crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn base62_6(mut n: u32) -> String {
    let mut digits = vec![b'0'; 6];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    assert_eq!(n, 0, "a u32 always fits in 6 base62 digits");
    String::from_utf8(digits).unwrap()
}

#[test]
fn the_reference_crc32_is_zlibs() {
    // zlib.crc32(b"123456789") == 0xCBF43926, the standard check value.
    assert_eq!(zlib_crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(base62_6(0), "000000");
    assert_eq!(base62_6(61), "00000z");
    assert_eq!(base62_6(62), "000010");
}

#[test]
fn created_keys_have_the_format_and_a_zlib_checksum() {
    let f = Fixture::new();
    for _ in 0..50 {
        let created = f.key(&["sessions:read"]);
        let key = &created.key;
        assert_eq!(key.len(), 39);
        assert!(key.starts_with("ak_"));
        let random = &key[3..33];
        assert!(random.bytes().all(|b| BASE62.contains(&b)), "{random}");
        assert_eq!(&key[33..], base62_6(zlib_crc32(random.as_bytes())), "checksum of {key}");
        assert_eq!(created.record.prefix, format!("ak_{}", &random[..4]));
        assert!(created.record.id.starts_with("key_"));
        assert!(keys::is_well_formed(key));
    }
}

#[test]
fn keys_with_a_known_checksum_are_well_formed() {
    let random = "0123456789abcdefghijABCDEFGHIJ";
    let key = format!("ak_{random}{}", base62_6(zlib_crc32(random.as_bytes())));
    assert!(keys::is_well_formed(&key));
    // Every single-character change of the checksum is caught.
    for i in 33..39 {
        let mut bytes = key.clone().into_bytes();
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        assert!(!keys::is_well_formed(std::str::from_utf8(&bytes).unwrap()));
    }
}

#[test]
fn malformed_keys_are_invalid_and_unknown_well_formed_keys_too() {
    let f = Fixture::new();
    let real = f.key(&["sessions:read"]).key;
    let mut bad_sum = real.clone().into_bytes();
    bad_sum[38] = if bad_sum[38] == b'a' { b'b' } else { b'a' };
    let candidates = [
        real.replacen("ak_", "ax_", 1),
        real[..38].to_owned(),
        format!("{real}0"),
        real.replacen(&real[5..6], "_", 1),
        String::from_utf8(bad_sum).unwrap(),
        "Bearer".to_owned(),
    ];
    for candidate in &candidates {
        let error = f.denied(candidate, Operation::SessionRead);
        assert_eq!((error.code(), error.status()), ("invalid_api_key", 401), "{candidate}");
    }
    let unknown = keys::generate().unwrap();
    assert_eq!(f.denied(&unknown, Operation::SessionRead).code(), "invalid_api_key");
    let missing = f.denied("", Operation::SessionRead);
    assert_eq!((missing.code(), missing.status()), ("missing_api_key", 401));
}

#[test]
fn digest_is_plain_sha256_without_pepper() {
    let f = Fixture::new();
    let created = f.key(&["sessions:read"]);
    let entry = f.store.key(&created.record.id).unwrap().unwrap();
    let expected: [u8; 32] = Sha256::digest(created.key.as_bytes()).into();
    assert_eq!(entry.digest, expected);
    assert!(f.store.key_by_digest(&expected).unwrap().is_some());
}

#[test]
fn digest_is_hmac_sha256_under_the_pepper() {
    let mut config = config();
    config.key_pepper = Some(astack::config::Secret("a-pepper-of-enough-bytes".into()));
    let f = Fixture::with_config(config);
    let created = f.key(&["sessions:read"]);
    let entry = f.store.key(&created.record.id).unwrap().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"a-pepper-of-enough-bytes").unwrap();
    mac.update(created.key.as_bytes());
    let expected: [u8; 32] = mac.finalize().into_bytes().into();
    assert_eq!(entry.digest, expected);
    let plain: [u8; 32] = Sha256::digest(created.key.as_bytes()).into();
    assert_ne!(entry.digest, plain);
    // And the peppered key authorizes.
    f.auth(&created.key, Operation::SessionRead);
}

#[test]
fn plaintext_is_returned_once_and_never_in_records_or_audit() {
    let f = Fixture::new();
    let created = f.key(&["sessions:read"]);
    assert!(serde_json::to_string(&created).unwrap().contains(&created.key), "returned at creation");
    let rotated = f.engine.rotate_key(&f.admin, &created.record.id, 60).unwrap();
    let texts = [
        serde_json::to_string(&f.engine.get_key(&f.admin, &created.record.id).unwrap()).unwrap(),
        serde_json::to_string(&f.engine.get_key(&f.admin, &rotated.record.id).unwrap()).unwrap(),
        serde_json::to_string(&f.engine.list_keys(&f.admin, 1000).unwrap()).unwrap(),
        serde_json::to_string(&f.engine.audit(&f.admin, 1000).unwrap()).unwrap(),
        format!("{:?}", f.engine),
    ];
    for text in &texts {
        for secret in [&created.key, &rotated.key, &f.admin_key] {
            assert!(!text.contains(secret.as_str()), "plaintext leaked into {text}");
            assert!(!text.contains(&secret[3..33]), "random part leaked into {text}");
        }
    }
    // The record lists only the display prefix.
    assert!(texts[0].contains(&created.record.prefix));
}

#[test]
fn revocation_refuses_the_key_and_is_idempotent() {
    let f = Fixture::new();
    let created = f.key(&["sessions:read"]);
    f.auth(&created.key, Operation::SessionRead);
    f.advance(1000);
    let revoked = f.engine.revoke_key(&f.admin, &created.record.id).unwrap();
    assert_eq!(revoked.revoked_at, Some(f.now()));
    let error = f.denied(&created.key, Operation::SessionRead);
    assert_eq!((error.code(), error.status()), ("api_key_revoked", 401));
    f.advance(1000);
    let again = f.engine.revoke_key(&f.admin, &created.record.id).unwrap();
    assert_eq!(again.revoked_at, revoked.revoked_at, "revoking again changes nothing");
    let audit = f.engine.audit(&f.admin, 1000).unwrap();
    let revocations = audit
        .iter()
        .filter(|r| r.action == "key.revoked" && r.target.as_deref() == Some(&created.record.id))
        .count();
    assert_eq!(revocations, 1);
    expect_code(f.engine.principal(&created.record.id), "api_key_revoked");
    expect_code(f.engine.revoke_key(&f.admin, "key_nope"), "not_found");
}

#[test]
fn rotation_keeps_the_old_key_for_the_grace_period_only() {
    let f = Fixture::new();
    let expires_at = f.now() + 10 * 86_400_000;
    let old = f.create(CreateKey {
        name: Some("svc".into()),
        scopes: strings(&["sessions:read", "billing:read"]),
        permissions: strings(&["session_create"]),
        limits: KeyLimits { requests_per_minute: Some(7), requests_per_hour: None, concurrent_sessions: Some(3) },
        expires_at: Some(expires_at),
        ..Default::default()
    });
    let rotated = f.engine.rotate_key(&f.admin, &old.record.id, 60).unwrap();
    let new = &rotated.record;
    assert_ne!(rotated.key, old.key);
    assert_ne!(new.id, old.record.id);
    assert!(keys::is_well_formed(&rotated.key));
    assert_eq!(new.account_id, old.record.account_id);
    assert_eq!(new.scopes, old.record.scopes);
    assert_eq!(new.permissions, old.record.permissions);
    assert_eq!(new.limits, old.record.limits);
    assert_eq!(new.expires_at, Some(expires_at));
    let old_record = f.engine.get_key(&f.admin, &old.record.id).unwrap();
    assert_eq!(old_record.expires_at, Some(T0 + 60_000));

    f.advance(59_999);
    f.auth(&old.key, Operation::SessionRead);
    f.auth(&rotated.key, Operation::SessionRead);
    f.advance(1);
    let error = f.denied(&old.key, Operation::SessionRead);
    assert_eq!((error.code(), error.status()), ("api_key_expired", 401));
    f.auth(&rotated.key, Operation::SessionRead);
    let audit = f.engine.audit(&f.admin, 1000).unwrap();
    assert!(audit.iter().any(|r| r.action == "key.rotated" && r.target.as_deref() == Some(&new.id)));
}

#[test]
fn rotation_never_extends_the_old_expiry() {
    let f = Fixture::new();
    let old = f.create(CreateKey {
        scopes: strings(&["sessions:read"]),
        expires_at: Some(T0 + 10_000),
        ..Default::default()
    });
    f.engine.rotate_key(&f.admin, &old.record.id, 3600).unwrap();
    assert_eq!(f.engine.get_key(&f.admin, &old.record.id).unwrap().expires_at, Some(T0 + 10_000));
    // Zero grace: the old key stops at once.
    let other = f.key(&["sessions:read"]);
    f.engine.rotate_key(&f.admin, &other.record.id, 0).unwrap();
    assert_eq!(f.denied(&other.key, Operation::SessionRead).code(), "api_key_expired");
    expect_field(f.engine.rotate_key(&f.admin, &other.record.id, 31 * 86_400), "grace_period_seconds");
    f.engine.revoke_key(&f.admin, &other.record.id).unwrap();
    expect_code(f.engine.rotate_key(&f.admin, &other.record.id, 10), "invalid_request");
}

#[test]
fn keys_expire_at_their_expiry() {
    let f = Fixture::new();
    let created = f.create(CreateKey {
        scopes: strings(&["sessions:read"]),
        expires_at: Some(T0 + 5_000),
        ..Default::default()
    });
    f.advance(4_999);
    f.auth(&created.key, Operation::SessionRead);
    f.advance(1);
    assert_eq!(f.denied(&created.key, Operation::SessionRead).code(), "api_key_expired");
    expect_code(f.engine.principal(&created.record.id), "api_key_expired");
    let past = CreateKey { scopes: strings(&["sessions:read"]), expires_at: Some(f.now()), ..Default::default() };
    expect_field(f.engine.create_key(&f.admin, past), "expires_at");
}

#[test]
fn last_used_at_follows_authorized_use() {
    let f = Fixture::new();
    let created = f.key(&["sessions:read"]);
    assert_eq!(created.record.last_used_at, None);
    f.advance(2_500);
    f.auth(&created.key, Operation::SessionRead);
    assert_eq!(f.engine.get_key(&f.admin, &created.record.id).unwrap().last_used_at, Some(T0 + 2_500));
    f.advance(1_000);
    // A denied request is not a use.
    f.denied(&created.key, Operation::UserRead);
    assert_eq!(f.engine.get_key(&f.admin, &created.record.id).unwrap().last_used_at, Some(T0 + 2_500));
    f.auth(&created.key, Operation::SessionRead);
    assert_eq!(f.engine.get_key(&f.admin, &created.record.id).unwrap().last_used_at, Some(T0 + 3_500));
}

#[test]
fn the_operators_admin_may_create_keys_for_any_account() {
    let f = Fixture::new();
    let created = f.key_in(Some("acme"), &["sessions:write"]);
    assert_eq!(created.record.account_id, "acme");
    let principal = f.auth(&created.key, Operation::SessionCreate);
    assert_eq!(principal.account_id(), "acme");
    assert!(!principal.is_operator());
    // Without account_id, the admin's own account.
    assert_eq!(f.key(&["sessions:read"]).record.account_id, "default");
}

#[test]
fn another_accounts_admin_is_confined_to_its_account() {
    let f = Fixture::new();
    let acme_admin = f.principal(&f.key_in(Some("acme"), &["admin:all"]));
    let own = f
        .engine
        .create_key(&acme_admin, CreateKey { scopes: strings(&["sessions:read"]), ..Default::default() })
        .unwrap();
    assert_eq!(own.record.account_id, "acme");
    let named_own = CreateKey { account_id: Some("acme".into()), scopes: strings(&["users:read"]), ..Default::default() };
    assert_eq!(f.engine.create_key(&acme_admin, named_own).unwrap().record.account_id, "acme");
    let other = CreateKey { account_id: Some("globex".into()), scopes: strings(&["sessions:read"]), ..Default::default() };
    let error = expect_code(f.engine.create_key(&acme_admin, other), "forbidden");
    assert_eq!(error.status(), 403);
    let operator = CreateKey { account_id: Some("default".into()), scopes: strings(&["admin:all"]), ..Default::default() };
    expect_code(f.engine.create_key(&acme_admin, operator), "forbidden");
    // It sees, rotates and revokes only its own account's keys.
    let foreign = f.key_in(Some("globex"), &["sessions:read"]);
    expect_code(f.engine.get_key(&acme_admin, &foreign.record.id), "not_found");
    expect_code(f.engine.rotate_key(&acme_admin, &foreign.record.id, 0), "not_found");
    expect_code(f.engine.revoke_key(&acme_admin, &foreign.record.id), "not_found");
    let listed = f.engine.list_keys(&acme_admin, 1000).unwrap();
    assert!(listed.iter().all(|k| k.account_id == "acme"));
    assert_eq!(listed.len(), 3);
    assert!(f.engine.list_keys(&f.admin, 1000).unwrap().iter().any(|k| k.account_id == "globex"));
}

#[test]
fn a_key_without_admin_cannot_create_keys() {
    let f = Fixture::new();
    let created = f.key(&["sessions:read", "sessions:write", "users:write", "billing:write", "workers:write"]);
    let error = f.denied(&created.key, Operation::Admin);
    assert_eq!((error.code(), error.status()), ("insufficient_scope", 403));
    let principal = f.principal(&created);
    let request = CreateKey { scopes: strings(&["sessions:read"]), ..Default::default() };
    expect_code(f.engine.create_key(&principal, request), "insufficient_scope");
    expect_code(f.engine.rotate_key(&principal, &created.record.id, 0), "insufficient_scope");
    expect_code(f.engine.revoke_key(&principal, &created.record.id), "insufficient_scope");
    expect_code(f.engine.list_keys(&principal, 10), "insufficient_scope");
}

#[test]
fn unknown_or_repeated_scopes_and_flags_name_the_field() {
    let f = Fixture::new();
    let with = |scopes: &[&str], permissions: &[&str]| CreateKey {
        scopes: strings(scopes),
        permissions: strings(permissions),
        ..Default::default()
    };
    expect_field(f.engine.create_key(&f.admin, with(&["sessions:delete"], &[])), "scopes");
    expect_field(f.engine.create_key(&f.admin, with(&["Sessions:Read"], &[])), "scopes");
    expect_field(f.engine.create_key(&f.admin, with(&["sessions:read", "sessions:read"], &[])), "scopes");
    expect_field(f.engine.create_key(&f.admin, with(&[], &["session_delete"])), "permissions");
    expect_field(f.engine.create_key(&f.admin, with(&[], &[])), "scopes");
    let limits = CreateKey {
        scopes: strings(&["sessions:read"]),
        limits: KeyLimits { requests_per_minute: Some(0), ..Default::default() },
        ..Default::default()
    };
    expect_field(f.engine.create_key(&f.admin, limits), "limits.requests_per_minute");
    let json = r#"{"scopes": ["sessions:read"], "limits": {"requests_per_day": 5}}"#;
    let parsed = astack::validate::from_json::<CreateKey>(json, |field, message| astack::Error::InvalidRequest {
        field,
        message,
    });
    expect_field(parsed, "limits.requests_per_day");
    let unknown = astack::validate::from_json::<CreateKey>(r#"{"scope": []}"#, |field, message| {
        astack::Error::InvalidRequest { field, message }
    });
    expect_field(unknown, "scope");
    // Every scope and flag of the SPEC is accepted by its exact string.
    let all_scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    let all_flags: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(all_scopes.len(), 9);
    assert_eq!(all_flags, ["session_create", "session_manage", "usage_read"]);
    let created = f.create(with(&all_scopes, &all_flags));
    assert_eq!(created.record.scopes.iter().count(), 9);
    assert_eq!(created.record.permissions.iter().count(), 3);
}

#[test]
fn key_audit_records_creation_rotation_and_revocation() {
    let f = Fixture::new();
    let created = f.key(&["sessions:read"]);
    let rotated = f.engine.rotate_key(&f.admin, &created.record.id, 10).unwrap();
    f.engine.revoke_key(&f.admin, &rotated.record.id).unwrap();
    let audit = f.engine.audit(&f.admin, 1000).unwrap();
    let actions: Vec<(&str, Option<&str>)> =
        audit.iter().map(|r| (r.action.as_str(), r.target.as_deref())).collect();
    assert!(actions.contains(&("key.created", Some(&created.record.id))));
    assert!(actions.contains(&("key.rotated", Some(&rotated.record.id))));
    assert!(actions.contains(&("key.revoked", Some(&rotated.record.id))));
    let admin_prefix = f.admin.record().prefix;
    assert!(audit
        .iter()
        .filter(|r| r.action != "key.created" || r.actor_key_id.is_some())
        .all(|r| r.actor_prefix.as_deref() == Some(admin_prefix.as_str())));
}
