package permissions

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateAcceptsTestPolicy(t *testing.T) {
	if err := Validate(testPolicy()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

// TestValidateErrors breaks a valid policy in one way per case and checks
// that exactly that problem is reported, at its place.
func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(p *Policy)
		wantPath string
		wantMsg  string
	}{
		{"unknown inherited role", func(p *Policy) { p.Roles["a"] = Role{Inherits: []string{"ghost"}} }, "roles.a.inherits[0]", `unknown role "ghost"`},
		{"unknown group role", func(p *Policy) { p.Groups["staff"] = []string{"editor", "ghost"} }, "groups.staff[1]", `unknown role "ghost"`},
		{"unknown default role", func(p *Policy) { p.Defaults.Roles = []string{"ghost"} }, "defaults.roles[0]", `unknown role "ghost"`},
		{"unknown machine role", func(p *Policy) { p.Machines["m2m"] = []string{"ghost"} }, "machines.m2m[0]", `unknown role "ghost"`},
		{"self inheritance", func(p *Policy) { p.Roles["d"] = Role{Inherits: []string{"d"}} }, "roles.d.inherits[0]", "inheritance cycle: d -> d"},
		{"long cycle", func(p *Policy) { p.Roles["d"] = Role{Inherits: []string{"a"}} }, "roles.d.inherits[0]", "inheritance cycle: a -> b -> c -> d -> a"},
		{"permission with blank", func(p *Policy) { p.Roles["d"] = Role{Permissions: []string{"orders read"}} }, "roles.d.permissions[0]", "without blanks"},
		{"permission with control character", func(p *Policy) { p.Roles["d"] = Role{Permissions: []string{"orders:\x01"}} }, "roles.d.permissions[0]", "printable"},
		{"permission not ASCII", func(p *Policy) { p.Roles["d"] = Role{Permissions: []string{"commandes:lire·"}} }, "roles.d.permissions[0]", "printable"},
		{"empty permission", func(p *Policy) { p.Roles["d"] = Role{Permissions: []string{""}} }, "roles.d.permissions[0]", "1 to 256"},
		{"permission too long", func(p *Policy) { p.Roles["d"] = Role{Permissions: []string{strings.Repeat("x", 257)}} }, "roles.d.permissions[0]", "1 to 256"},
		{"duplicate permission", func(p *Policy) { p.Roles["d"] = Role{Permissions: []string{"x", "x"}} }, "roles.d.permissions[1]", "listed twice"},
		{"empty role name", func(p *Policy) { p.Roles[""] = Role{} }, "roles.", "role name"},
		{"role name with blank", func(p *Policy) { p.Roles["my role"] = Role{} }, "roles.my role", "role name"},
		{"empty group name", func(p *Policy) { p.Groups[""] = []string{"basic"} }, "groups.", "group name"},
		{"bad client id", func(p *Policy) { p.Clients["web client"] = ClientProfile{} }, "clients.web client", "app client id"},
		{"bad machine id", func(p *Policy) { p.Machines["m-2"] = []string{"basic"} }, "machines.m-2", "app client id"},
		{"reserved claim", func(p *Policy) { setIDClaim(p, "sub", "roles") }, "clients.default.idToken.claims.sub", "reserved by Cognito"},
		{"reserved aud", func(p *Policy) { setIDClaim(p, "aud", "roles") }, "clients.default.idToken.claims.aud", "reserved by Cognito"},
		{"cognito claim", func(p *Policy) { setIDClaim(p, "cognito:groups", "roles") }, "clients.default.idToken.claims.cognito:groups", "cognito: claim"},
		{"cognito username", func(p *Policy) { setIDClaim(p, "cognito:username", "roles") }, "clients.default.idToken.claims.cognito:username", "reserved by Cognito"},
		{"dev claim added", func(p *Policy) { setIDClaim(p, "dev:x", "roles") }, "clients.default.idToken.claims.dev:x", "only be suppressed"},
		{"scope claim in access token", func(p *Policy) {
			c := p.Clients["m2m"]
			c.AccessToken.Claims["scope"] = "permissions"
			p.Clients["m2m"] = c
		}, "clients.m2m.accessToken.claims.scope", "scopes: true"},
		{"a standard claim that takes a single value", func(p *Policy) { setIDClaim(p, "email_verified", "roles") }, "clients.default.idToken.claims.email_verified", "standard or Cognito claim"},
		{"unknown claim source", func(p *Policy) { setIDClaim(p, "x", "everything") }, "clients.default.idToken.claims.x", "claim source"},
		{"empty attribute source", func(p *Policy) { setIDClaim(p, "x", "attribute:") }, "clients.default.idToken.claims.x", "claim source"},
		{"claim name with blank", func(p *Policy) { setIDClaim(p, "my claim", "roles") }, "clients.default.idToken.claims.my claim", "claim name"},
		{"claim added and suppressed", func(p *Policy) {
			c := p.Clients[DefaultProfile]
			c.IDToken.SuppressClaims = []string{"roles"}
			p.Clients[DefaultProfile] = c
		}, "clients.default.idToken.claims.roles", "both added and suppressed"},
		{"suppress reserved claim", func(p *Policy) {
			c := p.Clients[DefaultProfile]
			c.AccessToken.SuppressClaims = []string{"exp"}
			p.Clients[DefaultProfile] = c
		}, "clients.default.accessToken.suppressClaims[0]", "reserved by Cognito"},
		{"scopes in the ID token", func(p *Policy) {
			c := p.Clients[DefaultProfile]
			c.IDToken.Scopes = true
			p.Clients[DefaultProfile] = c
		}, "clients.default.idToken.scopes", "access token"},
		{"scope prefix with blank", func(p *Policy) {
			c := p.Clients[DefaultProfile]
			c.AccessToken.ScopePrefix = "my api/"
			p.Clients[DefaultProfile] = c
		}, "clients.default.accessToken.scopePrefix", "scope prefix"},
		{"bad allow entry", func(p *Policy) {
			c := p.Clients[DefaultProfile]
			c.AccessToken.Allow = []string{"orders*:x"}
			p.Clients[DefaultProfile] = c
		}, "clients.default.accessToken.allow[0]", "allow entry"},
		{"bad suppressed scope", func(p *Policy) {
			c := p.Clients[DefaultProfile]
			c.AccessToken.SuppressScopes = []string{""}
			p.Clients[DefaultProfile] = c
		}, "clients.default.accessToken.suppressScopes[0]", "scope"},
		{"negative budget", func(p *Policy) { p.Limits.MaxTokenBytes = -1 }, "limits.maxTokenBytes", "between"},
		// Scopes with a meaning of their own in Cognito are never permissions.
		{"admin scope as a permission", func(p *Policy) {
			p.Roles["basic"] = Role{Permissions: []string{"aws.cognito.signin.user.admin"}}
			c := p.Clients[DefaultProfile]
			c.AccessToken.SuppressScopes = nil // else also "added and suppressed"
			p.Clients[DefaultProfile] = c
		}, "roles.basic.permissions[0]", "lets users read and change their own attributes"},
		{"openid as a permission", func(p *Policy) { p.Roles["basic"] = Role{Permissions: []string{"openid"}} }, "roles.basic.permissions[0]", "OpenID Connect"},
		{"prefix makes a Cognito scope", func(p *Policy) {
			p.Roles["basic"] = Role{Permissions: []string{"admin"}}
			c := p.Clients["m2m"]
			c.AccessToken.ScopePrefix = "aws.cognito.signin.user."
			p.Clients["m2m"] = c
		}, "clients.m2m.accessToken.scopePrefix", `the scope "aws.cognito.signin.user.admin"`},
		{"scope added and suppressed", func(p *Policy) {
			c := p.Clients["m2m"]
			c.AccessToken.SuppressScopes = []string{"rs/reports:read"}
			p.Clients["m2m"] = c
		}, "clients.m2m.accessToken.suppressScopes[0]", `both added (from permission "reports:read") and suppressed`},
		{"unknown overflow", func(p *Policy) { p.Limits.OnOverflow = "truncate" }, "limits.onOverflow", "onOverflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			tt.mutate(p)
			err := Validate(p)
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			if len(verr.Errors) != 1 {
				t.Fatalf("got %d problems, want 1: %v", len(verr.Errors), err)
			}
			got := verr.Errors[0]
			if got.Path.String() != tt.wantPath || !strings.Contains(got.Msg, tt.wantMsg) {
				t.Errorf("got %q: %q\nwant %q: ...%q...", got.Path, got.Msg, tt.wantPath, tt.wantMsg)
			}
		})
	}
}

