package permissions

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func tenantPolicy(t *testing.T) *Snapshot {
	t.Helper()
	p, err := ReadFile("../examples/tenants.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return mustCompile(t, p)
}

// TestResolveWithTenants: the active tenant's roles join the user's other
// roles, the tenant claims follow, and only the active tenant counts.
func TestResolveWithTenants(t *testing.T) {
	snap := tenantPolicy(t)
	tests := []struct {
		name      string
		sub       Subject
		roles     []string
		idClaims  map[string][]string
		noTenants bool
	}{
		{"admin in acme", Subject{Tenant: "acme", TenantRoles: []string{"tenant-admin"}, Tenants: []string{"acme", "globex"}},
			[]string{"member", "tenant-admin"}, map[string][]string{"tenant_id": {"acme"}, "tenants": {"acme", "globex"}, "app_roles": {"member", "tenant-admin"}}, false},
		{"member in globex", Subject{Tenant: "globex", TenantRoles: []string{"member"}, Tenants: []string{"acme", "globex"}},
			[]string{"member"}, map[string][]string{"tenant_id": {"globex"}, "tenants": {"acme", "globex"}, "app_roles": {"member"}}, false},
		{"no active tenant: global roles only", Subject{Groups: []string{"support-staff"}, Tenants: []string{"acme"}},
			[]string{"support"}, map[string][]string{"tenants": {"acme"}, "app_roles": {"support"}}, false},
		{"IdP group", Subject{IdPGroups: map[string][]string{"Okta": {"Okta-Support", "Unknown"}}},
			[]string{"support"}, map[string][]string{"tenants": nil, "app_roles": {"support"}}, false},
		{"the same group from another provider grants nothing", Subject{IdPGroups: map[string][]string{"CustomerB": {"Okta-Support"}}},
			nil, map[string][]string{"tenants": nil, "app_roles": nil}, false},
		{"an IdP group named like a Cognito group grants nothing", Subject{IdPGroups: map[string][]string{"Okta": {"support-staff"}}},
			nil, map[string][]string{"tenants": nil, "app_roles": nil}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := snap.Resolve(tt.sub)
			if diff := cmp.Diff(tt.roles, res.Roles); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
			got := map[string][]string{}
			for _, c := range res.ID.Claims {
				got[c.Name] = c.Values
			}
			if diff := cmp.Diff(tt.idClaims, got); diff != "" {
				t.Errorf("ID claims (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTenantsClaimIsDroppedFirst: with 500 memberships only the active
// tenant's roles enter the token, and the tenants claim is what roles-only
// drops.
func TestTenantsClaimIsDroppedFirst(t *testing.T) {
	snap := tenantPolicy(t)
	var tenants []string
	for i := range 500 {
		tenants = append(tenants, fmt.Sprintf("tenant-%03d", i))
	}
	res := snap.Resolve(Subject{Tenant: "tenant-007", TenantRoles: []string{"member"}, Tenants: tenants})
	if diff := cmp.Diff([]string{"member"}, res.Roles); diff != "" {
		t.Errorf("roles with 500 memberships (-want +got):\n%s", diff)
	}
	for _, c := range res.ID.Claims {
		if c.Name == "tenants" && (!c.DropFirst || len(c.Values) != 500) {
			t.Errorf("tenants claim: %d values, drop first %v", len(c.Values), c.DropFirst)
		}
	}
}

func TestParseIdPGroups(t *testing.T) {
	for in, want := range map[string][]string{
		"[Okta-Admins, eng]":     {"Okta-Admins", "eng"},       // a multi-valued SAML attribute
		`["Okta-Admins","eng"]`:  {"Okta-Admins", "eng"},       // an OIDC array claim
		"Okta-Admins,eng":        {"Okta-Admins", "eng"},       // a plain comma list
		" Okta-Admins , , eng ":  {"Okta-Admins", "eng"},       // ASCII spaces and empty names
		"eng":                    {"eng"},                      // one group
		"":                       nil,                          // none
		"[]":                     nil,                          // none, as JSON
		`["a b", " c "]`:         {"a b", " c "},               // JSON elements are kept as they are
		"\u00a0Okta-Admins, eng": {"\u00a0Okta-Admins", "eng"}, // a no-break space is not trimmed
		"[\u00a0Okta-Admins]":    {"\u00a0Okta-Admins"},
		"Okta-Admins\t":          {"Okta-Admins\t"},
		"[Domain Users, admins]": {"Domain Users", "admins"},
	} {
		if diff := cmp.Diff(want, ParseIdPGroups(in), cmpEmptyNil); diff != "" {
			t.Errorf("ParseIdPGroups(%q) (-want +got):\n%s", in, diff)
		}
	}
}

var cmpEmptyNil = cmp.Transformer("nilEmpty", func(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
})

func TestValidateTenancyAndIdPGroups(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"tenancy: {active: cookie}\n", `tenancy.active: active "cookie" must be "stored" or attribute:<user attribute>`},
		{"clients:\n  default:\n    idToken: {claims: {t: tenant}}\n", `claim source "tenant" needs tenancy`},
		{"roles: {a: {}}\nidpGroups:\n  - {provider: Okta, roles: {eng: [a]}}\n", "name the user attribute"},
		{"idpGroups:\n  - {provider: Okta, attribute: custom:groups, roles: {eng: [ghost]}}\n", `idpGroups[0].roles.eng[0]: unknown role "ghost"`},
		// The form before providers were named: refused, naming provider.
		{"roles: {a: {}}\nidpGroups:\n  attribute: custom:groups\n  roles: {eng: [a]}\n", "p.yaml:2:1: idpGroups: idpGroups is a list of entries that each name their provider"},
		{"roles: {a: {}}\nidpGroups:\n  - {attribute: custom:groups, roles: {eng: [a]}}\n", "idpGroups[0].provider: name the identity provider"},
		{"roles: {a: {}}\nidpGroups:\n  - {provider: Okta, attribute: custom:groups, roles: {eng: [a]}}\n  - {provider: Okta, attribute: custom:g2}\n",
			`idpGroups[1].provider: provider "Okta" has two entries`},
		{"idpGroups:\n  - {provider: Okta, attribute: identities}\n", `attribute "identities" must be a user attribute name`},
	} {
		_, err := ParseFile("p.yaml", []byte(c.src))
		var ferr *FileError
		if !errors.As(err, &ferr) || !strings.Contains(ferr.Error(), c.want) {
			t.Errorf("%q: %v; want %q", c.src, err, c.want)
		}
	}
}
