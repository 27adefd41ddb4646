package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/internal/pooltest"
)

// setup writes an authorizer config for pool and returns its path.
func setup(t *testing.T, pool *pooltest.Pool) string {
	t.Helper()
	dir := t.TempDir()
	cfg := `issuer: ` + pool.Issuer() + `
clients: [web]
tokenUse: any
claims: {permissions: app_permissions, roles: app_roles, tenant: tenant_id, scopes: true, scopePrefix: "orders-api/"}
routes:
  "GET /orders":                  {permission: "orders:read"}
  "DELETE /orders/{id}":          {role: admin}
  "GET /tenants/{tenant}/orders": {permission: "orders:read", tenant: "{tenant}"}
`
	path := filepath.Join(dir, "authorizer.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sampleEvent fills a sample event from testdata with a token and a route.
func sampleEvent(t *testing.T, file, token, method, path, routePath string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("TOKEN", token, "METHOD", method, "ROUTEPATH", strings.TrimPrefix(routePath, "/"), "/PATH", path, "PATH", strings.TrimPrefix(path, "/")).Replace(string(b))
	return []byte(s)
}

type decision struct {
	allowed, unauthorized bool
	context               map[string]string
}

// decide reads an authorizer answer in any of its shapes.
func decide(t *testing.T, out []byte, errMsg string) decision {
	t.Helper()
	if errMsg != "" {
		if errMsg != "Unauthorized" {
			t.Fatalf("error %q, want Unauthorized", errMsg)
		}
		return decision{unauthorized: true}
	}
	var r struct {
		IsAuthorized   *bool             `json:"isAuthorized"`
		Context        map[string]string `json:"context"`
		PolicyDocument struct {
			Statement []struct{ Effect, Action, Resource string }
		} `json:"policyDocument"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.IsAuthorized != nil {
		return decision{allowed: *r.IsAuthorized, context: r.Context}
	}
	st := r.PolicyDocument.Statement
	if len(st) != 1 || st[0].Action != "execute-api:Invoke" || !strings.HasPrefix(st[0].Resource, "arn:aws:execute-api:") {
		t.Fatalf("IAM policy %s", out)
	}
	return decision{allowed: st[0].Effect == "Allow", context: r.Context}
}

type testCase struct {
	name                   string
	token                  string
	method, path, template string
	allowed, unauthorized  bool
}

func cases(t *testing.T, pool *pooltest.Pool) []testCase {
	reader := pool.Sign(t, "k1", nil) // scope orders-api/orders:read
	admin := pool.Sign(t, "k1", map[string]any{"token_use": "id", "aud": "web", "client_id": nil, "scope": nil,
		"app_roles": "admin viewer", "app_permissions": "orders:read", "tenant_id": "acme"}) // a V1_0 ID token
	return []testCase{
		{"scope in the access token", reader, "GET", "/orders", "/orders", true, false},
		{"permission in a V1 ID token", admin, "GET", "/orders", "/orders", true, false},
		{"role", admin, "DELETE", "/orders/o-1", "/orders/{id}", true, false},
		{"role missing", reader, "DELETE", "/orders/o-1", "/orders/{id}", false, false},
		{"the token's tenant", admin, "GET", "/tenants/acme/orders", "/tenants/{tenant}/orders", true, false},
		{"another tenant", admin, "GET", "/tenants/globex/orders", "/tenants/{tenant}/orders", false, false},
		{"route not listed", admin, "GET", "/admin", "/admin", false, false},
		{"no token", "", "GET", "/orders", "/orders", false, true},
		{"bad token", "x.y.z", "GET", "/orders", "/orders", false, true},
	}
}

func TestAuthorizerInProcess(t *testing.T) {
	pool := pooltest.New(t, "k1")
	a, err := load(setup(t, pool))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"http-api-v2.json", "rest-token.json", "rest-request.json"} {
		for _, c := range cases(t, pool) {
			t.Run(file+"/"+c.name, func(t *testing.T) {
				var raw json.RawMessage = sampleEvent(t, file, c.token, c.method, c.path, c.template)
				out, err := a.Invoke(t.Context(), raw)
				msg := ""
				if err != nil {
					msg = err.Error()
				}
				b, _ := json.Marshal(out)
				d := decide(t, b, msg)
				want := c.allowed
				if file == "http-api-v2.json" && c.unauthorized { // simple responses deny with isAuthorized false
					want = false
				} else if c.unauthorized != d.unauthorized {
					t.Fatalf("unauthorized %v, want %v", d.unauthorized, c.unauthorized)
				}
				if d.allowed != want {
					t.Errorf("allowed %v, want %v (%s)", d.allowed, want, b)
				}
				if d.allowed && d.context["sub"] != "sub-1" {
					t.Errorf("context %v", d.context)
				}
			})
		}
	}
}

// TestAuthorizerUnderRIE runs the authorizer binary under the Lambda
// runtime emulator with API Gateway's sample events.
func TestAuthorizerUnderRIE(t *testing.T) {
	pool := pooltest.New(t, "k1")
	f := lambdatest.Start(t, lambdatest.Build(t, "."), map[string]string{"PRETOKEN_AUTHORIZER_CONFIG": setup(t, pool)})
	for _, file := range []string{"http-api-v2.json", "rest-token.json", "rest-request.json"} {
		for _, c := range cases(t, pool) {
			got := f.Invoke(t, sampleEvent(t, file, c.token, c.method, c.path, c.template))
			d := decide(t, got.Body, got.ErrorMessage)
			want := c.allowed
			if file != "http-api-v2.json" && c.unauthorized != d.unauthorized {
				t.Errorf("%s %s: unauthorized %v, want %v", file, c.name, d.unauthorized, c.unauthorized)
			}
			if d.allowed != want {
				t.Errorf("%s %s: allowed %v, want %v", file, c.name, d.allowed, want)
			}
		}
	}
}

// TestMostSpecificRouteWins loads a config whose routes overlap many
// times: Go's map order differs from load to load, and the answer must not.
func TestMostSpecificRouteWins(t *testing.T) {
	pool := pooltest.New(t, "k1")
	cfg := "issuer: " + pool.Issuer() + `
clients: [web]
claims: {permissions: app_permissions, roles: app_roles}
routes:
  "GET /orders/{id}":       {role: admin}
  "ANY /orders/mine":       {role: admin}
  "GET /orders/mine":       {permission: "orders:read"}
  "GET /{any}/mine":        {role: admin}
  "GET /{a}/{b}":           {role: admin}
  "DELETE /orders/{id}":    {permission: "orders:read"}
  "ANY /{a}/{b}":           {role: admin}
`
	path := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	reader := pool.Sign(t, "k1", map[string]any{"app_permissions": []string{"orders:read"}, "app_roles": []string{"viewer"}})
	for range 50 {
		a, err := load(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			method, path string
			allowed      bool
		}{
			{"GET", "/orders/mine", true},   // the literal route, not {id}, ANY or {any}
			{"DELETE", "/orders/o-1", true}, // the method's own route, not ANY /{a}/{b}
			{"GET", "/orders/o-1", false},   // {id}: admin only
			{"POST", "/orders/mine", false}, // ANY /orders/mine: admin only
		} {
			if _, why := a.decide(t.Context(), reader, c.method, c.path); (why == "") != c.allowed {
				t.Fatalf("%s %s: denied %q, want allowed %v", c.method, c.path, why, c.allowed)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	pool := pooltest.New(t, "k1")
	for _, body := range []string{
		"issuer: " + pool.Issuer() + "\nclients: [web]\nroutes: {\"GET /x\": {}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web]\nroutes: {\"/x\": {role: a}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web]\nroutes: {\"GET /x\": {tenant: \"{t}\"}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web]\nunknown: 1\n",
		"clients: [web]\n",
	} {
		path := filepath.Join(t.TempDir(), "a.yaml")
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := load(path); err == nil {
			t.Errorf("accepted %q", body)
		}
	}
}
