package permissions

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// TrustedAttribute is a user attribute the policy trusts: it copies it into
// tokens or decides roles or the active tenant by it. Whoever can write it
// can change what tokens say, so no app client may let users write it.
type TrustedAttribute struct {
	// Name is the user attribute, as Cognito names it (custom:tenant_id).
	Name string
	// Why says where the policy trusts it (claim tenant of the ID token of
	// client default; tenancy.active; idpGroups.attribute).
	Why string
}

// TrustedAttributes lists the user attributes p trusts: every
// "attribute:" claim of every client profile, a tenancy taken from an
// attribute, and the attribute that holds identity-provider groups. Sorted
// by Name, then Why; each pair once.
func TrustedAttributes(p *Policy) []TrustedAttribute {
	var out []TrustedAttribute
	for id, prof := range p.Clients {
		for token, tp := range map[string]TokenProfile{"ID token": prof.IDToken, "access token": prof.AccessToken} {
			for claim, src := range tp.Claims {
				if name, ok := strings.CutPrefix(src, SourceAttribute); ok && name != "" {
					out = append(out, TrustedAttribute{Name: name, Why: fmt.Sprintf("claim %s of the %s of client %s", claim, token, id)})
				}
			}
		}
	}
	if name, ok := strings.CutPrefix(p.Tenancy.Active, SourceAttribute); ok && name != "" {
		out = append(out, TrustedAttribute{Name: name, Why: "tenancy.active (the token's tenant and its roles)"})
	}
	if p.IdPGroups.Attribute != "" {
		out = append(out, TrustedAttribute{Name: p.IdPGroups.Attribute, Why: "idpGroups.attribute (roles from identity-provider groups)"})
	}
	slices.SortFunc(out, func(a, b TrustedAttribute) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Why, b.Why))
	})
	return slices.Compact(out)
}