func setIDClaim(p *Policy, name, src string) {
	c := p.Clients[DefaultProfile]
	c.IDToken.Claims[name] = src
	p.Clients[DefaultProfile] = c
}

func TestValidateCollectsEveryError(t *testing.T) {
	p := &Policy{
		Roles:    map[string]Role{"a": {Inherits: []string{"b"}, Permissions: []string{"bad perm"}}, "b": {Inherits: []string{"a"}}},
		Groups:   map[string][]string{"g": {"ghost"}},
		Defaults: Defaults{Roles: []string{"phantom"}},
		Limits:   Limits{OnOverflow: "x"},
	}
	err := Validate(p)
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Validate = %v, want a *ValidationError", err)
	}
	var got []string
	for _, fe := range verr.Errors {
		got = append(got, fe.Path.String())
	}
	want := []string{"roles.a.permissions[0]", "roles.b.inherits[0]", "groups.g[0]", "defaults.roles[0]", "limits.onOverflow"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problem paths (-want +got):\n%s", diff)
	}
}

func TestCheckClaims(t *testing.T) {
	for _, name := range []string{"app_roles", "tenant", "custom:x", "email"} {
		if err := CheckAddClaim(name, IDToken); err != nil {
			t.Errorf("CheckAddClaim(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range strings.Fields("acr amr at_hash auth_time azp client_id cognito:username device_key event_id exp iat identities iss jti nbf nonce origin_jti sub token_use username version aud cognito:groups cognito:roles cognito:preferred_role cognito:anything dev:x") {
		for _, tok := range []Token{IDToken, AccessToken} {
			if CheckAddClaim(name, tok) == nil {
				t.Errorf("CheckAddClaim(%q, %v) = nil, want an error", name, tok)
			}
		}
	}
	if err := CheckSuppressClaim("dev:x", AccessToken); err != nil {
		t.Errorf("dev: claims can be suppressed, got %v", err)
	}
	if CheckSuppressClaim("iss", IDToken) == nil {
		t.Error("iss cannot be suppressed")
	}
}

// TestShadowingClaimNamesRefused: a managed claim may not take a name that
// users or Cognito own, whatever its case, in either token: where the claim
// ends without a value the user's attribute, or Cognito's claim, would pass
// for it.
func TestShadowingClaimNamesRefused(t *testing.T) {
	names := []string{"Username", "USERNAME", "identities", "Identities", "cognito:groups", "Cognito:Roles", "cognito:anything",
		"custom:tenant", "CUSTOM:tenant", "dev:x", "Dev:X", "email", "Email", "email_verified", "name", "given_name", "family_name",
		"preferred_username", "phone_number", "address", "picture", "locale", "zoneinfo", "updated_at", "sid", "c_hash", "Sub", "ISS",
		"token_use", "Client_Id", "scope", "Scope", "version", "event_id", "origin_jti", "device_key"}
	for _, name := range names {
		for _, tok := range []string{"idToken", "accessToken"} {
			src := "clients:\n  default:\n    " + tok + ":\n      claims: {\"" + name + "\": \"attribute:custom:tenant\"}\n"
			_, err := ParseFile("p.yaml", []byte(src))
			var ferr *FileError
			if !errors.As(err, &ferr) || !strings.Contains(ferr.Error(), "claims."+name) {
				t.Errorf("claim %q in the %s: %v; want it refused", name, tok, err)
			}
		}
	}
	for _, name := range []string{"app_roles", "tenant", "app_email", "customer", "developer"} {
		src := "clients:\n  default:\n    idToken:\n      claims: {\"" + name + "\": \"attribute:custom:tenant\"}\n"
		if _, err := ParseFile("p.yaml", []byte(src)); err != nil {
			t.Errorf("claim %q: %v; want it accepted", name, err)
		}
	}
}

// TestEmptyManagedClaimsAreSuppressed: a managed claim that ends without a
// value (an attribute the user lacks, no active tenant) is named in Unset,
// which the trigger suppresses.
func TestEmptyManagedClaimsAreSuppressed(t *testing.T) {
	p, err := ParseFile("p.yaml", []byte(`tenancy: {active: stored}
clients:
  default:
    idToken: {claims: {app_tenant: tenant, app_dept: "attribute:custom:dept"}, suppressClaims: [dev:x]}
    accessToken: {claims: {app_tenant: tenant}}
`))
	if err != nil {
		t.Fatal(err)
	}
	snap := mustCompile(t, p)
	res := snap.Resolve(Subject{ClientID: "web"})
	if diff := cmp.Diff([]string{"app_dept", "app_tenant"}, res.ID.Unset); diff != "" {
		t.Errorf("ID token claims without a value (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"app_tenant"}, res.Access.Unset); diff != "" {
		t.Errorf("access token claims without a value (-want +got):\n%s", diff)
	}
	res = snap.Resolve(Subject{ClientID: "web", Tenant: "acme", Attributes: map[string]string{"custom:dept": "ops"}})
	if len(res.ID.Unset) != 0 || len(res.Access.Unset) != 0 {
		t.Errorf("with values: unset %v, %v", res.ID.Unset, res.Access.Unset)
	}
}
