//! Session tokens (SPEC §7): the HS256 JSON Web Tokens a worker presents to
//! connect to its session.
//!
//! A token is a compact JWS (RFC 7515) carrying a JWT claim set (RFC 7519):
//!
//! * header, exactly `{"alg":"HS256","typ":"JWT","kid":"<signing key id>"}`;
//! * claims, see [`Claims`];
//! * signature, HMAC-SHA-256 over `base64url(header) "." base64url(claims)`.
//!
//! Any worker can therefore verify a token with a standard JWT library. A
//! [`Keyring`] signs with its first key and verifies with all of them, so keys
//! rotate without cutting live sessions off.
//!
//! Verification is strict and refuses with a [`Refusal`] naming the first
//! reason found, in this order: structure and header parse, algorithm, key id,
//! signature, claims parse, issuer, expiry, not-before, audience, session.
//! Claims are only parsed once the signature has been checked. No token and no
//! secret ever appears in an error, a `Debug` or a `Display` output.

use std::borrow::Cow;
use std::fmt;

use base64_simd::{Out, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::json;

type HmacSha256 = Hmac<Sha256>;

/// The `iss` of every session token; verification refuses any other.
pub const ISSUER: &str = "astack";

/// The shortest secret a [`SigningKey`] accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// The longest token [`Keyring::verify`] will look at, in bytes; anything
/// longer is [`Refusal::Malformed`] without being decoded.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The only `alg` accepted.
const ALG: &str = "HS256";

/// The only `typ` accepted (the header may also leave it out).
const TYP: &str = "JWT";

/// Length of an HMAC-SHA-256 tag.
const SIGNATURE_LEN: usize = 32;

/// A named HMAC secret.
///
/// The secret is used as the HMAC key byte for byte. It is never printed:
/// `Debug` shows the `kid` only.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id, written to the `kid` header of the tokens this key signs.
    pub kid: String,
    secret: Vec<u8>,
}

impl SigningKey {
    /// A key named `kid` (non-empty) with `secret` (at least
    /// [`MIN_SECRET_LEN`] bytes).
    ///
    /// # Errors
    ///
    /// [`KeyringError::EmptyKid`] or [`KeyringError::SecretTooShort`].
    pub fn new(kid: impl Into<String>, secret: impl Into<Vec<u8>>) -> Result<Self, KeyringError> {
        let kid = kid.into();
        check_kid(&kid)?;
        let secret = secret.into();
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyringError::SecretTooShort { kid });
        }
        Ok(Self { kid, secret })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why a list of signing keys was refused. Messages name the key id, never
/// the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// The list holds no key.
    #[error("signing_keys: at least one signing key is required")]
    Empty,
    /// A secret is shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("signing_keys: secret of key {kid:?} is shorter than 32 bytes")]
    SecretTooShort {
        /// Id of the offending key.
        kid: String,
    },
    /// A key id is the empty string.
    #[error("signing_keys: kid must not be empty")]
    EmptyKid,
    /// Two keys share an id.
    #[error("signing_keys: kid {kid:?} appears more than once")]
    DuplicateKid {
        /// The repeated id.
        kid: String,
    },
}

fn check_kid(kid: &str) -> Result<(), KeyringError> {
    if kid.is_empty() {
        Err(KeyringError::EmptyKid)
    } else {
        Ok(())
    }
}

/// The claim set of a session token.
///
/// [`Keyring::sign`] signs it as given: `iss` should be [`ISSUER`], and the
/// caller chooses `iat`, `nbf` and `exp` (Unix seconds). Serialized as its [`ClaimsRef`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// Issuer, always [`ISSUER`].
    pub iss: String,
    /// Session id.
    pub sub: String,
    /// Audience: the `node_id` of the worker the session is placed on.
    pub aud: String,
    /// Account id.
    pub acc: String,
    /// End-user id.
    pub uid: String,
    /// Features enabled for the session.
    pub features: Vec<String>,
    /// Session quality (`low`, `standard` or `high`).
    pub quality: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Not valid before, Unix seconds.
    pub nbf: i64,
    /// Not valid from this instant on, Unix seconds.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

