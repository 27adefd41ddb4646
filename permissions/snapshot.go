package permissions

import (
	"maps"
	"slices"
	"strings"
)

// Snapshot is a validated policy compiled for fast resolution: every role's
// closure (inherited roles and permissions) and every group's, machine's and
// the defaults' grant are computed once, so resolving a subject costs work
// proportional to its groups and grants, not to the size of the policy.
//
// Roles and permissions are numbered in name order, so a grant is a sorted
// list of small integers that merges quickly, and each client profile holds
// its allow-list and prefixed scopes as tables indexed by permission number.
//
// A Snapshot is immutable and safe for concurrent use.
type Snapshot struct {
	version  string
	policy   *Policy
	ix       lookup // the grants and names: tables, or the compiled form read in place
	defaults *grant
	profiles map[string]*profile
	limits   Limits
	tenancy  Tenancy
	idp      IdPGroups // each provider and its attribute, by provider
}

// grant is a sorted, duplicate-free set of roles and the permissions they
// hold. Grants that are served as they are (groups, defaults, machines)
// also keep their names, so resolving a single grant allocates nothing.
type grant struct {
	roles, perms         []uint32
	roleNames, permNames []string
}

type profile struct {
	id     string
	tokens [2]tokenProfile // by Token
}

type tokenProfile struct {
	claims         []claimSpec // sorted by name
	restricted     bool        // an allow-list applies: allowed holds what it lets through
	allowed        bitset      // by permission number
	scopes         *scopeTable // the prefixed scope of each permission; nil when scopes are off
	scopePrefix    string      // what this profile's scopes are made with
	suppressScopes []string
	suppressClaims []string
	space          *scopeSpace // the policy's scopes, shared by every profile
}

// scopeSpace is every scope that means a permission of the policy, in any
// profile: a scope under any profile's prefix, and, where a profile adds
// scopes without a prefix, a scope named as a permission. Such a scope in a
// token means the permission downstream, whichever app client asked for it,
// so a profile that does not grant it suppresses it (Cognito adds a
// resource-server scope by itself to a client allowed it that asks).
type scopeSpace struct {
	prefixes []string // sorted, each once; none empty
	bare     lookup   // the policy's permissions, where a profile adds them unprefixed; else nil
}

func (sp *scopeSpace) holds(scope string) bool {
	if sp == nil {
		return false
	}
	for _, p := range sp.prefixes {
		if strings.HasPrefix(scope, p) {
			return true
		}
	}
	return sp.bare != nil && sp.bare.isPerm(scope)
}

// linkScopeSpace gives every profile the policy's scope space, from the
// compiled (or decoded) profiles alone.
func (s *Snapshot) linkScopeSpace() {
	sp := &scopeSpace{}
	for _, p := range s.profiles {
		t := &p.tokens[AccessToken]
		if t.scopePrefix != "" {
			sp.prefixes = append(sp.prefixes, t.scopePrefix)
		} else if t.scopes != nil {
			sp.bare = s.ix
		}
	}
	slices.Sort(sp.prefixes)
	sp.prefixes = slices.Compact(sp.prefixes)
	for _, p := range s.profiles {
		for i := range p.tokens {
			p.tokens[i].space = sp
		}
	}
}

type claimSpec struct {
	name      string
	kind      claimSource
	attribute string
}

