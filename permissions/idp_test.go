package permissions

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const oktaIdentities = `[{"userId":"00u1","providerName":"Okta","providerType":"SAML","issuer":null,"primary":"true","dateCreated":"1700000000000"}]`

// TestIdPGroupsOf: an identity provider's groups count only for a user whose
// identities attribute (written by Cognito) names that provider alone. The
// attacker's inputs: a native user who wrote the mapped attribute, a user of
// another provider that sends the same group, and identities it cannot
// write but might hope to confuse.
func TestIdPGroupsOf(t *testing.T) {
	entries := IdPGroups{
		{Provider: "Okta", Attribute: "custom:groups", Roles: map[string][]string{"Okta-Support": {"support"}}},
		{Provider: "CustomerB", Attribute: "custom:b_groups", Roles: map[string][]string{"b-admins": {"b-admin"}}},
	}
	tests := []struct {
		name        string
		attrs       map[string]string
		groups      map[string][]string
		ignoredHint []string
	}{
		{"an Okta user", map[string]string{"identities": oktaIdentities, "custom:groups": "[Okta-Support, eng]"},
			map[string][]string{"Okta": {"Okta-Support", "eng"}}, nil},
		{"a native user who wrote the attribute", map[string]string{"custom:groups": "[Okta-Support]"},
			nil, []string{"custom:groups for provider Okta: not a federated user"}},
		{"another provider that sends the same group", map[string]string{"identities": `[{"providerName":"CustomerB","providerType":"SAML"}]`, "custom:groups": "[Okta-Support]"},
			nil, []string{"custom:groups for provider Okta: the user signs in through CustomerB"}},
		{"identities naming two providers", map[string]string{"identities": `[{"providerName":"Okta"},{"providerName":"CustomerB"}]`, "custom:groups": "Okta-Support"},
			nil, []string{"custom:groups for provider Okta: identities name CustomerB, Okta"}},
		{"identities that do not decode", map[string]string{"identities": `Okta`, "custom:groups": "Okta-Support"},
			nil, []string{"custom:groups for provider Okta: not a federated user"}},
		{"an Okta user without groups", map[string]string{"identities": oktaIdentities}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups, ignored := IdPGroupsOf(entries, tt.attrs)
			if diff := cmp.Diff(tt.groups, groups, cmpEmptyNil); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
			if len(ignored) != len(tt.ignoredHint) {
				t.Fatalf("ignored = %q, want %d entries", ignored, len(tt.ignoredHint))
			}
			for i, hint := range tt.ignoredHint {
				if !strings.Contains(ignored[i], hint) {
					t.Errorf("ignored[%d] = %q, want it to say %q", i, ignored[i], hint)
				}
			}
		})
	}
}

