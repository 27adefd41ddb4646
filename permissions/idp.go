package permissions

import (
	"encoding/json"
	"strings"
)

// ParseIdPGroups reads the groups an identity provider put into a user
// attribute, in each form Cognito delivers: "[a, b]" for a multi-valued SAML
// attribute, a JSON array from an OIDC array claim, or a plain comma list.
// Blanks around names and empty names are dropped; a single name is a
// one-element list.
func ParseIdPGroups(value string) []string {
	v := strings.TrimSpace(value)
	if v == "" {
		return nil
	}
	var list []string
	if strings.HasPrefix(v, "[") && json.Unmarshal([]byte(v), &list) == nil {
		return clean(list)
	}
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		v = v[1 : len(v)-1]
	}
	return clean(strings.Split(v, ","))
}

func clean(list []string) []string {
	out := list[:0:0]
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// User is what the table knows about one user: roles assigned directly,
// roles per tenant (memberships), and the active tenant, if one is stored.
type User struct {
	Roles       []string
	Memberships map[string][]string // tenant -> roles there
	Active      string
}