// Compile validates p and compiles it into a Snapshot labelled version.
// The Snapshot keeps p, which must not be changed afterwards.
func Compile(p *Policy, version string) (*Snapshot, error) {
	if err := Validate(p); err != nil {
		return nil, err
	}
	t := &tables{
		roleNames: slices.Sorted(maps.Keys(p.Roles)),
		machines:  make(map[string]*grant, len(p.Machines)),
		idpGroups: make(map[string]map[string]*grant, len(p.IdPGroups)),
	}
	s := &Snapshot{
		version:  version,
		policy:   p,
		ix:       t,
		profiles: make(map[string]*profile, len(p.Clients)+1),
		limits:   p.Limits,
		tenancy:  p.Tenancy,
	}
	t.roleIdx = newNameIndex(t.roleNames)
	permSet := make(map[string]bool)
	for _, r := range p.Roles {
		for _, perm := range r.Permissions {
			permSet[perm] = true
		}
	}
	t.permNames = slices.Sorted(maps.Keys(permSet))
	permIDs := make(map[string]uint32, len(t.permNames))
	for i, name := range t.permNames {
		permIDs[name] = uint32(i)
	}
	t.roles = make([]grant, len(t.roleNames))
	done := make([]bool, len(t.roleNames))
	for id := range t.roleNames {
		t.closure(p, uint32(id), permIDs, done)
	}
	t.groupIdx = newNameIndex(slices.Sorted(maps.Keys(p.Groups)))
	for _, g := range t.groupIdx.names {
		t.groups = append(t.groups, s.named(t.union(p.Groups[g])))
	}
	s.defaults = s.named(t.union(p.Defaults.Roles))
	for id, roles := range p.Machines {
		t.machines[id] = s.named(t.union(roles))
	}
	for _, e := range p.IdPGroups.Sorted() {
		s.idp = append(s.idp, IdPGroup{Provider: e.Provider, Attribute: e.Attribute})
		m := make(map[string]*grant, len(e.Roles))
		for g, roles := range e.Roles {
			m[g] = s.named(t.union(roles))
		}
		t.idpGroups[e.Provider] = m
	}
	for id, c := range p.Clients {
		s.profiles[id] = s.compileProfile(id, c)
	}
	if _, ok := s.profiles[DefaultProfile]; !ok {
		s.profiles[DefaultProfile] = s.compileProfile(DefaultProfile, ClientProfile{})
	}
	s.linkScopeSpace()
	if s.limits.MaxTokenBytes == 0 {
		s.limits.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if s.limits.OnOverflow == "" {
		s.limits.OnOverflow = OverflowFail
	}
	return s, nil
}

// closure computes and memoizes the grant of role id. Validation has ruled
// out cycles and unknown parents.
func (t *tables) closure(p *Policy, id uint32, permIDs map[string]uint32, done []bool) grant {
	if done[id] {
		return t.roles[id]
	}
	r := p.Roles[t.roleNames[id]]
	g := grant{roles: []uint32{id}}
	for _, perm := range r.Permissions {
		g.perms = append(g.perms, permIDs[perm])
	}
	for _, parent := range r.Inherits {
		pg := t.closure(p, t.roleID(parent), permIDs, done)
		g.roles = append(g.roles, pg.roles...)
		g.perms = append(g.perms, pg.perms...)
	}
	g = normalize(g)
	t.roles[id], done[id] = g, true
	return g
}

// roleID is the number of a role the policy defines.
func (t *tables) roleID(name string) uint32 {
	id, _ := t.roleIdx.find(name)
	return uint32(id)
}

func (t *tables) union(roles []string) grant {
	var g grant
	for _, r := range roles {
		rg := t.roles[t.roleID(r)]
		g.roles = append(g.roles, rg.roles...)
		g.perms = append(g.perms, rg.perms...)
	}
	return normalize(g)
}

// named adds names to g.
func (s *Snapshot) named(g grant) *grant {
	g.roleNames = names(s.ix.roleName, g.roles)
	g.permNames = names(s.ix.permName, g.perms)
	return &g
}

func names(name func(uint32) string, ids []uint32) []string {
	if len(ids) == 0 {
		return nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = name(id)
	}
	return out
}

func normalize(g grant) grant {
	slices.Sort(g.roles)
	slices.Sort(g.perms)
	return grant{roles: slices.Clip(slices.Compact(g.roles)), perms: slices.Clip(slices.Compact(g.perms))}
}

func (s *Snapshot) compileProfile(id string, c ClientProfile) *profile {
	p := &profile{id: id}
	for tok, t := range [2]TokenProfile{IDToken: c.IDToken, AccessToken: c.AccessToken} {
		tp := tokenProfile{
			suppressScopes: cloneList(t.SuppressScopes),
			suppressClaims: cloneList(t.SuppressClaims),
		}
		if t.Allow != nil && !slices.Contains(t.Allow, "*") { // an empty list lets nothing through
			tp.restricted = true
			tp.allowed = newBitset(s.ix.numPerms(), func(i int) bool { return allowed(t.Allow, s.ix.permName(uint32(i))) })
		}
		if tok == int(AccessToken) {
			tp.scopePrefix = t.ScopePrefix
		}
		if t.Scopes && tok == int(AccessToken) {
			tp.scopes = newScopeTable(t.ScopePrefix, s.ix)
		}
		for _, name := range slices.Sorted(maps.Keys(t.Claims)) {
			kind, _ := claimKind(t.Claims[name])
			if kind == claimAttribute && t.Claims[name] == s.tenancy.Active {
				// A copy of the attribute that names the active tenant is the
				// active tenant: a value the membership check refused (or the
				// user wrote) must not reach the token as the tenant.
				kind = claimTenant
			}
			tp.claims = append(tp.claims, claimSpec{name: name, kind: kind, attribute: strings.TrimPrefix(t.Claims[name], SourceAttribute)})
		}
		p.tokens[tok] = tp
	}
	return p
}

// cloneList copies list; an empty list becomes nil, as a decoded snapshot
// has it, so the two forms of a snapshot are equal.
func cloneList(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	return slices.Clone(list)
}

// allowed reports whether an allow-list lets perm through: an entry is a
// permission, or a prefix followed by "*".
func allowed(allow []string, perm string) bool {
	for _, a := range allow {
		if a == perm || a == "*" || strings.HasSuffix(a, "*") && strings.HasPrefix(perm, a[:len(a)-1]) {
			return true
		}
	}
	return false
}

// Version is the label the snapshot was compiled with.
func (s *Snapshot) Version() string { return s.version }

// Policy returns the policy the snapshot was compiled from, or nil for a
// snapshot decoded from its compiled form (DecodeSnapshot), which carries
// only what serving needs. It must not be changed.
func (s *Snapshot) Policy() *Policy { return s.policy }

// Limits returns the policy's limits with defaults filled in.
func (s *Snapshot) Limits() Limits { return s.limits }

// Tenancy returns the policy's tenancy; its zero value means no tenants.
func (s *Snapshot) Tenancy() Tenancy { return s.tenancy }

// IdPGroups returns the policy's identity providers and the attribute
// each sends its groups in (their Roles are compiled into the snapshot,
// and absent from a decoded one).
func (s *Snapshot) IdPGroups() IdPGroups { return s.idp }

// HasRole reports whether the policy defines role name.
func (s *Snapshot) HasRole(name string) bool { return s.ix.role(name) != nil }

// Subject is who a token is for.
type Subject struct {
	// ClientID is the app client the token is issued to.
	ClientID string
	// Machine is true for a client-credentials token: roles come from the
	// policy's machines, and no user, group or default role applies.
	Machine bool
	// Groups are the user's Cognito groups, as Cognito sent them.
	Groups []string
	// Roles are roles assigned to the user directly. Unknown roles are ignored.
	Roles []string
	// IdPGroups are the groups each identity provider sent, by provider
	// (see IdPGroupsOf, which counts a provider's only for its own users).
	// Only that provider's idpGroups entry grants from them.
	IdPGroups map[string][]string
	// Tenant is the token's active tenant, already known to be one the user
	// is a member of, and TenantRoles the user's roles there; they join the
	// user's other roles. Empty: no active tenant.
	Tenant      string
	TenantRoles []string
	// Tenants are every tenant the user is a member of, for the tenants claim.
	Tenants []string
	// Attributes are the user's attributes, read by attribute: claims.
	Attributes map[string]string
	// Scopes are the scopes the request asks for (request.scopes). Cognito
	// puts a resource-server scope the app client is allowed into the
	// access token by itself; those under the profile's scope prefix that
	// the policy does not grant are suppressed.
	Scopes []string
}

// Result is what a subject's tokens get.
type Result struct {
	// Profile is the key of the client profile used.
	Profile string
	// Roles and Permissions are the subject's effective roles (inherited
	// ones included) and permissions, sorted, before any allow-list.
	// They may share memory with the snapshot and must not be changed.
	Roles       []string
	Permissions []string
	// ID and Access are the changes to each token.
	ID, Access TokenChanges
}

// TokenChanges are the changes to one token.
type TokenChanges struct {
	Claims           []Claim
	ClaimsToSuppress []string
	// Unset are the profile's claims that end without a value (an
	// attribute the user lacks, no active tenant). The trigger suppresses
	// them, so that nothing else reaches the token under their names.
	Unset            []string
	ScopesToAdd      []string
	ScopesToSuppress []string
}

// Claim is one claim to add or override.
type Claim struct {
	Name string
	// Values holds a list claim's items, or a single attribute value.
	Values []string
	// Single is true for a claim whose value is one string (an attribute).
	Single bool
	// DropFirst is true for a claim listing permissions, the first
	// thing dropped when a token is over its size budget.
	DropFirst bool
}

// Resolve works out what sub's tokens get.
func (s *Snapshot) Resolve(sub Subject) Result {
	g := s.grantFor(sub)
	p := s.profiles[sub.ClientID]
	if p == nil {
		p = s.profiles[DefaultProfile]
	}
	r := Result{Profile: p.id, Roles: g.roleNames, Permissions: g.permNames}
	r.ID = p.tokens[IDToken].changes(sub, g)
	r.Access = p.tokens[AccessToken].changes(sub, g)
	return r
}

var noGrant = &grant{}

func (s *Snapshot) grantFor(sub Subject) *grant {
	if sub.Machine {
		if g := s.ix.machine(sub.ClientID); g != nil {
			return g
		}
		return noGrant
	}
	var parts [8]*grant
	list := parts[:0]
	if len(s.defaults.roles) > 0 {
		list = append(list, s.defaults)
	}
	groups, short := sub.Groups, len(sub.Groups) <= 16
	if !short {
		groups = unique(groups)
	}
	for i, grp := range groups {
		if g := s.ix.group(grp); g != nil && len(g.roles) > 0 && !(short && slices.Contains(groups[:i], grp)) {
			list = append(list, g)
		}
	}
	for provider, sent := range sub.IdPGroups { // a union: the order makes no difference
		for i, grp := range sent {
			if g := s.ix.idpGroup(provider, grp); g != nil && len(g.roles) > 0 && !slices.Contains(sent[:i], grp) {
				list = append(list, g)
			}
		}
	}
	for _, roles := range [2][]string{sub.Roles, sub.TenantRoles} {
		for _, role := range roles {
			if g := s.ix.role(role); g != nil {
				list = append(list, g)
			}
		}
	}
	switch len(list) {
	case 0:
		return noGrant
	case 1:
		if list[0].roleNames != nil || len(list[0].roles) == 0 {
			return list[0]
		}
	}
	var out grant
	for _, p := range list {
		out.roles = merge(out.roles, p.roles)
		out.perms = merge(out.perms, p.perms)
	}
	return s.named(out)
}

// unique returns list without repeats, in one pass. Cognito sends each
// group once, but an event is input: repeating a group must cost nothing
// more than naming it once (grantFor checks short lists directly).
func unique(list []string) []string {
	seen := make(map[string]struct{}) // sized by what is unique, not by the list
	var out []string
	for _, s := range list {
		if _, ok := seen[s]; !ok {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	return out
}

// merge returns the sorted union of two sorted, duplicate-free lists. It
// never changes b; it may return a or b itself when the other is empty.
// Merging k grants this way costs k passes over the result, which for the
// handful of groups a user has beats sorting the concatenation.
func merge(a, b []uint32) []uint32 {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]uint32, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func (t *tokenProfile) changes(sub Subject, g *grant) TokenChanges {
	perms, permNames := g.perms, g.permNames
	if t.restricted {
		perms = make([]uint32, 0, len(g.perms))
		permNames = make([]string, 0, len(g.perms))
		for i, p := range g.perms {
			if t.allowed.has(p) {
				perms = append(perms, p)
				permNames = append(permNames, g.permNames[i])
			}
		}
	}
	var c TokenChanges
	var empty []string // managed claims without a value: suppressed
	if len(t.claims) > 0 {
		c.Claims = make([]Claim, 0, len(t.claims))
	}
	for _, spec := range t.claims {
		switch spec.kind {
		case claimRoles:
			c.Claims = append(c.Claims, Claim{Name: spec.name, Values: g.roleNames})
		case claimPermissions:
			c.Claims = append(c.Claims, Claim{Name: spec.name, Values: permNames, DropFirst: true})
		case claimGroups:
			c.Claims = append(c.Claims, Claim{Name: spec.name, Values: sub.Groups})
		case claimAttribute:
			if v, ok := sub.Attributes[spec.attribute]; ok {
				c.Claims = append(c.Claims, Claim{Name: spec.name, Values: []string{v}, Single: true})
			} else {
				empty = append(empty, spec.name)
			}
		case claimTenant:
			if sub.Tenant != "" {
				c.Claims = append(c.Claims, Claim{Name: spec.name, Values: []string{sub.Tenant}, Single: true})
			} else {
				empty = append(empty, spec.name)
			}
		case claimTenants:
			// The one claim over every membership: dropped first on overflow.
			c.Claims = append(c.Claims, Claim{Name: spec.name, Values: sub.Tenants, DropFirst: true})
		}
	}
	c.ClaimsToSuppress, c.Unset = t.suppressClaims, empty
	c.ScopesToSuppress = t.suppressScopes
	if t.scopes != nil && len(perms) > 0 {
		c.ScopesToAdd = make([]string, len(perms))
		for i, p := range perms {
			c.ScopesToAdd[i] = t.scopes.at(p)
		}
	}
	c.ScopesToSuppress = t.ungranted(sub.Scopes, c.ScopesToAdd, c.ScopesToSuppress)
	return c
}

// ungranted adds to suppress each requested scope in the policy's scope
// space (under any profile's prefix, or a permission's name where a profile
// adds unprefixed scopes) that added (sorted, as the permissions are) does
// not hold: such a scope means a permission downstream, and only the policy
// grants those, to this profile's tokens as it says.
func (t *tokenProfile) ungranted(requested, added, suppress []string) []string {
	cloned := false
	for _, s := range requested {
		if !t.space.holds(s) || slices.Contains(suppress, s) {
			continue
		}
		if _, ok := slices.BinarySearch(added, s); ok {
			continue
		}
		if !cloned { // suppress may be the compiled profile's own list
			suppress, cloned = slices.Clip(suppress), true
		}
		suppress = append(suppress, s)
	}
	return suppress
}

// Expand returns the roles (inherited ones included) and the permissions
// that roles hold, sorted; roles the policy lacks are ignored. Defaults
// and groups play no part.
func (s *Snapshot) Expand(roles []string) (allRoles, perms []string) {
	var g grant
	for _, r := range roles {
		if rg := s.ix.role(r); rg != nil {
			g.roles = merge(g.roles, rg.roles)
			g.perms = merge(g.perms, rg.perms)
		}
	}
	return names(s.ix.roleName, g.roles), names(s.ix.permName, g.perms)
}