impl Claims {
    /// A fresh, unique `jti`: a random UUID v4 as 32 lowercase hex digits.
    #[must_use]
    pub fn new_jti() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }
}

/// [`Claims`] borrowed from where they already are (a session), so that signing copies no
/// string. The one serialized form of claims: [`Claims`] serializes through it.
#[derive(Debug, Serialize)]
pub struct ClaimsRef<'a> {
    /// Issuer, always [`ISSUER`].
    pub iss: &'a str,
    /// Session id.
    pub sub: &'a str,
    /// Audience: the `node_id` of the worker the session is placed on.
    pub aud: &'a str,
    /// Account id.
    pub acc: &'a str,
    /// End-user id.
    pub uid: &'a str,
    /// Features enabled for the session.
    pub features: &'a [String],
    /// Session quality (`low`, `standard` or `high`).
    pub quality: &'a str,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Not valid before, Unix seconds.
    pub nbf: i64,
    /// Not valid from this instant on, Unix seconds.
    pub exp: i64,
    /// Unique token id.
    pub jti: &'a str,
}

impl ClaimsRef<'_> {
    /// Writes these claims' JSON to `out`: the bytes their `Serialize` writes, in less time.
    fn write_json(&self, out: &mut Vec<u8>) {
        json::Object::new(out)
            .str("iss", self.iss)
            .str("sub", self.sub)
            .str("aud", self.aud)
            .str("acc", self.acc)
            .str("uid", self.uid)
            .strs("features", self.features)
            .str("quality", self.quality)
            .int("iat", self.iat)
            .int("nbf", self.nbf)
            .int("exp", self.exp)
            .str("jti", self.jti)
            .end();
    }
}

impl Serialize for Claims {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ClaimsRef::from(self).serialize(serializer)
    }
}

impl<'a> From<&'a Claims> for ClaimsRef<'a> {
    fn from(c: &'a Claims) -> Self {
        ClaimsRef {
            iss: &c.iss,
            sub: &c.sub,
            aud: &c.aud,
            acc: &c.acc,
            uid: &c.uid,
            features: &c.features,
            quality: &c.quality,
            iat: c.iat,
            nbf: c.nbf,
            exp: c.exp,
            jti: &c.jti,
        }
    }
}

/// Why [`Keyring::verify`] refused a token. [`Refusal::as_str`] is the stable
/// `reason` code of the `invalid_token` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refusal {
    /// Not a well-formed compact JWT with the expected header and claims:
    /// wrong segment count, over [`MAX_TOKEN_LEN`], bad or padded base64url,
    /// JSON that is not an object, an unknown header parameter, a `typ` other
    /// than `JWT`, or a missing or mistyped claim (`exp`, `nbf` and `iat` must
    /// be JSON integers).
    #[error("session token is malformed")]
    Malformed,
    /// The header's `alg` is not `HS256`.
    #[error("session token algorithm is not supported")]
    UnsupportedAlgorithm,
    /// The header has no `kid`, or names no key of the keyring.
    #[error("session token key id is unknown")]
    UnknownKid,
    /// The signature does not match.
    #[error("session token signature is invalid")]
    BadSignature,
    /// `now >= exp + leeway`.
    #[error("session token has expired")]
    Expired,
    /// `now + leeway < nbf`.
    #[error("session token is not valid yet")]
    NotYetValid,
    /// `iss` is not [`ISSUER`].
    #[error("session token issuer is wrong")]
    WrongIssuer,
    /// `aud` is not the expected node.
    #[error("session token audience is wrong")]
    WrongAudience,
    /// `sub` is not the expected session.
    #[error("session token is for another session")]
    WrongSession,
}

impl Refusal {
    /// The stable `snake_case` code of this refusal.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::UnknownKid => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::WrongSession => "wrong_session",
        }
    }
}

/// What [`Keyring::verify`] checks a token against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect<'a> {
    /// The current time, Unix seconds.
    pub now: i64,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds; negative counts as 0.
    pub leeway: i64,
    /// The required `aud` (node id); `None` accepts any.
    pub audience: Option<&'a str>,
    /// The required `sub` (session id); `None` accepts any.
    pub session_id: Option<&'a str>,
}

