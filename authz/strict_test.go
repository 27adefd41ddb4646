package authz

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pretoken/pretoken/internal/pooltest"
)

// signRaw signs any header and claims with key, for tokens pooltest's
// signer would not write.
func signRaw(t testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func baseClaims(p *pooltest.Pool) map[string]any {
	now := time.Now()
	return map[string]any{"iss": p.Issuer(), "sub": "sub-1", "token_use": "access", "client_id": "web", "username": "maria",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "scope": "openid orders-api/orders:read"}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// TestAsStrictAsAWSJWTVerify: tokens aws-jwt-verify rejects are rejected.
func TestAsStrictAsAWSJWTVerify(t *testing.T) {
	p := pooltest.New(t, "k1")
	key := p.Keys["k1"]
	head := map[string]any{"alg": "RS256", "kid": "k1", "typ": "JWT"}
	base := baseClaims(p)
	idBase := with(base, "token_use", "id", "aud", "web")
	delete(idBase, "client_id")
	delete(idBase, "scope")
	tests := []struct {
		name   string
		use    TokenUse
		header map[string]any
		claims map[string]any
	}{
		{"exp as a string", Access, head, with(base, "exp", "9999999999")},
		{"expired a second ago (aws-jwt-verify has no grace by default)", Access, head, with(base, "exp", time.Now().Unix()-1)},
		{"not before a second from now", Access, head, with(base, "nbf", time.Now().Unix()+2)},
		{"access token with an aud array", Access, head, with(base, "aud", []any{"web"})},
		{"scope an array", Access, head, with(base, "scope", []any{"orders-api/orders:read"})},
		{"jti a number", Access, head, with(base, "jti", 1)},
		{"nbf as a string", Access, head, with(base, "nbf", "1")},
		{"iat as a string", Access, head, with(base, "iat", "1")},
		{"ID token aud an array with the client", ID, head, with(idBase, "aud", []any{"web", "other"})},
		{"ID token aud an array of the client alone", ID, head, with(idBase, "aud", []any{"web"})},
		{"crit header", Access, with(head, "crit", []any{"exp"}, "exp", 1), base},
		{"kid a number", Access, with(head, "kid", 1), base},
		{"no kid", Access, map[string]any{"alg": "RS256"}, base},
		{"token_use a number", Access, head, with(base, "token_use", 1)},
		{"client_id an array", Access, head, with(base, "client_id", []any{"web"})},
		{"CLIENT_ID beside another client_id", Access, head, with(base, "client_id", "other", "CLIENT_ID", "web")},
		{"Token_Use beside no token_use", Any, head, with(base, "token_use", nil, "Token_Use", "access")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := map[string]any{}
			for k, v := range tt.claims {
				if v != nil {
					claims[k] = v
				}
			}
			_, err := verifier(t, p, tt.use, nil).Verify(context.Background(), signRaw(t, key, tt.header, claims))
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
}

// TestExactClaimNames: a claim that differs only in case is another claim.
func TestExactClaimNames(t *testing.T) {
	p := pooltest.New(t, "k1")
	v := verifier(t, p, Any, nil)
	pr, err := v.Verify(context.Background(), p.Sign(t, "k1", map[string]any{"username": nil, "cognito:username": "maria",
		"Username": "admin", "APP_ROLES": []any{"admin"}, "App_Permissions": []any{"users:manage"}}))
	if err != nil {
		t.Fatal(err)
	}
	if pr.Username != "maria" || pr.HasRole("admin") || pr.HasPermission("users:manage") {
		t.Errorf("principal %+v: a claim in another case counted", pr)
	}
}

// TestEscapedStrings: a claim with JSON escapes reads as its text.
func TestEscapedStrings(t *testing.T) {
	p := pooltest.New(t, "k1")
	want := "<ma\"ria&>\u00e9"
	pr, err := verifier(t, p, Access, nil).Verify(context.Background(), p.Sign(t, "k1", map[string]any{"username": want}))
	if err != nil || pr.Username != want {
		t.Errorf("username %q, %v; want %q", pr.Username, err, want)
	}
}

// TestV1Strings: a V1_0 list is one string joined by single spaces, read
// exactly so.
func TestV1Strings(t *testing.T) {
	p := pooltest.New(t, "k1")
	v := verifier(t, p, ID, nil)
	for _, c := range []struct {
		value string
		has   bool
	}{
		{"orders:read", true},
		{"catalog:read orders:read", true},
		{"[orders:read", false},
		{"orders:read]", false},
		{"[orders:read]", false},
		{"catalog:read\torders:read", false},
	} {
		pr, err := v.Verify(context.Background(), p.Sign(t, "k1", map[string]any{"token_use": "id", "aud": "web", "client_id": nil,
			"scope": nil, "app_permissions": c.value}))
		if err != nil {
			t.Fatal(err)
		}
		if pr.HasPermission("orders:read") != c.has {
			t.Errorf("%q: HasPermission = %v, want %v", c.value, !c.has, c.has)
		}
	}
	// Behind API Gateway's JWT authorizer an array arrives as "[a b]".
	pr := FromVerifiedClaims(map[string]string{"app_permissions": "[catalog:read orders:read]"}, nil, Claims{Permissions: "app_permissions"})
	if !pr.HasPermission("orders:read") || !pr.HasPermission("catalog:read") {
		t.Errorf("flattened array: %+v", pr.Claims())
	}
}

// jwksServer serves a JWKS of the given JWK objects, as they are.
func jwksServer(t *testing.T, jwks ...map[string]any) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": jwks})
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/us-east-1_TEST"
}

func jwk(pub *rsa.PublicKey, kv ...any) map[string]any {
	e := big.NewInt(int64(pub.E)).Bytes()
	return with(map[string]any{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(e)}, kv...)
}

// TestJWKChecks: a key is used only if its JWK fits RS256 signing and it
// has at least 2048 bits.
func TestJWKChecks(t *testing.T) {
	p := pooltest.New(t, "k1")
	key := p.Keys["k1"]
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		key  *rsa.PrivateKey
		jwk  map[string]any
		ok   bool
	}{
		{"a good key", key, jwk(&key.PublicKey), true},
		{"no alg or use", key, with(jwk(&key.PublicKey), "alg", nil, "use", nil), true},
		{"1024 bits", small, jwk(&small.PublicKey), false},
		{"alg RS384", key, jwk(&key.PublicKey, "alg", "RS384"), false},
		{"use enc", key, jwk(&key.PublicKey, "use", "enc"), false},
		{"kty EC", key, jwk(&key.PublicKey, "kty", "EC"), false},
		{"kid a number", key, jwk(&key.PublicKey, "kid", 1), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := map[string]any{}
			for k, v := range c.jwk {
				if v != nil {
					j[k] = v
				}
			}
			iss := jwksServer(t, j)
			v, err := New(Config{Issuer: iss, ClientIDs: []string{"web"}})
			if err != nil {
				t.Fatal(err)
			}
			claims := baseClaims(p)
			claims["iss"] = iss
			_, err = v.Verify(context.Background(), signRaw(t, c.key, map[string]any{"alg": "RS256", "kid": "k1"}, claims))
			if (err == nil) != c.ok {
				t.Errorf("Verify = %v, want ok %v", err, c.ok)
			}
		})
	}
}

// TestNoRedirectToHTTP: an https JWKS endpoint that redirects to plain
// http is not followed.
func TestNoRedirectToHTTP(t *testing.T) {
	p := pooltest.New(t, "k1")
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{jwk(&p.Keys["k1"].PublicKey)}})
	}))
	defer plain.Close()
	tls := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/jwks.json", http.StatusFound))
	defer tls.Close()
	iss := tls.URL + "/us-east-1_TEST"
	v, err := New(Config{Issuer: iss, ClientIDs: []string{"web"}, HTTPClient: tls.Client()})
	if err != nil {
		t.Fatal(err)
	}
	claims := baseClaims(p)
	claims["iss"] = iss
	_, err = v.Verify(context.Background(), signRaw(t, p.Keys["k1"], map[string]any{"alg": "RS256", "kid": "k1"}, claims))
	if !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("Verify = %v, want the redirect refused", err)
	}
}

