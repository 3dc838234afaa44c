//! Session tokens through the public API only (SPEC §7): round trip, key
//! rotation, every refusal on hand-built tokens, and interop with the
//! `jsonwebtoken` crate.

use std::time::{SystemTime, UNIX_EPOCH};

use astack::token::{
    Claims, Expect, Keyring, KeyringError, Refusal, SigningKey, ISSUER, MAX_TOKEN_LEN,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Sha256, Sha512};

const SECRET: &[u8] = b"integration-secret-32-bytes-long";
const OLD_SECRET: &[u8] = b"an-older-secret-still-32-bytes!!";
const NOW: i64 = 1_700_000_000;
const NODE: &str = "node-a";
const SESSION: &str = "sess_123";
const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT","kid":"current"}"#;

fn key(kid: &str, secret: &[u8]) -> SigningKey {
    SigningKey::new(kid, secret).expect("valid key")
}

fn ring(keys: Vec<SigningKey>) -> Keyring {
    Keyring::new(keys).expect("valid keyring")
}

fn current() -> Keyring {
    ring(vec![key("current", SECRET)])
}

fn claims(now: i64) -> Claims {
    Claims {
        iss: ISSUER.to_owned(),
        sub: SESSION.to_owned(),
        aud: NODE.to_owned(),
        acc: "acct_1".to_owned(),
        uid: "user_1".to_owned(),
        features: vec!["vision".to_owned(), "transcription".to_owned()],
        quality: "standard".to_owned(),
        iat: now,
        nbf: now,
        exp: now + 600,
        jti: Claims::new_jti(),
    }
}

fn claims_json() -> Value {
    serde_json::to_value(claims(NOW)).expect("claims serialize")
}