impl Expect<'_> {
    /// Checks at `now` with no leeway, any audience and any session.
    #[must_use]
    pub fn at(now: i64) -> Self {
        Self {
            now,
            leeway: 0,
            audience: None,
            session_id: None,
        }
    }
}

/// The JOSE header, both as written and as read.
///
/// Reading refuses unknown parameters and repeated ones. A missing `kid`
/// reads as empty (no key has an empty id); a missing `typ` reads as `JWT`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default = "default_typ")]
    typ: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Cow<'a, str>,
}

fn default_typ<'a>() -> Cow<'a, str> {
    Cow::Borrowed(TYP)
}

impl Header<'_> {
    /// The key id of an acceptable header.
    fn kid(&self) -> Result<&str, Refusal> {
        if self.typ != TYP {
            return Err(Refusal::Malformed);
        }
        if self.alg != ALG {
            return Err(Refusal::UnsupportedAlgorithm);
        }
        if self.kid.is_empty() {
            return Err(Refusal::UnknownKid);
        }
        Ok(&self.kid)
    }
}

/// One verification key: its id and its keyed HMAC state, cloned per use.
#[derive(Clone)]
struct KeyState {
    kid: String,
    mac: HmacSha256,
}

impl KeyState {
    fn new(key: SigningKey) -> Result<Self, KeyringError> {
        let SigningKey { kid, secret } = key;
        // `kid` is public, so it may have been changed since `SigningKey::new`.
        check_kid(&kid)?;
        let mac = HmacSha256::new_from_slice(&secret).expect("HMAC accepts keys of any length");
        Ok(Self { kid, mac })
    }

    fn tag(&self, signing_input: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.mac
            .clone()
            .chain_update(signing_input)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Checks the encoded `signature` against `signing_input`, in constant
    /// time. Not unpadded base64url is malformed; too long to be an
    /// HMAC-SHA-256 tag, or any mismatch, is a bad signature.
    fn check(&self, signing_input: &str, signature: &str) -> Result<(), Refusal> {
        let signature = signature.as_bytes();
        let len = URL_SAFE_NO_PAD.decoded_length(signature).map_err(|_| Refusal::Malformed)?;
        if len > SIGNATURE_LEN {
            // Too long for a tag: a bad signature, unless it is not base64url at all.
            return Err(match URL_SAFE_NO_PAD.check(signature) {
                Ok(()) => Refusal::BadSignature,
                Err(_) => Refusal::Malformed,
            });
        }
        let mut tag = [0; SIGNATURE_LEN];
        let tag = URL_SAFE_NO_PAD
            .decode(signature, Out::from_slice(&mut tag[..len]))
            .map_err(|_| Refusal::Malformed)?;
        self.mac
            .clone()
            .chain_update(signing_input)
            .verify_slice(tag)
            .map_err(|_| Refusal::BadSignature)
    }
}

/// The signing keys of an engine: the first signs, all verify.
///
/// `Debug` shows the key ids only.
#[derive(Clone)]
pub struct Keyring {
    signer: KeyState,
    /// `base64url` of the signer's header, computed once.
    signer_header: String,
    others: Vec<KeyState>,
}

impl Keyring {
    /// A keyring whose first key signs and whose keys all verify.
    ///
    /// # Errors
    ///
    /// [`KeyringError::Empty`] for an empty list, [`KeyringError::EmptyKid`]
    /// for an empty id, [`KeyringError::DuplicateKid`] for a repeated one.
    pub fn new(keys: Vec<SigningKey>) -> Result<Self, KeyringError> {
        let mut keys = keys.into_iter();
        let signer = KeyState::new(keys.next().ok_or(KeyringError::Empty)?)?;
        let mut others: Vec<KeyState> = Vec::with_capacity(keys.len());
        for key in keys {
            let key = KeyState::new(key)?;
            if key.kid == signer.kid || others.iter().any(|other| other.kid == key.kid) {
                return Err(KeyringError::DuplicateKid { kid: key.kid });
            }
            others.push(key);
        }
        Ok(Self {
            signer_header: encode_header(&signer.kid),
            signer,
            others,
        })
    }

