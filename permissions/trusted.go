package permissions

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// TrustedAttribute is a user attribute whose value the policy trusts.
type TrustedAttribute struct {
	Name string // the user attribute, e.g. "custom:groups"
	Why  string // e.g. `claim app_tenant (client default, idToken)`, `tenancy.active`, `idpGroups provider Okta`
}

// TrustedAttributes lists them sorted by Name then Why, each once. Each must
// be left out of every app client's write attributes: a user who can write
// one can put any value into it.
func TrustedAttributes(p *Policy) []TrustedAttribute {
	if p == nil {
		return nil
	}
	var out []TrustedAttribute
	for id, c := range p.Clients {
		for _, tok := range []struct {
			name string
			t    TokenProfile
		}{{"idToken", c.IDToken}, {"accessToken", c.AccessToken}} {
			for claim, src := range tok.t.Claims {
				if name, ok := strings.CutPrefix(src, SourceAttribute); ok && name != "" {
					out = append(out, TrustedAttribute{Name: name, Why: fmt.Sprintf("claim %s (client %s, %s)", claim, id, tok.name)})
				}
			}
		}
	}
	if name, ok := strings.CutPrefix(p.Tenancy.Active, SourceAttribute); ok && name != "" {
		out = append(out, TrustedAttribute{Name: name, Why: "tenancy.active"})
	}
	for _, g := range p.IdPGroups {
		if g.Attribute != "" {
			out = append(out, TrustedAttribute{Name: g.Attribute, Why: "idpGroups provider " + g.Provider})
		}
	}
	slices.SortFunc(out, func(a, b TrustedAttribute) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Why, b.Why))
	})
	return slices.Compact(out)
}