// TestLongKidTruncated: an error never echoes all of what the attacker
// sent.
func TestLongKidTruncated(t *testing.T) {
	p := pooltest.New(t, "k1")
	long := strings.Repeat("A", 5000)
	for _, head := range []map[string]any{{"alg": "RS256", "kid": long}, {"alg": long, "kid": "k1"}} {
		_, err := verifier(t, p, Access, nil).Verify(context.Background(), signRaw(t, p.Keys["k1"], head, baseClaims(p)))
		if err == nil || len(err.Error()) > 400 {
			t.Errorf("error of %d bytes", len(err.Error()))
		}
	}
}

// TestMalformedJWS: duplicate names, padding, a fourth part.
func TestMalformedJWS(t *testing.T) {
	p := pooltest.New(t, "k1")
	sign := func(header, payload string) string {
		in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		sum := sha256.Sum256([]byte(in))
		sig, _ := rsa.SignPKCS1v15(rand.Reader, p.Keys["k1"], crypto.SHA256, sum[:])
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	c, _ := json.Marshal(baseClaims(p))
	body := string(c)
	good := sign(`{"alg":"RS256","kid":"k1"}`, body)
	v := verifier(t, p, Access, nil)
	if _, err := v.Verify(context.Background(), good); err != nil {
		t.Fatalf("the well-formed token: %v", err)
	}
	for name, tok := range map[string]string{
		"duplicate client_id": sign(`{"alg":"RS256","kid":"k1"}`, strings.TrimSuffix(body, "}")+`,"client_id":"web"}`),
		"duplicate kid":       sign(`{"alg":"RS256","kid":"k1","kid":"k1"}`, body),
		"padding":             good + "=",
		"a fourth part":       good + ".e30",
		"alg in another case": sign(`{"ALG":"RS256","kid":"k1"}`, body),
	} {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
