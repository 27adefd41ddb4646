package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
)

// TestIdPGroupsNeedTheirProvider: the attacker's inputs for identity-provider
// groups. A native user who wrote the mapped attribute, and a user of another
// provider that sends the same group, get nothing from it, and the log line
// says why; only Okta's own users get Okta's roles.
func TestIdPGroupsNeedTheirProvider(t *testing.T) {
	snap := loadSnapshot(t, "../examples/tenants.yaml")
	for _, c := range []struct {
		name, identities, groups string
		want                     []any
		log                      string
	}{
		{"an Okta user", `[{"providerName":"Okta","providerType":"SAML","primary":"true"}]`, "[Okta-Support]", []any{"support"}, ""},
		{"a native user who wrote custom:groups", "", "[Okta-Support]", []any{}, `"idp_groups_ignored":["custom:groups for provider Okta: not a federated user (no identities)"]`},
		{"customer B's SAML sends the same group", `[{"providerName":"CustomerB","providerType":"SAML"}]`, `["Okta-Support"]`, []any{},
			`"idp_groups_ignored":["custom:groups for provider Okta: the user signs in through CustomerB"]`},
		{"no-break space padding", `[{"providerName":"Okta"}]`, "[\u00a0Okta-Support]", []any{}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			attrs := map[string]string{"custom:groups": c.groups}
			if c.identities != "" {
				attrs["identities"] = c.identities
			}
			var logs bytes.Buffer
			h := New(Static{S: snap}, zerolog.New(&logs), WithUsers(&memUsers{}, false))
			r, err := h.Handle(context.Background(), tenantEvent(t, attrs))
			if err != nil {
				t.Fatal(err)
			}
			roles := idClaims(t, r)["app_roles"]
			if roles == nil {
				roles = []any{}
			}
			if diff := cmp.Diff(c.want, jsonRound(t, roles)); diff != "" {
				t.Errorf("app_roles (-want +got):\n%s", diff)
			}
			if !strings.Contains(logs.String(), c.log) {
				t.Errorf("log line:\n%s\nwant it to contain %s", logs.String(), c.log)
			}
		})
	}
}

