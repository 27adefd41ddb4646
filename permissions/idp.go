package permissions

import (
	"encoding/json"
	"slices"
	"strings"
)

// ParseIdPGroups reads the groups an identity provider put into a user
// attribute, in each form Cognito delivers: "[a, b]" for a multi-valued SAML
// attribute, a JSON array from an OIDC array claim, or a plain comma list.
// Names are matched exactly as delivered: JSON array elements are kept as
// they are, and the other forms are split on their separators with only
// ASCII spaces trimmed, so a name padded with other white space (such as a
// no-break space) stays distinct from the policy's. Empty names are dropped;
// a single name is a one-element list.
func ParseIdPGroups(value string) []string {
	v := strings.Trim(value, " ")
	if v == "" {
		return nil
	}
	var list []string
	if strings.HasPrefix(v, "[") && json.Unmarshal([]byte(v), &list) == nil {
		return slices.DeleteFunc(list, func(s string) bool { return s == "" })
	}
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		v = v[1 : len(v)-1]
	}
	out := strings.Split(v, ",")
	for i, s := range out {
		out[i] = strings.Trim(s, " ")
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// IdentitiesAttribute is the user attribute in which Cognito records the
// identity providers a user signs in through. Cognito writes it; users
// cannot.
const IdentitiesAttribute = "identities"

// ParseIdentities returns the distinct provider names in a user's
// identities attribute, a JSON array such as
// [{"providerName":"Okta","providerType":"SAML","userId":"..."}]. A value
// that does not decode names no provider.
func ParseIdentities(value string) []string {
	// Maps, not a struct: encoding/json matches struct fields regardless of
	// case, so "PROVIDERNAME" would count; only Cognito's exact key does.
	var ids []map[string]any
	if value == "" || json.Unmarshal([]byte(value), &ids) != nil {
		return nil
	}
	var out []string
	for _, id := range ids {
		if name, _ := id["providerName"].(string); name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// IdPGroupsOf works out, from a user's attributes, the groups each of the
// policy's identity providers sent: the provider's attribute counts only when
// the user's identities attribute names that provider and no other (a mapped
// attribute is writable by the user, and by any provider whose mapping
// writes it). ignored explains, one entry per provider, each attribute that
// holds a value but does not count.
func IdPGroupsOf(entries IdPGroups, attrs map[string]string) (groups map[string][]string, ignored []string) {
	if len(entries) == 0 {
		return nil, nil
	}
	providers := ParseIdentities(attrs[IdentitiesAttribute])
	for _, e := range entries.Sorted() {
		value := attrs[e.Attribute]
		if e.Attribute == "" || strings.Trim(value, " ") == "" {
			continue
		}
		switch {
		case len(providers) == 0:
			ignored = append(ignored, e.Attribute+" for provider "+e.Provider+": not a federated user (no identities)")
		case len(providers) > 1:
			ignored = append(ignored, e.Attribute+" for provider "+e.Provider+": identities name "+strings.Join(providers, ", "))
		case providers[0] != e.Provider:
			ignored = append(ignored, e.Attribute+" for provider "+e.Provider+": the user signs in through "+providers[0])
		default:
			if groups == nil {
				groups = make(map[string][]string)
			}
			groups[e.Provider] = ParseIdPGroups(value)
		}
	}
	return groups, ignored
}

// User is what the table knows about one user: roles assigned directly,
// roles per tenant (memberships), and the active tenant, if one is stored.
type User struct {
	Roles       []string
	Memberships map[string][]string // tenant -> roles there
	Active      string
}