    /// The id of the key that signs.
    #[must_use]
    pub fn signing_kid(&self) -> &str {
        &self.signer.kid
    }

    /// `claims` ([`Claims`] or [`ClaimsRef`]), as given, in a token signed with the first key.
    ///
    /// The header is exactly `{"alg":"HS256","typ":"JWT","kid":"<kid>"}`.
    ///
    /// # Panics
    ///
    /// Never: claims are plain strings and integers, which always serialize.
    #[must_use]
    pub fn sign<'a>(&self, claims: impl Into<ClaimsRef<'a>>) -> String {
        // Room for typical claims (about 300 bytes), so that writing them rarely reallocates.
        let mut payload = Vec::with_capacity(384);
        claims.into().write_json(&mut payload);
        let mut token = String::with_capacity(
            self.signer_header.len() + 2 + base64_len(payload.len()) + base64_len(SIGNATURE_LEN),
        );
        token.push_str(&self.signer_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_append(payload, &mut token);
        let tag = self.signer.tag(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_append(tag, &mut token);
        token
    }

    /// The claims of `token` if it is a valid session token for `expect`.
    ///
    /// # Errors
    ///
    /// The first [`Refusal`] found, checking in this order: structure and
    /// header (`Malformed`), `alg` (`UnsupportedAlgorithm`), `kid`
    /// (`UnknownKid`), signature (`BadSignature`), claims (`Malformed`),
    /// `iss` (`WrongIssuer`), `exp` (`Expired`), `nbf` (`NotYetValid`), `aud`
    /// (`WrongAudience`), `sub` (`WrongSession`).
    pub fn verify(&self, token: &str, expect: &Expect<'_>) -> Result<Claims, Refusal> {
        let segments = Segments::split(token)?;
        let header_json = decode_segment(segments.header)?;
        let header: Header<'_> = parse_object(&header_json)?;
        let key = self.key(header.kid()?)?;
        key.check(segments.signing_input, segments.signature)?;
        let claims: Claims = parse_object(&decode_segment(segments.payload)?)?;
        check_claims(&claims, expect)?;
        Ok(claims)
    }

    fn key(&self, kid: &str) -> Result<&KeyState, Refusal> {
        std::iter::once(&self.signer)
            .chain(&self.others)
            .find(|key| key.kid == kid)
            .ok_or(Refusal::UnknownKid)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = std::iter::once(&self.signer)
            .chain(&self.others)
            .map(|key| key.kid.as_str())
            .collect();
        f.debug_struct("Keyring")
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

/// The three segments of a compact token, still encoded.
struct Segments<'a> {
    /// `header "." payload`, the bytes the signature covers.
    signing_input: &'a str,
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Segments<'a> {
    fn split(token: &'a str) -> Result<Self, Refusal> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refusal::Malformed);
        }
        let (signing_input, signature) = token.rsplit_once('.').ok_or(Refusal::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(Refusal::Malformed)?;
        if payload.contains('.') {
            return Err(Refusal::Malformed);
        }
        Ok(Self {
            signing_input,
            header,
            payload,
            signature,
        })
    }
}

/// Unpadded base64url, as RFC 7515 requires; anything else is malformed.
fn decode_segment(segment: &str) -> Result<Vec<u8>, Refusal> {
    URL_SAFE_NO_PAD.decode_to_vec(segment).map_err(|_| Refusal::Malformed)
}

/// `json` as a `T`, refusing anything but a single JSON object (serde would
/// also accept an array for a struct).
fn parse_object<'de, T: Deserialize<'de>>(json: &'de [u8]) -> Result<T, Refusal> {
    let first = json.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Refusal::Malformed);
    }
    serde_json::from_slice(json).map_err(|_| Refusal::Malformed)
}

fn check_claims(claims: &Claims, expect: &Expect<'_>) -> Result<(), Refusal> {
    if claims.iss != ISSUER {
        return Err(Refusal::WrongIssuer);
    }
    let leeway = expect.leeway.max(0);
    if expect.now >= claims.exp.saturating_add(leeway) {
        return Err(Refusal::Expired);
    }
    if expect.now.saturating_add(leeway) < claims.nbf {
        return Err(Refusal::NotYetValid);
    }
    if expect.audience.is_some_and(|aud| aud != claims.aud) {
        return Err(Refusal::WrongAudience);
    }
    if expect.session_id.is_some_and(|sub| sub != claims.sub) {
        return Err(Refusal::WrongSession);
    }
    Ok(())
}

/// `base64url` of the header a key signs with.
fn encode_header(kid: &str) -> String {
    let header = Header {
        alg: Cow::Borrowed(ALG),
        typ: Cow::Borrowed(TYP),
        kid: Cow::Borrowed(kid),
    };
    let json = serde_json::to_vec(&header).expect("strings always serialize");
    URL_SAFE_NO_PAD.encode_to_string(json)
}

/// Length of `len` bytes in unpadded base64.
fn base64_len(len: usize) -> usize {
    (len * 4).div_ceil(3)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn claims_are_written_as_they_serialize(
            strings in proptest::array::uniform6(any::<String>()),
            features in proptest::collection::vec(any::<String>(), 0..3),
            times in proptest::array::uniform3(any::<i64>()),
        ) {
            let [sub, aud, acc, uid, quality, jti] = &strings;
            let claims = ClaimsRef {
                iss: ISSUER, sub, aud, acc, uid, features: &features, quality,
                iat: times[0], nbf: times[1], exp: times[2], jti,
            };
            let mut written = Vec::new();
            claims.write_json(&mut written);
            prop_assert_eq!(written, serde_json::to_vec(&claims).expect("serializes"));
        }
    }

