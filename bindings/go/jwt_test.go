package astack_test

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	astack "github.com/astack-dev/astack/bindings/go"
)

// sessionClaims is the SPEC §7 claim set as golang-jwt sees it.
type sessionClaims struct {
	Acc      string   `json:"acc"`
	UID      string   `json:"uid"`
	Features []string `json:"features"`
	Quality  string   `json:"quality"`
	jwt.RegisteredClaims
}

// A token issued by the Rust core (through the binding) verifies with an independent Go JWT
// library and the shared secret.
func TestCoreTokenVerifiesWithGolangJWT(t *testing.T) {
	f := newFixture(t)
	s := must(f.e.CreateSession(f.admin, astack.CreateSessionRequest{EndUserID: "user-9", Quality: "high",
		Features: []string{"vision", "recording"}}))
	issued := must(f.e.IssueToken(f.admin, s.ID))
	for _, token := range []string{s.SessionToken, issued} {
		var claims sessionClaims
		parsed, err := jwt.ParseWithClaims(token, &claims, func(tok *jwt.Token) (any, error) {
			if tok.Header["kid"] != "k1" || tok.Header["typ"] != "JWT" {
				t.Errorf("header %v", tok.Header)
			}
			return []byte(secret), nil
		}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("astack"), jwt.WithAudience("local"),
			jwt.WithSubject(s.ID), jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return t0.Add(time.Second) }),
			jwt.WithExpirationRequired())
		if err != nil || !parsed.Valid {
			t.Fatalf("golang-jwt refused the core's token: %v", err)
		}
		if claims.Acc != "default" || claims.UID != "user-9" || claims.Quality != "high" || len(claims.Features) != 2 ||
			claims.ID == "" || claims.ExpiresAt.Unix() != t0.Unix()+300 || claims.NotBefore == nil {
			t.Fatalf("claims %+v", claims)
		}
		// The wrong secret is refused by golang-jwt too.
		_, err = jwt.ParseWithClaims(token, &sessionClaims{}, func(*jwt.Token) (any, error) {
			return []byte("another secret of at least 32 bytes!!"), nil
		}, jwt.WithTimeFunc(func() time.Time { return t0 }))
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			t.Fatalf("wrong secret: %v", err)
		}
	}
}

// sign makes a token with golang-jwt for session s.
func sign(t *testing.T, s *astack.CreatedSession, method jwt.SigningMethod, kid string, key any, edit func(*sessionClaims)) string {
	t.Helper()
	claims := sessionClaims{
		Acc: s.AccountID, UID: s.EndUserID, Features: s.Features, Quality: s.Quality,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "astack", Subject: s.ID, Audience: jwt.ClaimStrings{s.NodeID},
			IssuedAt: jwt.NewNumericDate(t0), NotBefore: jwt.NewNumericDate(t0),
			ExpiresAt: jwt.NewNumericDate(t0.Add(5 * time.Minute)), ID: "jti-from-go",
		},
	}
	if edit != nil {
		edit(&claims)
	}
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	out, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A token golang-jwt signs with our secret and our claim set is accepted by VerifyToken and
// ConnectSession; any deviation is refused with the SPEC reason.
func TestGolangJWTTokenIsAccepted(t *testing.T) {
	f := newFixture(t)
	s := must(f.e.CreateSession(f.admin, astack.CreateSessionRequest{EndUserID: "user-3", Features: []string{"vision"}}))
	worker, _ := f.key(astack.CreateKeyRequest{Scopes: []string{"workers:write"}})
	w := f.authorize(worker, astack.OpWorkerWrite).KeyID

	// jwt.ClaimStrings serializes one audience as an array by default; the SPEC's aud is a
	// string, so marshal single audiences as a string.
	jwt.MarshalSingleStringAsArray = false
	defer func() { jwt.MarshalSingleStringAsArray = true }()

	good := sign(t, s, jwt.SigningMethodHS256, "k1", []byte(secret), nil)
	c := must(f.e.VerifyToken(good, "local", s.ID))
	if c.Jti != "jti-from-go" || c.UID != "user-3" || c.Sub != s.ID {
		t.Fatalf("%+v", c)
	}

	refusals := map[string]string{
		"unknown_kid":           sign(t, s, jwt.SigningMethodHS256, "k9", []byte(secret), nil),
		"bad_signature":         sign(t, s, jwt.SigningMethodHS256, "k1", []byte("not our secret, though 32+ bytes long"), nil),
		"unsupported_algorithm": sign(t, s, jwt.SigningMethodHS512, "k1", []byte(secret), nil),
		"wrong_issuer":          sign(t, s, jwt.SigningMethodHS256, "k1", []byte(secret), func(c *sessionClaims) { c.Issuer = "evil" }),
		"expired": sign(t, s, jwt.SigningMethodHS256, "k1", []byte(secret), func(c *sessionClaims) {
			c.ExpiresAt = jwt.NewNumericDate(t0)
		}),
		"not_yet_valid": sign(t, s, jwt.SigningMethodHS256, "k1", []byte(secret), func(c *sessionClaims) {
			c.NotBefore = jwt.NewNumericDate(t0.Add(time.Minute))
		}),
		"wrong_audience": sign(t, s, jwt.SigningMethodHS256, "k1", []byte(secret), func(c *sessionClaims) {
			c.Audience = jwt.ClaimStrings{"gpu-7"}
		}),
		"wrong_session": sign(t, s, jwt.SigningMethodHS256, "k1", []byte(secret), func(c *sessionClaims) { c.Subject = "sess_other" }),
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": s.ID}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	refusals["unsupported_algorithm "] = none
	for reason, token := range refusals {
		_, err := f.e.ConnectSession(w, s.ID, token)
		e := wantCode(t, err, astack.ErrInvalidToken)
		want := reason
		if want == "unsupported_algorithm " {
			want = "unsupported_algorithm"
		}
		if e.Reason != want {
			t.Errorf("%s: reason %q", reason, e.Reason)
		}
	}
	// golang-jwt's default writes a single audience as an array ({"aud": ["local"]}); the SPEC's
	// claim set has aud a string, and the core reads the array as malformed.
	jwt.MarshalSingleStringAsArray = true
	arrayAud := sign(t, s, jwt.SigningMethodHS256, "k1", []byte(secret), nil)
	jwt.MarshalSingleStringAsArray = false
	_, err := f.e.VerifyToken(arrayAud, "local", s.ID)
	if e := wantCode(t, err, astack.ErrInvalidToken); e.Reason != "malformed" {
		t.Fatalf("aud array: %+v", e)
	}

	// The good token connects the session, once.
	conn := must(f.e.ConnectSession(w, s.ID, good))
	if conn.Status != astack.StatusActive {
		t.Fatalf("%+v", conn)
	}
	_, err = f.e.ConnectSession(w, s.ID, good)
	wantCode(t, err, astack.ErrInvalidTransition)
}
