package permissions

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Ungranted returns, in name order, the roles of p that no group, default,
// machine client or IdP group grants, directly or by inheritance. They are
// valid, but only a direct assignment or a tenant membership can give one,
// so a role listed here is often a typo in a mapping.
func Ungranted(p *Policy) []string {
	reached := map[string]bool{}
	var reach func(role string)
	reach = func(role string) {
		if reached[role] {
			return
		}
		reached[role] = true
		if r, ok := p.Roles[role]; ok {
			for _, parent := range r.Inherits {
				reach(parent)
			}
		}
	}
	lists := [][]string{p.Defaults.Roles}
	lists = slices.AppendSeq(lists, maps.Values(p.Groups))
	lists = slices.AppendSeq(lists, maps.Values(p.Machines))
	for _, g := range p.IdPGroups {
		lists = slices.AppendSeq(lists, maps.Values(g.Roles))
	}
	for _, roles := range lists {
		for _, r := range roles {
			reach(r)
		}
	}
	var out []string
	for _, name := range slices.Sorted(maps.Keys(p.Roles)) {
		if !reached[name] {
			out = append(out, name)
		}
	}
	return out
}

// Closest returns the name in names nearest to s, case aside, or "" when
// none is near: a hint for a name that matches nothing. Near is one edit
// in three characters, so a short name gets a hint only for case.
func Closest(s string, names []string) string {
	best, bestD := "", len(s)/3+1
	for _, n := range names {
		if d := editDistance(strings.ToLower(s), strings.ToLower(n)); d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	if best == "" || bestD > len(s)/3 {
		return ""
	}
	return best
}

// hint is " (did you mean %q?)" for the name in names closest to s, or "".
func hint(s string, names []string) string {
	if c := Closest(s, names); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

// roleHint is hint among the policy's roles.
func (v *validator) roleHint(role string) string {
	return hint(role, slices.Sorted(maps.Keys(v.p.Roles)))
}

// Admits reports whether perm passes the allow-list: every permission
// passes an absent (nil) list, none an empty one.
func (a AllowList) Admits(perm string) bool {
	return a == nil || allowed(a, perm)
}
