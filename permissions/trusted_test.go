package permissions

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTrustedAttributes(t *testing.T) {
	p := &Policy{
		Clients: map[string]ClientProfile{
			"web": {IDToken: TokenProfile{Claims: map[string]string{"tenant": "attribute:custom:tenant_id", "roles": SourceRoles}},
				AccessToken: TokenProfile{Claims: map[string]string{"tenant": "attribute:custom:tenant_id"}}},
			DefaultProfile: {IDToken: TokenProfile{Claims: map[string]string{"dept": "attribute:custom:dept"}}},
		},
		Tenancy:   Tenancy{Active: "attribute:custom:tenant_id"},
		IdPGroups: IdPGroups{Attribute: "custom:groups"},
	}
	want := []TrustedAttribute{
		{"custom:dept", "claim dept of the ID token of client default"},
		{"custom:groups", "idpGroups.attribute (roles from identity-provider groups)"},
		{"custom:tenant_id", "claim tenant of the ID token of client web"},
		{"custom:tenant_id", "claim tenant of the access token of client web"},
		{"custom:tenant_id", "tenancy.active (the token's tenant and its roles)"},
	}
	// Map order must not matter: the same answer every time.
	for range 20 {
		if diff := cmp.Diff(want, TrustedAttributes(p)); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
	}
	if got := TrustedAttributes(&Policy{Tenancy: Tenancy{Active: TenancyStored}}); len(got) != 0 {
		t.Errorf("stored tenancy trusts no attribute: %v", got)
	}
}
