package trigger

import (
	"bytes"
	"context"
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
	p, err := permissions.ReadFile("../examples/tenants.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := permissions.Compile(p, "t")
	if err != nil {
		t.Fatal(err)
	}
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