// TestCognitoAddedPrefixedScopesAreSuppressed: an app client allowed a
// resource-server scope that it asks for gets it from Cognito without the
// trigger, and downstream reads orders-api/reports:read as the permission
// reports:read. Under the profile's scopePrefix only the policy grants:
// every requested scope there that is not granted is suppressed, for users
// and machine clients, and other scopes are left alone.
func TestCognitoAddedPrefixedScopesAreSuppressed(t *testing.T) {
	snap := loadSnapshot(t, "../examples/policy.yaml")
	requested := []string{"openid", "orders-api/reports:read", "orders-api/orders:read", "orders-api/users:manage", "other-api/x", "orders-api/"}
	for _, c := range []struct {
		name, event, client string
		machine             bool
		suppressed, added   []string
	}{
		{"a user (viewer) of the default client", "v2-signin-groups.json", "web", false,
			[]string{"aws.cognito.signin.user.admin", "orders-api/reports:read", "orders-api/users:manage", "orders-api/"},
			[]string{"orders-api/catalog:read", "orders-api/orders:read"}},
		{"the reporting machine client", "v3-client-credentials.json", "7m2mclient", true,
			[]string{"orders-api/users:manage", "orders-api/"},
			[]string{"orders-api/orders:read", "orders-api/reports:read"}},
		{"an unknown machine client", "v3-client-credentials.json", "ghost", true,
			[]string{"aws.cognito.signin.user.admin", "orders-api/reports:read", "orders-api/orders:read", "orders-api/users:manage", "orders-api/"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev := readEvent(t, c.event)
			ev.CallerContext.ClientID = c.client
			ev.Request.Scopes = requested
			if !c.machine {
				ev.Request.GroupConfiguration.GroupsToOverride = nil
			}
			r, err := New(Static{S: snap}, zerolog.Nop()).Handle(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			at := r.Response.ClaimsAndScopeOverrideDetails.AccessTokenGeneration
			if diff := cmp.Diff(c.suppressed, at.ScopesToSuppress); diff != "" {
				t.Errorf("scopesToSuppress (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.added, at.ScopesToAdd); diff != "" {
				t.Errorf("scopesToAdd (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDroppedClaimsAreSuppressed: a managed claim that ends without a value,
// dropped on overflow or left without its attribute or tenant, is suppressed
// in the token that would carry it, in V1_0 and V2_0 answers.
func TestDroppedClaimsAreSuppressed(t *testing.T) {
	p, err := permissions.ParseFile("p.yaml", []byte(`roles: {big: {permissions: [`+strings.Repeat("p", 200)+`:a, `+strings.Repeat("p", 200)+`:b]}}
defaults: {roles: [big]}
tenancy: {active: "attribute:custom:tenant_id"}
clients:
  default:
    idToken: {claims: {app_roles: roles, app_permissions: permissions, app_tenant: tenant, app_dept: "attribute:custom:dept"}}
    accessToken: {claims: {app_permissions: permissions}}
limits: {maxTokenBytes: 300, onOverflow: roles-only}
`))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := permissions.Compile(p, "t")
	if err != nil {
		t.Fatal(err)
	}
	users := &memUsers{users: map[string]permissions.User{"u-1": {}}}
	ev := tenantEvent(t, nil)
	r, err := New(Static{S: snap}, zerolog.Nop(), WithUsers(users, false)).Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	d := r.Response.ClaimsAndScopeOverrideDetails
	if diff := cmp.Diff([]string{"app_dept", "app_tenant", "app_permissions"}, d.IDTokenGeneration.ClaimsToSuppress); diff != "" {
		t.Errorf("ID token suppressions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"app_permissions"}, d.AccessTokenGeneration.ClaimsToSuppress); diff != "" {
		t.Errorf("access token suppressions (-want +got):\n%s", diff)
	}
	ev = tenantEvent(t, nil)
	ev.Version = "1"
	r, err = New(Static{S: snap}, zerolog.Nop(), WithUsers(users, false)).Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"app_dept", "app_tenant", "app_permissions"}, r.Response.ClaimsOverrideDetails.ClaimsToSuppress); diff != "" {
		t.Errorf("V1 suppressions (-want +got):\n%s", diff)
	}
}

// TestMetricsAtEveryLogLevel: at PRETOKEN_LOG_LEVEL=error an issued token's
// line would be left out, and with it the metrics; it goes out with them.
func TestMetricsAtEveryLogLevel(t *testing.T) {
	snap := loadSnapshot(t, "../examples/policy.yaml")
	for _, lvl := range []zerolog.Level{zerolog.DebugLevel, zerolog.InfoLevel, zerolog.WarnLevel, zerolog.ErrorLevel} {
		var logs bytes.Buffer
		h := New(Static{S: snap}, zerolog.New(&logs).Level(lvl), WithMetrics("fn"))
		if _, err := h.Handle(context.Background(), readEvent(t, "v2-signin-groups.json")); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], `"_aws":{`) || !strings.Contains(lines[0], `"Tokens":1`) ||
			!strings.Contains(lines[0], `"Outcome":"issued"`) {
			t.Errorf("level %s: want one line with the metrics, got:\n%s", lvl, logs.String())
		}
		if lvl == zerolog.ErrorLevel && strings.Contains(lines[0], `"roles":`) {
			t.Errorf("level error: the metrics line says more than its metrics: %s", lines[0])
		}
	}
}

// TestUserValuesInTheLogLine: a tenant id the user wrote reaches the log
// line cut to 64 characters and escaped.
func TestUserValuesInTheLogLine(t *testing.T) {
	p, err := permissions.ReadFile("../examples/tenants.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p.Tenancy.Active = "attribute:custom:tenant_id"
	snap, err := permissions.Compile(p, "t")
	if err != nil {
		t.Fatal(err)
	}
	users := &memUsers{users: map[string]permissions.User{"u-1": {Memberships: map[string][]string{"acme": {"member"}}}}}
	long := strings.Repeat("x", 5000)
	for _, c := range []struct{ written, logged string }{
		{long, strings.Repeat("x", 61) + "..."},
		{"evil\n{\"outcome\":\"issued\"}\u2028", `evil\n{\"outcome\":\"issued\"}\u2028`},
		{"caf\u00e9", `caf\u00e9`},
	} {
		var logs bytes.Buffer
		h := New(Static{S: snap}, zerolog.New(&logs), WithUsers(users, false))
		if _, err := h.Handle(context.Background(), tenantEvent(t, map[string]string{"custom:tenant_id": c.written})); err != nil {
			t.Fatal(err)
		}
		var line struct {
			Refused string `json:"tenant_refused"`
		}
		if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
			t.Fatalf("log line: %v\n%s", err, logs.String())
		}
		if line.Refused != c.logged || len(line.Refused) > 64+5*strings.Count(line.Refused, `\u`) {
			t.Errorf("tenant_refused = %q, want %q", line.Refused, c.logged)
		}
	}
}

// TestPolicyScopesAreSuppressedInEveryProfile: a scope means a permission
// downstream whichever app client asked for it, so a profile without a
// prefix of its own (or with scopes off) suppresses the scopes under another
// profile's prefix that it does not grant, and a profile that adds scopes
// without a prefix makes every permission's name such a scope.
func TestPolicyScopesAreSuppressedInEveryProfile(t *testing.T) {
	for _, c := range []struct {
		name, policy string
		requested    []string
		suppressed   []string
	}{
		{"another profile's prefix", `roles: {viewer: {permissions: [orders:read]}, admin: {permissions: [orders:write]}}
defaults: {roles: [viewer]}
clients:
  default: {accessToken: {claims: {app_roles: roles}}}
  console: {accessToken: {scopes: true, scopePrefix: orders-api/}}
`, []string{"openid", "orders-api/orders:write", "orders-api/orders:read", "other-api/x"},
			[]string{"orders-api/orders:write", "orders-api/orders:read"}},
		{"unprefixed scopes", `roles: {viewer: {permissions: [api/orders.read]}, admin: {permissions: [api/orders.delete]}}
defaults: {roles: [viewer]}
clients:
  default: {accessToken: {scopes: true}}
`, []string{"openid", "api/orders.delete", "api/orders.read", "api/other"},
			[]string{"api/orders.delete"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := permissions.ParseFile("p.yaml", []byte(c.policy))
			if err != nil {
				t.Fatal(err)
			}
			snap, err := permissions.Compile(p, "t")
			if err != nil {
				t.Fatal(err)
			}
			ev := readEvent(t, "v2-signin-groups.json")
			ev.CallerContext.ClientID = "web"
			ev.Request.GroupConfiguration.GroupsToOverride = nil
			ev.Request.Scopes = c.requested
			r, err := New(Static{S: snap}, zerolog.Nop()).Handle(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			at := r.Response.ClaimsAndScopeOverrideDetails.AccessTokenGeneration
			if diff := cmp.Diff(c.suppressed, at.ScopesToSuppress); diff != "" {
				t.Errorf("scopesToSuppress (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTenancyAttributeClaimIsTheCheckedTenant: with tenancy.active taken
// from an attribute, a claim copying that attribute carries the active
// tenant only when the user is a member of it, so a verifier that reads the
// claim as the tenant (authz.ClaimsFromPolicy does) never sees a refused one.
func TestTenancyAttributeClaimIsTheCheckedTenant(t *testing.T) {
	p, err := permissions.ParseFile("p.yaml", []byte(`roles: {viewer: {permissions: [orders:read]}}
defaults: {roles: [viewer]}
tenancy: {active: "attribute:custom:tenant_id"}
clients:
  default: {idToken: {claims: {org: "attribute:custom:tenant_id"}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := permissions.Compile(p, "t")
	if err != nil {
		t.Fatal(err)
	}
	users := &memUsers{users: map[string]permissions.User{"u-1": {Memberships: map[string][]string{"acme": {"viewer"}}}}}
	h := New(Static{S: snap}, zerolog.Nop(), WithUsers(users, false))
	for tenant, want := range map[string]any{"acme": "acme", "globex": nil} {
		r, err := h.Handle(context.Background(), tenantEvent(t, map[string]string{"custom:tenant_id": tenant}))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := idClaims(t, r)["org"]
		if want == nil && ok || want != nil && got != want {
			t.Errorf("custom:tenant_id=%s: org claim %v (present %v); want %v", tenant, got, ok, want)
		}
	}
}