// TestIdPGroupsPerProvider: resolved through a compiled policy, only the
// provider's own entry grants, and a group padded with a no-break space
// matches nothing.
func TestIdPGroupsPerProvider(t *testing.T) {
	p, err := ParseFile("p.yaml", []byte(`roles: {support: {permissions: [tickets:read]}, b-admin: {permissions: [b:all]}}
idpGroups:
  - {provider: Okta, attribute: custom:groups, roles: {Okta-Support: [support]}}
  - {provider: CustomerB, attribute: custom:groups, roles: {Admins: [b-admin]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	snap := mustCompile(t, p)
	for _, c := range []struct {
		name, identities, groups string
		want                     []string
	}{
		{"Okta's group from Okta", oktaIdentities, "[Okta-Support]", []string{"support"}},
		{"Okta's group from CustomerB", `[{"providerName":"CustomerB"}]`, "[Okta-Support]", nil},
		{"CustomerB's group from CustomerB", `[{"providerName":"CustomerB"}]`, "[Admins]", []string{"b-admin"}},
		{"a native user", "", "[Okta-Support, Admins]", nil},
		{"no-break space padding", oktaIdentities, "[\u00a0Okta-Support]", nil},
		{"no-break space in JSON", oktaIdentities, `["Okta-Support\u00a0"]`, nil},
		{"ASCII spaces around a SAML element", oktaIdentities, "[ Okta-Support ]", []string{"support"}},
	} {
		attrs := map[string]string{"custom:groups": c.groups}
		if c.identities != "" {
			attrs["identities"] = c.identities
		}
		groups, _ := IdPGroupsOf(snap.IdPGroups(), attrs)
		res := snap.Resolve(Subject{IdPGroups: groups})
		if diff := cmp.Diff(c.want, res.Roles, cmpEmptyNil); diff != "" {
			t.Errorf("%s: roles (-want +got):\n%s", c.name, diff)
		}
	}
}

// TestIdPGroupsFileRoundTrip: export lists entries by provider whatever the
// file's order, and the stored JSON form of a provider-less policy decodes
// into an entry that validation refuses, naming provider.
func TestIdPGroupsFileRoundTrip(t *testing.T) {
	src := `roles: {a: {}}
idpGroups:
  - {provider: Zeta, attribute: custom:z, roles: {z: [a]}}
  - {provider: Alpha, attribute: custom:a, roles: {x: [a]}}
`
	p, err := ParseFile("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	out, err := MarshalFile(p, "")
	if err != nil {
		t.Fatal(err)
	}
	want := "idpGroups:\n  - provider: Alpha\n    attribute: custom:a\n    roles:\n      x:\n        - a\n  - provider: Zeta\n"
	if !strings.Contains(string(out), want) {
		t.Errorf("export:\n%s\nwant it to contain:\n%s", out, want)
	}
	p2, err := ParseFile("p.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	if out2, _ := MarshalFile(p2, ""); string(out2) != string(out) {
		t.Errorf("export is not byte-stable:\n%s\n---\n%s", out, out2)
	}
	// JSON, as the inline policy item holds it.
	b, _ := json.Marshal(p)
	var back Policy
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p.IdPGroups, back.IdPGroups); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	var legacy Policy
	if err := json.Unmarshal([]byte(`{"roles":{"a":{}},"idpGroups":{"attribute":"custom:groups","roles":{"eng":["a"]}}}`), &legacy); err != nil {
		t.Fatal(err)
	}
	if err := Validate(&legacy); err == nil || !strings.Contains(err.Error(), "idpGroups[0].provider") {
		t.Errorf("a stored provider-less policy: %v; want a validation error naming provider", err)
	}
}

func TestTrustedAttributes(t *testing.T) {
	p, err := ParseFile("p.yaml", []byte(`roles: {a: {}}
tenancy: {active: "attribute:custom:tenant"}
idpGroups:
  - {provider: Okta, attribute: custom:groups, roles: {x: [a]}}
  - {provider: Azure, attribute: custom:groups, roles: {y: [a]}}
clients:
  default:
    idToken: {claims: {app_tenant: "attribute:custom:tenant", dept: "attribute:custom:dept"}}
    accessToken: {claims: {app_tenant: "attribute:custom:tenant"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []TrustedAttribute{
		{"custom:dept", "claim dept (client default, idToken)"},
		{"custom:groups", "idpGroups provider Azure"},
		{"custom:groups", "idpGroups provider Okta"},
		{"custom:tenant", "claim app_tenant (client default, accessToken)"},
		{"custom:tenant", "claim app_tenant (client default, idToken)"},
		{"custom:tenant", "tenancy.active"},
	}
	if diff := cmp.Diff(want, TrustedAttributes(p)); diff != "" {
		t.Errorf("TrustedAttributes (-want +got):\n%s", diff)
	}
	if got := TrustedAttributes(&Policy{}); len(got) != 0 {
		t.Errorf("empty policy: %v", got)
	}
}

// TestParseIdentitiesExactKey: only Cognito's own key names the provider;
// encoding/json would match a struct field to any case of it.
func TestParseIdentitiesExactKey(t *testing.T) {
	for value, want := range map[string][]string{
		`[{"providerName":"Okta","providerType":"SAML","userId":"u","primary":"true"}]`: {"Okta"},
		`[{"PROVIDERNAME":"Okta"}]`:                      nil,
		`[{"providername":"Okta","providerName":"B"}]`:   {"B"},
		`[{"providerName":"B"},{"providerName":"Okta"}]`: {"B", "Okta"},
		`[{"providerName":7}]`:                           nil,
		`not json`:                                       nil,
	} {
		if got := ParseIdentities(value); !slices.Equal(got, want) {
			t.Errorf("ParseIdentities(%s) = %v, want %v", value, got, want)
		}
	}
}