/// Everything checked: `NOW`, no leeway, our node and session.
fn expect() -> Expect<'static> {
    Expect {
        now: NOW,
        leeway: 0,
        audience: Some(NODE),
        session_id: Some(SESSION),
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hs256(input: &str, secret: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A compact token from raw header and payload JSON, HS256-signed with `secret`.
fn craft(header: &str, payload: &str, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = b64(hs256(&input, secret));
    format!("{input}.{signature}")
}

/// A correctly signed token whose claims are `edit`ed from valid ones.
fn with_claims(edit: impl FnOnce(&mut Value)) -> String {
    let mut payload = claims_json();
    edit(&mut payload);
    craft(HS256_HEADER, &payload.to_string(), SECRET)
}

fn verify(token: &str) -> Result<Claims, Refusal> {
    current().verify(token, &expect())
}

fn verify_at(token: &str, now: i64, leeway: i64) -> Result<Claims, Refusal> {
    current().verify(
        token,
        &Expect {
            now,
            leeway,
            ..expect()
        },
    )
}

fn unix_now() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(elapsed.as_secs()).expect("fits i64")
}

// Round trip and rotation.

#[test]
fn round_trip() {
    let keyring = current();
    let claims = claims(NOW);
    let token = keyring.sign(&claims);
    assert_eq!(keyring.verify(&token, &expect()), Ok(claims));
}

#[test]
fn first_key_signs() {
    let keyring = ring(vec![key("new", SECRET), key("old", OLD_SECRET)]);
    assert_eq!(keyring.signing_kid(), "new");
    let token = keyring.sign(&claims(NOW));
    let only_new = ring(vec![key("new", SECRET)]);
    assert!(only_new.verify(&token, &expect()).is_ok());
}

#[test]
fn token_signed_by_an_older_key_still_verifies() {
    let before = ring(vec![key("old", OLD_SECRET)]);
    let token = before.sign(&claims(NOW));
    let after = ring(vec![key("new", SECRET), key("old", OLD_SECRET)]);
    assert!(after.verify(&token, &expect()).is_ok());
}

#[test]
fn token_signed_by_a_removed_key_is_unknown_kid() {
    let before = ring(vec![key("new", SECRET), key("old", OLD_SECRET)]);
    let old_token = ring(vec![key("old", OLD_SECRET)]).sign(&claims(NOW));
    assert!(before.verify(&old_token, &expect()).is_ok());
    let after = ring(vec![key("new", SECRET)]);
    assert_eq!(
        after.verify(&old_token, &expect()),
        Err(Refusal::UnknownKid)
    );
}

#[test]
fn same_kid_with_another_secret_is_bad_signature() {
    let token = ring(vec![key("current", OLD_SECRET)]).sign(&claims(NOW));
    assert_eq!(verify(&token), Err(Refusal::BadSignature));
}

// Header refusals.

#[test]
fn alg_none_with_empty_signature_is_unsupported() {
    let header = r#"{"alg":"none","typ":"JWT","kid":"current"}"#;
    let token = format!("{}.{}.", b64(header), b64(claims_json().to_string()));
    assert_eq!(verify(&token), Err(Refusal::UnsupportedAlgorithm));
}

#[test]
fn alg_none_without_kid_is_unsupported() {
    let header = r#"{"alg":"none"}"#;
    let token = format!("{}.{}.", b64(header), b64(claims_json().to_string()));
    assert_eq!(verify(&token), Err(Refusal::UnsupportedAlgorithm));
}

#[test]
fn alg_hs512_is_unsupported() {
    let header = r#"{"alg":"HS512","typ":"JWT","kid":"current"}"#;
    let input = format!("{}.{}", b64(header), b64(claims_json().to_string()));
    let mut mac = Hmac::<Sha512>::new_from_slice(SECRET).expect("any key length");
    mac.update(input.as_bytes());
    let token = format!("{input}.{}", b64(mac.finalize().into_bytes()));
    assert_eq!(verify(&token), Err(Refusal::UnsupportedAlgorithm));
}

#[test]
fn alg_rs256_is_unsupported() {
    let header = r#"{"alg":"RS256","typ":"JWT","kid":"current"}"#;
    let token = format!(
        "{}.{}.{}",
        b64(header),
        b64(claims_json().to_string()),
        b64([7u8; 256])
    );
    assert_eq!(verify(&token), Err(Refusal::UnsupportedAlgorithm));
}

#[test]
fn alg_is_case_sensitive() {
    let token = craft(
        r#"{"alg":"hs256","typ":"JWT","kid":"current"}"#,
        &claims_json().to_string(),
        SECRET,
    );
    assert_eq!(verify(&token), Err(Refusal::UnsupportedAlgorithm));
}

#[test]
fn missing_kid_is_unknown_kid() {
    let token = craft(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims_json().to_string(),
        SECRET,
    );
    assert_eq!(verify(&token), Err(Refusal::UnknownKid));
}

#[test]
fn unknown_kid_is_unknown_kid() {
    let token = craft(
        r#"{"alg":"HS256","typ":"JWT","kid":"elsewhere"}"#,
        &claims_json().to_string(),
        SECRET,
    );
    assert_eq!(verify(&token), Err(Refusal::UnknownKid));
}

#[test]
fn typ_other_than_jwt_is_malformed() {
    let token = craft(
        r#"{"alg":"HS256","typ":"JOSE","kid":"current"}"#,
        &claims_json().to_string(),
        SECRET,
    );
    assert_eq!(verify(&token), Err(Refusal::Malformed));
}

#[test]
fn unknown_header_parameter_is_malformed() {
    let token = craft(
        r#"{"alg":"HS256","typ":"JWT","kid":"current","jku":"https://evil.example"}"#,
        &claims_json().to_string(),
        SECRET,
    );
    assert_eq!(verify(&token), Err(Refusal::Malformed));
}

#[test]
fn hand_built_token_verifies() {
    let token = craft(HS256_HEADER, &claims_json().to_string(), SECRET);
    assert!(verify(&token).is_ok());
}

// Signature refusals.

#[test]
fn one_flipped_signature_bit_is_bad_signature() {
    let token = current().sign(&claims(NOW));
    let (input, signature) = token.rsplit_once('.').expect("three segments");
    let mut tag = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    tag[0] ^= 0x01;
    let forged = format!("{input}.{}", b64(tag));
    assert_eq!(verify(&forged), Err(Refusal::BadSignature));
}

#[test]
fn edited_claims_are_bad_signature() {
    let token = current().sign(&claims(NOW));
    let mut segments = token.split('.');
    let (header, _, signature) = (segments.next(), segments.next(), segments.next());
    let mut edited = claims_json();
    edited["acc"] = json!("acct_other");
    let forged = format!(
        "{}.{}.{}",
        header.expect("header"),
        b64(edited.to_string()),
        signature.expect("signature")
    );
    assert_eq!(verify(&forged), Err(Refusal::BadSignature));
}

// Structure refusals.

#[test]
fn two_segments_are_malformed() {
    let token = current().sign(&claims(NOW));
    let (two, _) = token.rsplit_once('.').expect("three segments");
    assert_eq!(verify(two), Err(Refusal::Malformed));
}

#[test]
fn four_segments_are_malformed() {
    let token = current().sign(&claims(NOW));
    assert_eq!(verify(&format!("{token}.")), Err(Refusal::Malformed));
    let (header, rest) = token.split_once('.').expect("segments");
    assert_eq!(
        verify(&format!("{header}.{header}.{rest}")),
        Err(Refusal::Malformed)
    );
}

#[test]
fn garbage_is_malformed() {
    let huge = "A".repeat(MAX_TOKEN_LEN * 4);
    let huge_dotted = format!("{huge}.{huge}.{huge}");
    for token in [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "!!!.???.***",
        "eyJ.eyJ.eyJ",
        "é.é.é",
        " . . ",
        huge.as_str(),
        huge_dotted.as_str(),
    ] {
        assert_eq!(verify(token), Err(Refusal::Malformed), "{token:.20}");
    }
}

#[test]
fn padded_base64_is_malformed() {
    // 41 bytes of header encode with one "=" of padding.
    let header = r#"{"alg":"HS256","typ":"JWT","kid":"curre"}"#;
    assert_eq!(header.len() % 3, 2);
    let padded = base64::engine::general_purpose::URL_SAFE.encode(header);
    assert!(padded.ends_with('='));
    let payload = b64(claims_json().to_string());
    let input = format!("{padded}.{payload}");
    let token = format!("{input}.{}", b64(hs256(&input, SECRET)));
    let keyring = ring(vec![key("curre", SECRET)]);
    assert_eq!(keyring.verify(&token, &expect()), Err(Refusal::Malformed));
}

#[test]
fn standard_base64_alphabet_is_malformed() {
    // ">>>" is "Pj4-" in base64url but "Pj4+" in standard base64.
    let header = r#"{"alg":"HS256","typ":"JWT","kid":">>>"}"#;
    let standard = base64::engine::general_purpose::STANDARD_NO_PAD.encode(header);
    assert!(standard.contains('+'));
    let input = format!("{standard}.{}", b64(claims_json().to_string()));
    let token = format!("{input}.{}", b64(hs256(&input, SECRET)));
    let keyring = ring(vec![key(">>>", SECRET)]);
    assert_eq!(keyring.verify(&token, &expect()), Err(Refusal::Malformed));
}

#[test]
fn header_that_is_not_a_json_object_is_malformed() {
    for header in ["[]", "\"HS256\"", "42", "null", "not json", ""] {
        let token = craft(header, &claims_json().to_string(), SECRET);
        assert_eq!(verify(&token), Err(Refusal::Malformed), "{header}");
    }
}

#[test]
fn validly_signed_token_over_the_length_cap_is_malformed() {
    let mut big = claims(NOW);
    big.features = vec!["f".repeat(MAX_TOKEN_LEN)];
    let token = current().sign(&big);
    assert!(token.len() > MAX_TOKEN_LEN);
    assert_eq!(verify(&token), Err(Refusal::Malformed));
}

#[test]
fn no_prefix_or_single_byte_edit_panics_or_verifies() {
    let keyring = current();
    let token = keyring.sign(&claims(NOW));
    for end in 0..token.len() {
        assert!(keyring.verify(&token[..end], &expect()).is_err(), "{end}");
    }
    for at in 0..token.len() {
        for replacement in [b'A', b'.', b'=', b'+', b'\0'] {
            let mut bytes = token.clone().into_bytes();
            if bytes[at] == replacement {
                continue;
            }
            bytes[at] = replacement;
            let edited = String::from_utf8(bytes).expect("ascii");
            assert!(keyring.verify(&edited, &expect()).is_err(), "{at}");
        }
    }
}

// Claims refusals.

#[test]
fn signed_payload_that_is_not_a_json_object_is_malformed() {
    for payload in ["[]", "\"claims\"", "{", ""] {
        let token = craft(HS256_HEADER, payload, SECRET);
        assert_eq!(verify(&token), Err(Refusal::Malformed), "{payload}");
    }
}

#[test]
fn exp_as_a_string_is_malformed() {
    let token = with_claims(|c| c["exp"] = json!((NOW + 600).to_string()));
    assert_eq!(verify(&token), Err(Refusal::Malformed));
}

#[test]
fn exp_as_a_float_is_malformed() {
    let token = with_claims(|c| c["exp"] = json!(1.5));
    assert_eq!(verify(&token), Err(Refusal::Malformed));
    let whole = format!(r#"{{"exp":{}.0,"#, NOW + 600);
    let exponent = r#"{"exp":1.8e9,"#;
    for replacement in [whole.as_str(), exponent] {
        let mut payload = claims_json();
        payload
            .as_object_mut()
            .expect("object")
            .remove("exp")
            .expect("exp");
        let raw = payload.to_string().replacen('{', replacement, 1);
        let token = craft(HS256_HEADER, &raw, SECRET);
        assert_eq!(verify(&token), Err(Refusal::Malformed), "{replacement}");
    }
}

#[test]
fn missing_or_mistyped_times_are_malformed() {
    for field in ["exp", "nbf", "iat"] {
        let missing = with_claims(|c| {
            c.as_object_mut().expect("object").remove(field);
        });
        assert_eq!(verify(&missing), Err(Refusal::Malformed), "missing {field}");
        let null = with_claims(|c| c[field] = Value::Null);
        assert_eq!(verify(&null), Err(Refusal::Malformed), "null {field}");
        let string = with_claims(|c| c[field] = json!("1700000000"));
        assert_eq!(verify(&string), Err(Refusal::Malformed), "string {field}");
    }
}

#[test]
fn missing_or_mistyped_claims_are_malformed() {
    for field in [
        "iss", "sub", "aud", "acc", "uid", "features", "quality", "jti",
    ] {
        let missing = with_claims(|c| {
            c.as_object_mut().expect("object").remove(field);
        });
        assert_eq!(verify(&missing), Err(Refusal::Malformed), "missing {field}");
        let number = with_claims(|c| c[field] = json!(1));
        assert_eq!(verify(&number), Err(Refusal::Malformed), "number {field}");
    }
    let aud_array = with_claims(|c| c["aud"] = json!([NODE]));
    assert_eq!(verify(&aud_array), Err(Refusal::Malformed));
}

#[test]
fn exp_boundary() {
    let token = current().sign(&claims(NOW));
    let exp = NOW + 600;
    assert!(verify_at(&token, exp - 1, 0).is_ok());
    assert_eq!(verify_at(&token, exp, 0), Err(Refusal::Expired));
    assert_eq!(verify_at(&token, exp + 1, 0), Err(Refusal::Expired));
}

#[test]
fn nbf_boundary() {
    let token = current().sign(&claims(NOW));
    assert_eq!(verify_at(&token, NOW - 1, 0), Err(Refusal::NotYetValid));
    assert!(verify_at(&token, NOW, 0).is_ok());
}

#[test]
fn leeway_widens_both_ends() {
    let token = current().sign(&claims(NOW));
    let exp = NOW + 600;
    assert!(verify_at(&token, exp, 5).is_ok());
    assert!(verify_at(&token, exp + 4, 5).is_ok());
    assert_eq!(verify_at(&token, exp + 5, 5), Err(Refusal::Expired));
    assert!(verify_at(&token, NOW - 5, 5).is_ok());
    assert_eq!(verify_at(&token, NOW - 6, 5), Err(Refusal::NotYetValid));
}

#[test]
fn wrong_issuer() {
    let token = with_claims(|c| c["iss"] = json!("someone-else"));
    assert_eq!(verify(&token), Err(Refusal::WrongIssuer));
}

#[test]
fn wrong_audience() {
    let token = with_claims(|c| c["aud"] = json!("node-b"));
    assert_eq!(verify(&token), Err(Refusal::WrongAudience));
    let any_audience = Expect {
        audience: None,
        ..expect()
    };
    assert!(current().verify(&token, &any_audience).is_ok());
}

#[test]
fn wrong_session() {
    let token = with_claims(|c| c["sub"] = json!("sess_other"));
    assert_eq!(verify(&token), Err(Refusal::WrongSession));
    let any_session = Expect {
        session_id: None,
        ..expect()
    };
    assert!(current().verify(&token, &any_session).is_ok());
}

#[test]
fn refusals_come_in_the_documented_order() {
    // Wrong issuer, expired, wrong audience and wrong session all at once.
    let token = with_claims(|c| {
        c["iss"] = json!("x");
        c["exp"] = json!(NOW);
        c["aud"] = json!("x");
        c["sub"] = json!("x");
    });
    assert_eq!(verify(&token), Err(Refusal::WrongIssuer));
    let token = with_claims(|c| {
        c["exp"] = json!(NOW);
        c["nbf"] = json!(NOW + 1);
        c["aud"] = json!("x");
    });
    assert_eq!(verify(&token), Err(Refusal::Expired));
    let token = with_claims(|c| {
        c["nbf"] = json!(NOW + 1);
        c["aud"] = json!("x");
        c["sub"] = json!("x");
    });
    assert_eq!(verify(&token), Err(Refusal::NotYetValid));
    let token = with_claims(|c| {
        c["aud"] = json!("x");
        c["sub"] = json!("x");
    });
    assert_eq!(verify(&token), Err(Refusal::WrongAudience));
    // Malformed claims under a bad signature: the signature is checked first.
    let token = craft(HS256_HEADER, "[]", OLD_SECRET);
    assert_eq!(verify(&token), Err(Refusal::BadSignature));
    // Unknown kid before the signature.
    let token = craft(r#"{"alg":"HS256","kid":"x"}"#, "[]", OLD_SECRET);
    assert_eq!(verify(&token), Err(Refusal::UnknownKid));
}

#[test]
fn extra_claims_are_ignored() {
    let token = with_claims(|c| c["extra"] = json!({"nested": true}));
    assert!(verify(&token).is_ok());
}

// Interop with jsonwebtoken.

#[test]
fn jsonwebtoken_verifies_our_tokens() {
    let now = unix_now();
    let claims = claims(now);
    let token = current().sign(&claims);

    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[NODE]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    validation.leeway = 0;
    validation.validate_nbf = true;
    let decoded = jsonwebtoken::decode::<Claims>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET),
        &validation,
    )
    .expect("jsonwebtoken accepts our token");

    assert_eq!(decoded.claims, claims);
    assert_eq!(decoded.header.alg, jsonwebtoken::Algorithm::HS256);
    assert_eq!(decoded.header.kid.as_deref(), Some("current"));
    assert_eq!(decoded.header.typ.as_deref(), Some("JWT"));
}

#[test]
fn we_verify_jsonwebtoken_tokens() {
    let now = unix_now();
    let claims = claims(now);
    let header = jsonwebtoken::Header {
        alg: jsonwebtoken::Algorithm::HS256,
        kid: Some("current".to_owned()),
        typ: Some("JWT".to_owned()),
        ..jsonwebtoken::Header::default()
    };
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .expect("jsonwebtoken encodes");

    let expect = Expect { now, ..expect() };
    assert_eq!(current().verify(&token, &expect), Ok(claims));
}

#[test]
fn we_refuse_jsonwebtoken_hs512_tokens() {
    let header = jsonwebtoken::Header {
        alg: jsonwebtoken::Algorithm::HS512,
        kid: Some("current".to_owned()),
        ..jsonwebtoken::Header::default()
    };
    let token = jsonwebtoken::encode(
        &header,
        &claims(NOW),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .expect("jsonwebtoken encodes");
    assert_eq!(verify(&token), Err(Refusal::UnsupportedAlgorithm));
}

// Codes, keys and what is never printed.

#[test]
fn refusal_codes_are_stable() {
    let codes = [
        (Refusal::Malformed, "malformed"),
        (Refusal::UnsupportedAlgorithm, "unsupported_algorithm"),
        (Refusal::UnknownKid, "unknown_kid"),
        (Refusal::BadSignature, "bad_signature"),
        (Refusal::Expired, "expired"),
        (Refusal::NotYetValid, "not_yet_valid"),
        (Refusal::WrongIssuer, "wrong_issuer"),
        (Refusal::WrongAudience, "wrong_audience"),
        (Refusal::WrongSession, "wrong_session"),
    ];
    for (refusal, code) in codes {
        assert_eq!(refusal.as_str(), code);
    }
}

#[test]
fn secret_must_be_at_least_32_bytes() {
    assert_eq!(
        SigningKey::new("short", vec![b'x'; 31]).err(),
        Some(KeyringError::SecretTooShort {
            kid: "short".to_owned()
        })
    );
    assert!(SigningKey::new("exact", vec![b'x'; 32]).is_ok());
    assert_eq!(
        SigningKey::new("empty", Vec::new()).err(),
        Some(KeyringError::SecretTooShort {
            kid: "empty".to_owned()
        })
    );
}

#[test]
fn kid_must_not_be_empty() {
    assert_eq!(
        SigningKey::new("", SECRET).err(),
        Some(KeyringError::EmptyKid)
    );
}

#[test]
fn keyring_must_not_be_empty() {
    assert_eq!(Keyring::new(Vec::new()).err(), Some(KeyringError::Empty));
}

#[test]
fn kids_must_be_distinct() {
    let duplicate = Some(KeyringError::DuplicateKid {
        kid: "a".to_owned(),
    });
    let first_repeated = Keyring::new(vec![key("a", SECRET), key("a", OLD_SECRET)]);
    assert_eq!(first_repeated.err(), duplicate);
    let later_repeated = Keyring::new(vec![
        key("x", SECRET),
        key("a", SECRET),
        key("a", OLD_SECRET),
    ]);
    assert_eq!(later_repeated.err(), duplicate);
}

#[test]
fn keyring_errors_name_the_kid_never_the_secret() {
    let secret = "s".repeat(31);
    let error = SigningKey::new("short-key", secret.clone()).expect_err("too short");
    let message = error.to_string();
    assert!(message.contains("short-key"), "{message}");
    assert!(!message.contains(&secret), "{message}");
    assert!(!format!("{error:?}").contains(&secret));
}

#[test]
fn debug_never_prints_the_secret() {
    let secret = String::from_utf8(SECRET.to_vec()).expect("ascii");
    let signing_key = key("current", SECRET);
    let key_debug = format!("{signing_key:?}");
    assert!(key_debug.contains("current"), "{key_debug}");
    assert!(!key_debug.contains(&secret), "{key_debug}");
    assert!(!key_debug.contains(&format!("{SECRET:?}")), "{key_debug}");

    let keyring = ring(vec![key("current", SECRET), key("old", OLD_SECRET)]);
    let ring_debug = format!("{keyring:?}");
    assert!(
        ring_debug.contains("current") && ring_debug.contains("old"),
        "{ring_debug}"
    );
    assert!(!ring_debug.contains(&secret), "{ring_debug}");
    assert!(!ring_debug.contains(&format!("{SECRET:?}")), "{ring_debug}");
    assert!(
        !ring_debug.contains(&format!("{OLD_SECRET:?}")),
        "{ring_debug}"
    );
}

#[test]
fn refusals_never_print_the_token() {
    let token = current().sign(&claims(NOW));
    let refusal = verify_at(&token, NOW + 600, 0).expect_err("expired");
    assert!(!refusal.to_string().contains(&token));
    assert!(!format!("{refusal:?}").contains(&token));
    let (_, signature) = token.rsplit_once('.').expect("three segments");
    assert!(!refusal.to_string().contains(signature));
}

#[test]
fn keyring_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Keyring>();
    assert_send_sync::<SigningKey>();
}