    const SECRET: &[u8] = b"unit-test-secret-of-32-bytes-ok!";

    fn keyring(kid: &str) -> Keyring {
        Keyring::new(vec![SigningKey::new(kid, SECRET).expect("valid key")]).expect("valid ring")
    }

    fn claims() -> Claims {
        Claims {
            iss: ISSUER.to_owned(),
            sub: "sess_1".to_owned(),
            aud: "node-a".to_owned(),
            acc: "acct_1".to_owned(),
            uid: "user_1".to_owned(),
            features: vec!["vision".to_owned()],
            quality: "standard".to_owned(),
            iat: 1_000,
            nbf: 1_000,
            exp: 1_600,
            jti: "0123456789abcdef0123456789abcdef".to_owned(),
        }
    }

    /// Unpadded base64url by the independent `base64` crate, so that what the tests forge
    /// does not depend on the encoder under test.
    fn b64(bytes: impl AsRef<[u8]>) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with `header` (raw JSON) over valid claims, signed with `SECRET`.
    fn with_header(header: &str) -> String {
        let input = format!(
            "{}.{}",
            b64(header),
            b64(serde_json::to_vec(&claims()).expect("claims serialize"))
        );
        let tag = keyring("k1").signer.tag(input.as_bytes());
        format!("{input}.{}", b64(tag))
    }

    fn header_of(token: &str) -> Vec<u8> {
        let segments = Segments::split(token).expect("three segments");
        decode_segment(segments.header).expect("base64url header")
    }

    #[test]
    fn signed_header_is_exactly_the_contract() {
        let token = keyring("k1").sign(&claims());
        assert_eq!(
            header_of(&token),
            br#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#
        );
    }

    #[test]
    fn borrowed_claims_sign_as_the_owned_ones() {
        let (ring, owned) = (keyring("k1"), claims());
        let token = ring.sign(&owned);
        assert_eq!(ring.sign(ClaimsRef::from(&owned)), token);
        assert_eq!(ring.verify(&token, &Expect::at(1_000)), Ok(owned));
    }

    #[test]
    fn kid_is_json_escaped_in_the_header_and_round_trips() {
        let ring = keyring("k\"1\\");
        let token = ring.sign(&claims());
        assert_eq!(
            header_of(&token),
            br#"{"alg":"HS256","typ":"JWT","kid":"k\"1\\"}"#
        );
        assert!(ring.verify(&token, &Expect::at(1_000)).is_ok());
    }

