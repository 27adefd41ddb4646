package authz

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pretoken/pretoken/internal/pooltest"
	"github.com/pretoken/pretoken/permissions"
)

func verifier(t testing.TB, p *pooltest.Pool, use TokenUse, now func() time.Time) *Verifier {
	t.Helper()
	v, err := New(Config{Issuer: p.Issuer(), ClientIDs: []string{"web"}, TokenUse: use, Now: now,
		Claims: Claims{Permissions: "app_permissions", Roles: "app_roles", Tenant: "tenant_id", Scopes: true, ScopePrefix: "orders-api/"}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyAndPermissions(t *testing.T) {
	p := pooltest.New(t, "k1")
	ctx := context.Background()
	access := verifier(t, p, Access, nil)
	pr, err := access.Verify(ctx, p.Sign(t, "k1", map[string]any{"app_roles": []any{"editor", "viewer"}}))
	if err != nil {
		t.Fatal(err)
	}
	if !pr.HasPermission("orders:read") || pr.HasPermission("orders:write") || !pr.HasRole("editor") || pr.HasRole("admin") ||
		pr.ClientID != "web" || pr.Sub != "sub-1" || pr.Username != "maria" {
		t.Errorf("access token principal %+v", pr)
	}
	// A V1_0 ID token: lists are space-separated strings.
	id := verifier(t, p, ID, nil)
	pr, err = id.Verify(ctx, p.Sign(t, "k1", map[string]any{"token_use": "id", "client_id": nil, "aud": "web", "scope": nil,
		"app_permissions": "catalog:read orders:read", "app_roles": "viewer", "tenant_id": "acme"}))
	if err != nil {
		t.Fatal(err)
	}
	if !pr.HasPermission("orders:read") || pr.HasPermission("orders:write") || !pr.HasRole("viewer") || pr.Tenant() != "acme" {
		t.Errorf("V1 ID token principal %+v", pr)
	}
	// A V2_0 ID token: JSON arrays.
	pr, err = id.Verify(ctx, p.Sign(t, "k1", map[string]any{"token_use": "id", "client_id": nil, "aud": "web", "scope": nil,
		"app_permissions": []any{"orders:read"}}))
	if err != nil || !pr.HasPermission("orders:read") || pr.HasPermission("catalog:read") {
		t.Errorf("V2 ID token: %+v, %v", pr, err)
	}
}

func TestRejections(t *testing.T) {
	p := pooltest.New(t, "k1")
	now := time.Now()
	hs256 := func() string { // the public key used as an HMAC secret
		der, _ := x509.MarshalPKIXPublicKey(&p.Keys["k1"].PublicKey)
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"k1","typ":"JWT"}`))
		body := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + p.Issuer() + `","sub":"x","token_use":"access","client_id":"web","exp":9999999999,"scope":"orders-api/orders:read"}`))
		mac := hmac.New(sha256.New, der)
		mac.Write([]byte(head + "." + body))
		return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	none := func() string {
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`))
		body := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + p.Issuer() + `","token_use":"access","client_id":"web","exp":9999999999}`))
		return head + "." + body + "."
	}
	tests := []struct {
		name  string
		use   TokenUse
		token string
	}{
		{"expired", Access, p.Sign(t, "k1", map[string]any{"exp": now.Add(-2 * time.Minute).Unix()})},
		{"not yet valid", Access, p.Sign(t, "k1", map[string]any{"nbf": now.Add(5 * time.Minute).Unix()})},
		{"issued in the future", Access, p.Sign(t, "k1", map[string]any{"iat": now.Add(5 * time.Minute).Unix()})},
		{"no exp", Access, p.Sign(t, "k1", map[string]any{"exp": nil})},
		{"wrong issuer", Access, p.Sign(t, "k1", map[string]any{"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OTHER"})},
		{"wrong client", Access, p.Sign(t, "k1", map[string]any{"client_id": "other"})},
		{"ID token where access is required", Access, p.Sign(t, "k1", map[string]any{"token_use": "id", "aud": "web"})},
		{"access token where ID is required", ID, p.Sign(t, "k1", nil)},
		{"ID token for another client", ID, p.Sign(t, "k1", map[string]any{"token_use": "id", "aud": "other", "client_id": "web"})},
		{"no token use", Any, p.Sign(t, "k1", map[string]any{"token_use": nil})},
		{"alg none", Access, none()},
		{"HS256 with the public key as secret", Access, hs256()},
		{"tampered", Access, strings.Replace(p.Sign(t, "k1", nil), ".", ".e30", 1)},
		{"garbage", Access, "not.a.token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verifier(t, p, tt.use, nil).Verify(context.Background(), tt.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}

	// A key whose JWK names another algorithm.
	p.AddKey(t, "k384")
	p.Algs["k384"] = "RS384"
	if _, err := verifier(t, p, Access, nil).Verify(context.Background(), p.Sign(t, "k384", nil)); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a key for RS384 used for RS256: %v", err)
	}
}

// TestKeyRotation: an unknown kid refetches the JWKS at most once per
// penalty box; a rotated-in key is found; an unreachable endpoint is a clear
// error while cached keys keep working.
func TestKeyRotation(t *testing.T) {
	p := pooltest.New(t, "k1")
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	v := verifier(t, p, Access, now)
	ctx := context.Background()
	if _, err := v.Verify(ctx, p.Sign(t, "k1", nil)); err != nil {
		t.Fatal(err)
	}
	p.AddKey(t, "k2") // rotated in after the first fetch
	tok2 := p.Sign(t, "k2", nil)
	before := p.Fetches.Load()
	if _, err := v.Verify(ctx, tok2); !errors.Is(err, ErrNoKey) || p.Fetches.Load() != before {
		t.Errorf("a new kid within a minute of the last fetch: %v, %d fetches; want no key and no fetch", err, p.Fetches.Load()-before)
	}
	clock.Add(int64(61 * time.Second))
	if _, err := v.Verify(ctx, tok2); err != nil {
		t.Errorf("the rotated-in key a minute later: %v", err)
	}
	before = p.Fetches.Load()
	// Unknown kids, many: at most one fetch a minute.
	p.AddKey(t, "k3")
	stranger := p.Sign(t, "k3", nil)
	delete(p.Keys, "k3") // never published
	for range 50 {
		if _, err := v.Verify(ctx, stranger); !errors.Is(err, ErrNoKey) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if n := p.Fetches.Load() - before; n > 2 {
		t.Errorf("%d JWKS fetches for 50 tokens with unknown kids in one minute, want at most 2", n)
	}
	// The endpoint goes down: cached keys work, an unknown kid says why.
	p.Down.Store(true)
	clock.Add(int64(2 * time.Minute))
	if _, err := v.Verify(ctx, p.Sign(t, "k1", nil)); err != nil {
		t.Errorf("cached key while the JWKS endpoint is down: %v", err)
	}
	if _, err := v.Verify(ctx, stranger); err == nil || !strings.Contains(err.Error(), "JWKS endpoint failed") {
		t.Errorf("unknown kid while the endpoint is down: %v", err)
	}
}

func TestRequire(t *testing.T) {
	p := pooltest.New(t, "k1")
	v := verifier(t, p, Access, nil)
	h := Require(v, "orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello " + FromContext(r.Context()).Sub))
	}))
	for _, c := range []struct {
		name, auth string
		code       int
		challenge  string
	}{
		{"no token", "", 401, `Bearer`},
		{"another scheme", "Basic dXNlcjpwYXNz", 401, `Bearer`},
		{"lower-case scheme", "bearer " + p.Sign(t, "k1", nil), 200, ""},
		{"upper-case scheme", "BEARER " + p.Sign(t, "k1", nil), 200, ""},
		{"bad token", "Bearer x.y.z", 401, `Bearer error="invalid_token"`},
		{"missing permission", "Bearer " + p.Sign(t, "k1", map[string]any{"scope": "openid"}), 403, `Bearer error="insufficient_scope", scope="orders-api/orders:read"`},
		{"allowed", "Bearer " + p.Sign(t, "k1", nil), 200, ""},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/orders", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		h.ServeHTTP(rec, req)
		got := rec.Header().Get("WWW-Authenticate")
		if rec.Code != c.code || !strings.HasPrefix(got, c.challenge) || c.challenge == "Bearer" && got != "Bearer" {
			t.Errorf("%s: %d %q", c.name, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
		if c.code == 200 && rec.Body.String() != "hello sub-1" {
			t.Errorf("allowed: body %q", rec.Body.String())
		}
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Issuer: "http://cognito.example.com/us-east-1_X", ClientIDs: []string{"web"}},
		{Region: "us-east-1", ClientIDs: []string{"web"}},
		{Region: "us-east-1", UserPoolID: "us-east-1_X"},
		{Region: "us-east-1", UserPoolID: "us-east-1_X", ClientIDs: []string{"web"}, TokenUse: "refresh"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	v, err := New(Config{Region: "eu-west-1", UserPoolID: "eu-west-1_AbC", ClientIDs: []string{"web"}})
	if err != nil || v.issuer != "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC" {
		t.Errorf("issuer from region and pool: %v, %v", v, err)
	}
}

func TestClaimsFromPolicy(t *testing.T) {
	p, err := permissions.ReadFile("../examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ClaimsFromPolicy(p, "4webappclient0000")
	want := Claims{Permissions: "app_permissions", Roles: "app_roles", Tenant: "", ScopePrefix: "orders-api/", Scopes: true}
	if err != nil || c != want {
		t.Errorf("web client: %+v, %v; want %+v", c, err, want)
	}
	c, _ = ClaimsFromPolicy(p, "some-other-client") // the default profile
	if c.ScopePrefix != "orders-api/" || c.Roles != "app_roles" {
		t.Errorf("default profile: %+v", c)
	}
	// With tenancy.active: attribute:X, a claim copied from X is the tenant.
	p.Tenancy.Active = "attribute:custom:tenant_id"
	if c, err := ClaimsFromPolicy(p, "some-other-client"); err != nil || c.Tenant != "tenant" {
		t.Errorf("tenant from the tenancy attribute: %+v, %v", c, err)
	}
	p.Clients[permissions.DefaultProfile].AccessToken.Claims["roles_too"] = "roles"
	if _, err := ClaimsFromPolicy(p, "some-other-client"); err == nil {
		t.Error("two names for the roles claim accepted")
	}
}
