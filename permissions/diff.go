package permissions

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Change is one difference between two policies.
type Change struct {
	// Op is "+" (added), "-" (removed) or "~" (changed).
	Op string `json:"op"`
	// Kind is what changed: role, group, defaults, machine, client, limits.
	Kind string `json:"kind"`
	// Name is the role, group, machine or client; empty for defaults and limits.
	Name string `json:"name,omitempty"`
	// Details say what changed inside, for "~".
	Details []string `json:"details,omitempty"`
}

func (c Change) String() string {
	s := c.Op + " " + c.Kind
	if c.Name != "" {
		s += " " + c.Name
	}
	if len(c.Details) > 0 {
		s += ": " + strings.Join(c.Details, "; ")
	}
	return s
}

// Diff lists what changes from old to new, in a stable order: roles, groups,
// defaults, machines, clients, limits, each by name. Empty and absent lists
// are the same.
func Diff(old, new *Policy) []Change {
	var out []Change
	out = append(out, diffMap("role", old.Roles, new.Roles, diffRole)...)
	out = append(out, diffMap("group", old.Groups, new.Groups, func(a, b []string) []string { return listDetails("roles", a, b) })...)
	if d := listDetails("roles", old.Defaults.Roles, new.Defaults.Roles); len(d) > 0 {
		out = append(out, Change{Op: "~", Kind: "defaults", Details: d})
	}
	out = append(out, diffMap("machine", old.Machines, new.Machines, func(a, b []string) []string { return listDetails("roles", a, b) })...)
	out = append(out, diffMap("client", old.Clients, new.Clients, diffClient)...)
	if a, b := old.Tenancy.Active, new.Tenancy.Active; a != b {
		out = append(out, Change{Op: "~", Kind: "tenancy", Details: []string{fmt.Sprintf("active %q -> %q", a, b)}})
	}
	out = append(out, diffMap("idp provider", idpByProvider(old.IdPGroups), idpByProvider(new.IdPGroups), diffIdP)...)
	var d []string
	if a, b := old.Limits.MaxTokenBytes, new.Limits.MaxTokenBytes; a != b {
		d = append(d, fmt.Sprintf("maxTokenBytes %d -> %d", a, b))
	}
	if a, b := old.Limits.OnOverflow, new.Limits.OnOverflow; a != b {
		d = append(d, fmt.Sprintf("onOverflow %q -> %q", a, b))
	}
	if len(d) > 0 {
		out = append(out, Change{Op: "~", Kind: "limits", Details: d})
	}
	return out
}