    #[test]
    fn escaped_kid_in_a_foreign_header_is_matched_by_value() {
        let token = with_header(r#"{"alg":"HS256","typ":"JWT","kid":"k\u0031"}"#);
        assert!(keyring("k1").verify(&token, &Expect::at(1_000)).is_ok());
    }

    #[test]
    fn header_without_typ_is_accepted() {
        let token = with_header(r#"{"alg":"HS256","kid":"k1"}"#);
        assert!(keyring("k1").verify(&token, &Expect::at(1_000)).is_ok());
    }

    #[test]
    fn header_fields_in_another_order_are_accepted() {
        let token = with_header(r#"{"typ":"JWT","kid":"k1","alg":"HS256"}"#);
        assert!(keyring("k1").verify(&token, &Expect::at(1_000)).is_ok());
    }

    #[test]
    fn header_shape_errors_are_malformed() {
        for header in [
            r#"{"alg":"HS256","typ":"jwt","kid":"k1"}"#,
            r#"{"alg":"HS256","typ":null,"kid":"k1"}"#,
            r#"{"alg":"HS256","typ":"JWT","kid":"k1","crit":["exp"]}"#,
            r#"{"alg":"HS256","alg":"HS256","kid":"k1"}"#,
            r#"{"alg":"HS256","typ":"JWT","kid":7}"#,
            r#"{"alg":256,"typ":"JWT","kid":"k1"}"#,
            r#"{"typ":"JWT","kid":"k1"}"#,
            r#"["HS256","JWT","k1"]"#,
            r#"{"alg":"HS256","typ":"JWT","kid":"k1"} x"#,
        ] {
            let token = with_header(header);
            assert_eq!(
                keyring("k1").verify(&token, &Expect::at(1_000)),
                Err(Refusal::Malformed),
                "{header}"
            );
        }
    }

    #[test]
    fn typ_is_checked_before_alg() {
        let token = with_header(r#"{"alg":"none","typ":"foo","kid":"k1"}"#);
        assert_eq!(
            keyring("k1").verify(&token, &Expect::at(1_000)),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn empty_kid_is_unknown() {
        let token = with_header(r#"{"alg":"HS256","typ":"JWT","kid":""}"#);
        assert_eq!(
            keyring("k1").verify(&token, &Expect::at(1_000)),
            Err(Refusal::UnknownKid)
        );
    }

    #[test]
    fn split_requires_exactly_three_segments() {
        for token in ["", "a", "a.b", "a.b.c.d", "a.b.c.d.e"] {
            assert!(Segments::split(token).is_err(), "{token}");
        }
        let segments = Segments::split("h.p.s").expect("three segments");
        assert_eq!(
            (
                segments.signing_input,
                segments.header,
                segments.payload,
                segments.signature
            ),
            ("h.p", "h", "p", "s")
        );
        assert!(Segments::split("..").is_ok());
    }

    #[test]
    fn split_caps_length_before_anything_else() {
        let at_cap = format!("a.b.{}", "c".repeat(MAX_TOKEN_LEN - 4));
        assert!(Segments::split(&at_cap).is_ok());
        let over_cap = format!("{at_cap}c");
        assert!(Segments::split(&over_cap).is_err());
    }

    #[test]
    fn parse_object_refuses_non_objects() {
        for json in [&b"[]"[..], b"\"x\"", b"1", b"null", b"", b"  ", b"{"] {
            assert_eq!(
                parse_object::<serde_json::Value>(json).err(),
                Some(Refusal::Malformed)
            );
        }
        assert!(parse_object::<serde_json::Value>(b" \n{}").is_ok());
    }

    #[test]
    fn claims_as_an_array_are_malformed() {
        let c = claims();
        let array = serde_json::json!([
            c.iss, c.sub, c.aud, c.acc, c.uid, c.features, c.quality, c.iat, c.nbf, c.exp, c.jti
        ]);
        let json = serde_json::to_vec(&array).expect("serialize");
        // serde alone would accept it:
        assert!(serde_json::from_slice::<Claims>(&json).is_ok());
        assert_eq!(parse_object::<Claims>(&json), Err(Refusal::Malformed));
    }

    #[test]
    fn signature_encoding_is_strict() {
        let ring = keyring("k1");
        let token = ring.sign(&claims());
        let (input, signature) = token.rsplit_once('.').expect("three segments");
        let expect = Expect::at(1_000);
        // Well-formed base64url of the wrong length is a bad signature, too long or too short.
        for len in [SIGNATURE_LEN + 1, SIGNATURE_LEN + 30, 16] {
            let forged = format!("{input}.{}", b64(vec![7u8; len]));
            assert_eq!(ring.verify(&forged, &expect), Err(Refusal::BadSignature), "{len} bytes");
        }
        // Padding and the standard alphabet are not base64url.
        let padded = format!("{token}=");
        assert_eq!(ring.verify(&padded, &expect), Err(Refusal::Malformed));
        for standard in ["+", "/"] {
            let forged = format!("{input}.{}", standard.repeat(43));
            assert_eq!(ring.verify(&forged, &expect), Err(Refusal::Malformed));
        }
        // 43 characters carry 258 bits; the 2 spare bits must be zero, so
        // there is exactly one encoding of each tag.
        let last = signature.as_bytes()[signature.len() - 1];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.iter().position(|&c| c == last).expect("base64url");
        let sibling = char::from(alphabet[index ^ 1]);
        let non_canonical = format!("{}{sibling}", &token[..token.len() - 1]);
        assert_eq!(
            ring.verify(&non_canonical, &expect),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn signature_of_the_wrong_length_is_bad() {
        let ring = keyring("k1");
        let token = ring.sign(&claims());
        let (input, _) = token.rsplit_once('.').expect("three segments");
        for len in [0, 1, 31, 33, 64] {
            let forged = format!("{input}.{}", b64(vec![0u8; len]));
            assert_eq!(
                ring.verify(&forged, &Expect::at(1_000)),
                Err(Refusal::BadSignature),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn claims_are_not_parsed_before_the_signature_is_checked() {
        let token = with_header(r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#);
        let (header, rest) = token.split_once('.').expect("segments");
        let (_, signature) = rest.split_once('.').expect("segments");
        let garbage = format!("{header}.!!!.{signature}");
        assert_eq!(
            keyring("k1").verify(&garbage, &Expect::at(1_000)),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn time_checks_saturate_instead_of_overflowing() {
        let mut c = claims();
        c.exp = i64::MAX;
        c.nbf = i64::MIN;
        for now in [i64::MIN, 0, i64::MAX - 1] {
            let expect = Expect {
                leeway: i64::MAX,
                ..Expect::at(now)
            };
            assert_eq!(check_claims(&c, &expect), Ok(()), "{now}");
        }
        let expect = Expect {
            leeway: i64::MAX,
            ..Expect::at(i64::MAX)
        };
        assert_eq!(check_claims(&c, &expect), Err(Refusal::Expired));
    }

    #[test]
    fn negative_leeway_counts_as_zero() {
        let c = claims();
        let expect = Expect {
            leeway: -10,
            ..Expect::at(c.exp - 1)
        };
        assert_eq!(check_claims(&c, &expect), Ok(()));
        let expect = Expect {
            leeway: -10,
            ..Expect::at(c.nbf)
        };
        assert_eq!(check_claims(&c, &expect), Ok(()));
    }

    #[test]
    fn keyring_rechecks_a_kid_emptied_after_construction() {
        let mut key = SigningKey::new("k1", SECRET).expect("valid key");
        key.kid.clear();
        assert_eq!(Keyring::new(vec![key]).err(), Some(KeyringError::EmptyKid));
    }

    #[test]
    fn base64_len_matches_the_encoder() {
        for len in 0..100 {
            assert_eq!(base64_len(len), b64(vec![0u8; len]).len(), "{len}");
        }
    }

    #[test]
    fn jti_is_32_hex_digits_and_unique() {
        let (a, b) = (Claims::new_jti(), Claims::new_jti());
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
