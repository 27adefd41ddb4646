package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

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

// sampleEvent fills a sample event from testdata with a token and a
// request: method, actual path, and the route template API Gateway
// matched, whose parameters it fills from the path as API Gateway does.
func sampleEvent(t *testing.T, file, token, method, path, routePath string) []byte {
	t.Helper()
	params := map[string]string{}
	tp, pp := strings.Split(strings.Trim(routePath, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/")
	for i, seg := range tp {
		if strings.HasPrefix(seg, "{") && i < len(pp) {
			params[strings.Trim(seg, "{}")] = pp[i]
		}
	}
	pj, _ := json.Marshal(params)
	return eventWith(t, file, token, method, path, routePath, string(pj))
}

func eventWith(t *testing.T, file, token, method, path, routePath, params string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("Bearer TOKEN", "Bearer "+token, "METHOD", method, "ROUTEPATH", strings.TrimPrefix(routePath, "/"), "/PATH", path,
		"PATH", strings.TrimPrefix(path, "/"), "PARAMS", params).Replace(string(b))
	return []byte(s)
}

type answer struct {
	allowed, unauthorized bool
	context               map[string]any
}

// decide reads an authorizer answer in any of its shapes.
func decide(t *testing.T, out []byte, errMsg string) answer {
	t.Helper()
	if errMsg != "" {
		if errMsg != "Unauthorized" {
			t.Fatalf("error %q, want Unauthorized", errMsg)
		}
		return answer{unauthorized: true}
	}
	var r struct {
		IsAuthorized   *bool          `json:"isAuthorized"`
		Context        map[string]any `json:"context"`
		PolicyDocument struct {
			Statement []struct {
				Effect           string
				Action, Resource []string
			}
		} `json:"policyDocument"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.IsAuthorized != nil {
		return answer{allowed: *r.IsAuthorized, context: r.Context}
	}
	st := r.PolicyDocument.Statement
	if len(st) != 1 || len(st[0].Action) != 1 || st[0].Action[0] != "execute-api:Invoke" || len(st[0].Resource) != 1 ||
		!strings.HasPrefix(st[0].Resource[0], "arn:aws:execute-api:") {
		t.Fatalf("IAM policy %s", out)
	}
	return answer{allowed: st[0].Effect == "Allow", context: r.Context}
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
	a.log = zerolog.New(zerolog.NewTestWriter(t))
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

func TestConfigErrors(t *testing.T) {
	pool := pooltest.New(t, "k1")
	policy, _ := filepath.Abs("../../examples/policy.yaml")
	for _, body := range []string{
		"issuer: " + pool.Issuer() + "\nclients: [web]\nroutes: {\"GET /x\": {}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web]\nroutes: {\"/x\": {role: a}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web]\nroutes: {\"GET /x\": {tenant: \"{t}\"}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web]\nunknown: 1\n",
		"clients: [web]\n",
		"issuer: " + pool.Issuer() + "\nclients: [\"\"]\nroutes: {\"GET /x\": {role: a}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web, \" \"]\nroutes: {\"GET /x\": {role: a}}\n",
		"issuer: " + pool.Issuer() + "\nclients: []\nroutes: {\"GET /x\": {role: a}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web]\nroutes: {\"FETCH /x\": {role: a}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web]\nroutes: {\"GET /x?a=1\": {role: a}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web]\nroutes: {}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web]\n",
		"issuer: " + pool.Issuer() + "\nclients: [web, admin]\npolicy: " + policy + "\nroutes: {\"GET /x\": {role: a}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web, admin]\npolicy: " + policy + "\nclient: other\nroutes: {\"GET /x\": {role: a}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [web]\nclient: web\nroutes: {\"GET /x\": {role: a}}\n",
		"issuer: " + pool.Issuer() + "\nclients: [${PRETOKEN_TEST_UNSET_VARIABLE}]\nroutes: {\"GET /x\": {role: a}}\n",
	} {
		path := filepath.Join(t.TempDir(), "a.yaml")
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := load(path); err == nil {
			t.Errorf("accepted %q", body)
		}
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAmbiguousRoutesRefused: route sets whose winner depended on map
// order (a cycle of "more specific", duplicates by case or trailing slash)
// are refused at load, naming the routes.
func TestAmbiguousRoutesRefused(t *testing.T) {
	pool := pooltest.New(t, "k1")
	head := "issuer: " + pool.Issuer() + "\nclients: [web]\nclaims: {permissions: app_permissions, roles: app_roles}\nroutes:\n"
	for _, routes := range []string{
		`{"ANY /orders": {role: admin}, "GET /orders/{id}": {permission: "orders:read"}, "ANY /orders/export": {role: admin}}`,
		`{"get /admin": {permission: "orders:read"}, "GET /admin": {role: admin}}`,
		`{"GET /reports/": {permission: "orders:read"}, "GET /reports": {role: admin}}`,
	} {
		_, err := load(writeConfig(t, head+"  "+routes+"\n"))
		if err == nil {
			t.Errorf("accepted %s", routes)
		}
	}
}

// TestDecidesByMatchedRoute: the route API Gateway matched decides, and a
// TOKEN authorizer's path is matched so that no other spelling of
// /orders/export, and no encoded walk out of the token's tenant, reaches a
// wider route.
func TestDecidesByMatchedRoute(t *testing.T) {
	pool := pooltest.New(t, "k1")
	a, err := load(writeConfig(t, "issuer: "+pool.Issuer()+`
clients: [web]
claims: {permissions: app_permissions, roles: app_roles, tenant: tenant_id, scopes: true, scopePrefix: "orders-api/"}
routes:
  "GET /orders/{id}":                   {permission: "orders:read"}
  "GET /orders/export":                 {role: admin}
  "GET /tenants/{tenant}/orders/{id}":  {permission: "orders:read", tenant: "{tenant}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	reader := pool.Sign(t, "k1", map[string]any{"tenant_id": "acme"}) // scope orders-api/orders:read, no admin role
	invoke := func(ev []byte) answer {
		out, err := a.Invoke(t.Context(), json.RawMessage(ev))
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		b, _ := json.Marshal(out)
		return decide(t, b, msg)
	}
	for _, path := range []string{"/orders/%65xport", "/orders/Export", "/orders/export;jsessionid=1", "/orders/%2e%2e%2fadmin",
		"/orders/export/", "/tenants/acme/orders/..%2F..%2Fglobex%2Forders%2F1", "/tenants/acme/orders/..%2fx", "/orders/.."} {
		if d := invoke(eventWith(t, "rest-token.json", reader, "GET", path, "", "{}")); d.allowed {
			t.Errorf("TOKEN GET %s allowed", path)
		}
	}
	if d := invoke(eventWith(t, "rest-token.json", reader, "GET", "/orders/o-1", "", "{}")); !d.allowed {
		t.Error("TOKEN GET /orders/o-1 denied")
	}
	// HTTP API and REST REQUEST: the template API Gateway matched decides,
	// whatever the raw path says.
	for _, file := range []string{"http-api-v2.json", "rest-request.json"} {
		if d := invoke(eventWith(t, file, reader, "GET", "/orders/%65xport", "/orders/export", "{}")); d.allowed {
			t.Errorf("%s: /orders/export matched, raw path %%65xport: allowed", file)
		}
		if d := invoke(eventWith(t, file, reader, "GET", "/orders/export", "/orders/{id}", `{"id":"o-1"}`)); !d.allowed {
			t.Errorf("%s: /orders/{id} matched: denied", file)
		}
		if d := invoke(eventWith(t, file, reader, "GET", "/tenants/acme/orders/x", "/tenants/{tenant}/orders/{id}",
			`{"tenant":"acme","id":"../../globex/orders/1"}`)); d.allowed {
			t.Errorf("%s: a path parameter with a dot walk allowed", file)
		}
		if d := invoke(eventWith(t, file, reader, "GET", "/tenants/acme/orders/x", "/tenants/{tenant}/orders/{id}",
			`{"tenant":"acme","id":"o-1"}`)); !d.allowed {
			t.Errorf("%s: the token's own tenant denied", file)
		}
		if d := invoke(eventWith(t, file, reader, "GET", "/tenants/globex/orders/x", "/tenants/{tenant}/orders/{id}",
			`{"tenant":"globex","id":"o-1"}`)); d.allowed {
			t.Errorf("%s: another tenant allowed", file)
		}
	}
}

func TestExpand(t *testing.T) {
	t.Setenv("PRETOKEN_TEST_X", "x")
	got, err := expand("pay$out $PRETOKEN_TEST_X ${PRETOKEN_TEST_X} $${PRETOKEN_TEST_X}")
	if want := "pay$out $PRETOKEN_TEST_X x $x"; err != nil || got != want {
		t.Errorf("expand = %q, %v; want %q", got, err, want)
	}
	if _, err := expand("${PRETOKEN_TEST_UNSET_VARIABLE}"); err == nil {
		t.Error("an unset variable expanded to nothing")
	}
	path := writeConfig(t, "issuer: https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X\nclients: [web, admin]\n"+
		"policy: "+filepath.Join(must(filepath.Abs("../../examples")), "policy.yaml")+"\nclient: admin\n"+
		"routes: {\"GET /x\": {permission: pay$out}}\n")
	a, err := load(path)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := a.routes.MatchKey("GET /x", "GET"); err != nil || r.Permission != "pay$out" {
		t.Errorf("route: %+v, %v", r, err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestExampleConfig runs examples/authorizer.yaml with the example
// policies, as make build bundles them: access tokens only, a client's
// allow: list holds, and the tenant route allows a member of that tenant
// (examples/tenants.yaml) and no one else.
func TestExampleConfig(t *testing.T) {
	pool := pooltest.New(t, "k1")
	t.Setenv("POOL_ISSUER", pool.Issuer())
	t.Setenv("WEB_CLIENT_ID", "web")
	bundle := func(policy string) *authorizer {
		dir := t.TempDir()
		for src, dst := range map[string]string{"../../examples/authorizer.yaml": "authorizer.yaml", "../../examples/" + policy: "policy.yaml"} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		a, err := load(filepath.Join(dir, "authorizer.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// Tokens as the trigger writes them for the web client (V2_0).
	member := pool.Sign(t, "k1", map[string]any{"tenant_id": "acme", "scope": "openid orders-api/orders:read"})
	idToken := pool.Sign(t, "k1", map[string]any{"token_use": "id", "aud": "web", "client_id": nil, "scope": nil,
		"app_permissions": []any{"orders:read", "users:manage"}, "tenant_id": "acme"})
	for _, c := range []struct {
		policy, token, file, method, path, template string
		allowed                                     bool
	}{
		{"tenants.yaml", member, "rest-request.json", "GET", "/tenants/acme/orders", "/tenants/{tenant}/orders", true},
		{"tenants.yaml", member, "http-api-v2.json", "GET", "/tenants/acme/orders", "/tenants/{tenant}/orders", true},
		{"tenants.yaml", member, "rest-token.json", "GET", "/tenants/acme/orders", "/tenants/{tenant}/orders", true},
		{"tenants.yaml", member, "rest-request.json", "GET", "/tenants/globex/orders", "/tenants/{tenant}/orders", false},
		{"tenants.yaml", member, "rest-token.json", "GET", "/tenants/globex/orders", "/tenants/{tenant}/orders", false},
		{"tenants.yaml", member, "http-api-v2.json", "GET", "/orders", "/orders", true},
		{"tenants.yaml", idToken, "http-api-v2.json", "GET", "/tenants/acme/orders", "/tenants/{tenant}/orders", false},
		{"policy.yaml", member, "http-api-v2.json", "GET", "/orders", "/orders", true},
		{"policy.yaml", idToken, "http-api-v2.json", "GET", "/users", "/users", false}, // an ID token passes no allow: list
		{"policy.yaml", member, "http-api-v2.json", "GET", "/users", "/users", false},
	} {
		a := bundle(c.policy)
		out, err := a.Invoke(t.Context(), json.RawMessage(sampleEvent(t, c.file, c.token, c.method, c.path, c.template)))
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		b, _ := json.Marshal(out)
		if d := decide(t, b, msg); d.allowed != c.allowed {
			t.Errorf("%s, %s %s %s: allowed %v, want %v", c.policy, c.file, c.method, c.path, d.allowed, c.allowed)
		}
	}
}

// TestPrefetchAtInit: the keys are fetched at init, and the first request
// fetches nothing.
func TestPrefetchAtInit(t *testing.T) {
	pool := pooltest.New(t, "k1")
	a, err := start(setup(t, pool), zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	if n := pool.Fetches.Load(); n != 1 {
		t.Fatalf("%d fetches at init, want 1", n)
	}
	out, err := a.Invoke(t.Context(), json.RawMessage(sampleEvent(t, "http-api-v2.json", pool.Sign(t, "k1", nil), "GET", "/orders", "/orders")))
	b, _ := json.Marshal(out)
	if err != nil || !decide(t, b, "").allowed || pool.Fetches.Load() != 1 {
		t.Errorf("first request: %s, %v, %d fetches", b, err, pool.Fetches.Load())
	}
}

// TestRouteOrderAcrossColdStarts starts the authorizer under the Lambda
// runtime emulator several times with overlapping routes: each cold start
// has its own map order, and the narrowest route decides every time.
func TestRouteOrderAcrossColdStarts(t *testing.T) {
	pool := pooltest.New(t, "k1")
	path := writeConfig(t, "issuer: "+pool.Issuer()+`
clients: [web]
claims: {permissions: app_permissions, roles: app_roles}
routes:
  "ANY /{a}/{b}":           {role: admin}
  "ANY /orders/{id}":       {role: admin}
  "GET /orders/{id}":       {role: admin}
  "GET /orders/mine":       {permission: "orders:read"}
  "DELETE /orders/{id}":    {permission: "orders:read"}
`)
	reader := pool.Sign(t, "k1", map[string]any{"app_permissions": []string{"orders:read"}, "app_roles": []string{"viewer"}})
	bin := lambdatest.Build(t, ".")
	for range 3 {
		f := lambdatest.StartIsolated(t, bin, map[string]string{"PRETOKEN_AUTHORIZER_CONFIG": path})
		for _, c := range []struct {
			method, path string
			allowed      bool
		}{
			{"GET", "/orders/mine", true},   // the literal route
			{"DELETE", "/orders/o-1", true}, // the method's own route
			{"GET", "/orders/o-1", false},   // GET /orders/{id}: admin only
			{"POST", "/orders/mine", false}, // ANY /orders/{id}: admin only
			{"GET", "/users/u-1", false},    // ANY /{a}/{b}: admin only
		} {
			got := f.Invoke(t, eventWith(t, "rest-token.json", reader, c.method, c.path, "", "{}"))
			if d := decide(t, got.Body, got.ErrorMessage); d.allowed != c.allowed {
				t.Errorf("%s %s: allowed %v, want %v", c.method, c.path, d.allowed, c.allowed)
			}
		}
		f.Stop()
	}
}