func diffMap[V any](kind string, old, new map[string]V, details func(a, b V) []string) []Change {
	var out []Change
	names := slices.Sorted(maps.Keys(old))
	for _, n := range slices.Sorted(maps.Keys(new)) {
		if _, ok := old[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		a, inOld := old[n]
		b, inNew := new[n]
		switch {
		case !inOld:
			out = append(out, Change{Op: "+", Kind: kind, Name: n})
		case !inNew:
			out = append(out, Change{Op: "-", Kind: kind, Name: n})
		default:
			if d := details(a, b); len(d) > 0 {
				out = append(out, Change{Op: "~", Kind: kind, Name: n, Details: d})
			}
		}
	}
	return out
}

func diffRole(a, b Role) []string {
	var d []string
	if a.Description != b.Description {
		d = append(d, fmt.Sprintf("description %q -> %q", a.Description, b.Description))
	}
	d = append(d, listDetails("permissions", a.Permissions, b.Permissions)...)
	return append(d, listDetails("inherits", a.Inherits, b.Inherits)...)
}

// diffClient says what changed in each token of a client profile, field by
// field, so a reviewer sees the claim or scope that moves:
// idToken.claims + lib_perms.
func diffClient(a, b ClientProfile) []string {
	var d []string
	for _, t := range []struct {
		name string
		a, b TokenProfile
	}{{"idToken", a.IDToken, b.IDToken}, {"accessToken", a.AccessToken, b.AccessToken}} {
		d = append(d, diffToken(t.name, t.a, t.b)...)
	}
	return d
}

func diffToken(name string, a, b TokenProfile) []string {
	var d []string
	var added, removed []string
	for _, c := range slices.Sorted(maps.Keys(b.Claims)) {
		if src, ok := a.Claims[c]; !ok {
			added = append(added, c)
		} else if src != b.Claims[c] {
			d = append(d, fmt.Sprintf("%s.claims.%s %q -> %q", name, c, src, b.Claims[c]))
		}
	}
	for _, c := range slices.Sorted(maps.Keys(a.Claims)) {
		if _, ok := b.Claims[c]; !ok {
			removed = append(removed, c)
		}
	}
	d = append(d, fieldList(name+".claims", added, removed)...)
	if a.Scopes != b.Scopes {
		d = append(d, fmt.Sprintf("%s.scopes %t -> %t", name, a.Scopes, b.Scopes))
	}
	if a.ScopePrefix != b.ScopePrefix {
		d = append(d, fmt.Sprintf("%s.scopePrefix %q -> %q", name, a.ScopePrefix, b.ScopePrefix))
	}
	// An absent allow-list lets every permission through; an empty one, none.
	switch {
	case (a.Allow == nil) != (b.Allow == nil):
		show := func(l AllowList) string {
			if l == nil {
				return "(absent: every permission)"
			}
			return "[" + strings.Join(l, " ") + "]"
		}
		d = append(d, fmt.Sprintf("%s.allow %s -> %s", name, show(a.Allow), show(b.Allow)))
	default:
		d = append(d, fieldDetails(name+".allow", a.Allow, b.Allow)...)
	}
	d = append(d, fieldDetails(name+".suppressScopes", a.SuppressScopes, b.SuppressScopes)...)
	return append(d, fieldDetails(name+".suppressClaims", a.SuppressClaims, b.SuppressClaims)...)
}

// fieldDetails is listDetails for a field of a client profile, written as
// field + added, field - removed.
func fieldDetails(field string, a, b []string) []string {
	added, removed := addedRemoved(a, b)
	d := fieldList(field, added, removed)
	if len(d) == 0 && !slices.Equal(a, b) {
		d = append(d, field+" reordered")
	}
	return d
}

func fieldList(field string, added, removed []string) []string {
	var d []string
	if len(added) > 0 {
		d = append(d, field+" + "+strings.Join(added, " "))
	}
	if len(removed) > 0 {
		d = append(d, field+" - "+strings.Join(removed, " "))
	}
	return d
}

// listDetails describes added and removed entries; a change of order alone
// is reported too, since lists are stored as written.
func listDetails(what string, a, b []string) []string {
	added, removed := addedRemoved(a, b)
	var d []string
	if len(added) > 0 {
		d = append(d, fmt.Sprintf("+%s %s", what, strings.Join(added, " ")))
	}
	if len(removed) > 0 {
		d = append(d, fmt.Sprintf("-%s %s", what, strings.Join(removed, " ")))
	}
	if len(d) == 0 && !slices.Equal(a, b) {
		d = append(d, what+" reordered")
	}
	return d
}

// addedRemoved returns the entries of b not in a, and of a not in b, each
// in its list's order.
func addedRemoved(a, b []string) (added, removed []string) {
	for _, s := range b {
		if !slices.Contains(a, s) {
			added = append(added, s)
		}
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}

// Loss is what the members of one group (or every user, for Group
// "defaults") lose from old to new.
type Loss struct {
	Group       string
	Permissions []string
}

// Losses lists the Cognito groups whose members lose a permission from old
// to new, and "defaults" when every signed-in user does: after such a
// change, tokens already issued still carry the permission until they
// expire, and signing the members out revokes their refresh tokens. Both
// policies must be valid.
func Losses(old, new *Policy) []Loss {
	a, errA := Compile(old, "old")
	b, errB := Compile(new, "new")
	if errA != nil || errB != nil {
		return nil
	}
	lost := func(before, after []string) []string {
		var out []string
		for _, p := range before {
			if !slices.Contains(after, p) {
				out = append(out, p)
			}
		}
		return out
	}
	var out []Loss
	for _, g := range slices.Sorted(maps.Keys(old.Groups)) {
		_, before := a.Expand(old.Groups[g])
		_, after := b.Expand(new.Groups[g])
		if l := lost(before, after); len(l) > 0 {
			out = append(out, Loss{Group: g, Permissions: l})
		}
	}
	_, before := a.Expand(old.Defaults.Roles)
	_, after := b.Expand(new.Defaults.Roles)
	if l := lost(before, after); len(l) > 0 {
		out = append(out, Loss{Group: "defaults", Permissions: l})
	}
	return out
}

// idpByProvider keys the identity-provider entries by provider, so that
// their order in a file is no change.
func idpByProvider(list IdPGroups) map[string]IdPGroup {
	out := make(map[string]IdPGroup, len(list))
	for _, g := range list {
		out[g.Provider] = g
	}
	return out
}

func diffIdP(a, b IdPGroup) []string {
	var d []string
	if a.Attribute != b.Attribute {
		d = append(d, fmt.Sprintf("attribute %q -> %q", a.Attribute, b.Attribute))
	}
	for _, c := range diffMap("group", a.Roles, b.Roles, func(x, y []string) []string { return listDetails("roles", x, y) }) {
		for _, line := range c.Details {
			d = append(d, c.Op+" group "+c.Name+": "+line)
		}
		if len(c.Details) == 0 {
			d = append(d, c.Op+" group "+c.Name)
		}
	}
	return d
}
