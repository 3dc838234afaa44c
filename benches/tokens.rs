//! Session tokens: our `Keyring::sign` / `Keyring::verify` beside the `jsonwebtoken` crate's
//! HS256 `encode` / `decode`, with the same claims, header, secret and checks (signature,
//! `exp`, `nbf`, `iss`, `aud`), in the same run.
//!
//! `cargo bench --bench tokens` (`BENCH_QUICK=1` for a shorter run).

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use astack::token::{Claims, Expect, Keyring, SigningKey, ISSUER};
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-benchmark";
const NODE: &str = "worker-eu-1";

fn claims(now: i64) -> Claims {
    Claims {
        iss: ISSUER.into(),
        sub: "sess_0123456789abcdef0123456789abcdef".into(),
        aud: NODE.into(),
        acc: "acct-42".into(),
        uid: "user-1".into(),
        features: vec!["vision".into(), "transcription".into()],
        quality: "standard".into(),
        iat: now,
        nbf: now,
        exp: now + 600,
        jti: Claims::new_jti(),
    }
}

fn bench(c: &mut Criterion) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = claims(now);
    let keyring = Keyring::new(vec![SigningKey::new("default", SECRET).unwrap()]).unwrap();
    let header = Header { kid: Some("default".into()), ..Header::new(Algorithm::HS256) };
    let encoding = EncodingKey::from_secret(SECRET);
    let decoding = DecodingKey::from_secret(SECRET);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[NODE]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    validation.leeway = 0;
    validation.validate_nbf = true;
    let expect = Expect { now, leeway: 0, audience: Some(NODE), session_id: None };

    let ours = keyring.sign(&claims);
    let theirs = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    assert_eq!(keyring.verify(&theirs, &expect).unwrap(), claims, "we accept theirs");
    assert_eq!(jsonwebtoken::decode::<Claims>(&ours, &decoding, &validation).unwrap().claims, claims, "they accept ours");

    let quick = std::env::var_os("BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty());
    let mut group = c.benchmark_group("tokens");
    group
        .measurement_time(Duration::from_secs(if quick { 1 } else { 3 }))
        .warm_up_time(Duration::from_millis(if quick { 300 } else { 1000 }))
        .sample_size(if quick { 10 } else { 30 });
    group.bench_function("issue/astack", |b| b.iter(|| keyring.sign(black_box(&claims))));
    group.bench_function("issue/jsonwebtoken", |b| {
        b.iter(|| jsonwebtoken::encode(black_box(&header), black_box(&claims), &encoding).unwrap())
    });
    group.bench_function("verify/astack", |b| b.iter(|| keyring.verify(black_box(&ours), &expect).unwrap()));
    group.bench_function("verify/jsonwebtoken", |b| {
        b.iter(|| jsonwebtoken::decode::<Claims>(black_box(&ours), &decoding, &validation).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
