package permissions

import (
	"slices"
	"strings"
)

// Snapshot is a validated policy compiled for fast resolution: every role's
// closure (inherited roles and permissions) and every group's, machine's and
// the defaults' grant are computed once, so resolving a subject costs work
// proportional to its groups and grants, not to the size of the policy.
//
// A Snapshot is immutable and safe for concurrent use.
type Snapshot struct {
	version  string
	policy   *Policy
	roles    map[string]grant
	groups   map[string]grant
	defaults grant
	machines map[string]grant
	profiles map[string]*profile
	limits   Limits
}

// grant is a sorted, duplicate-free set of roles and the permissions they hold.
type grant struct {
	roles []string
	perms []string
}

type profile struct {
	id     string
	tokens [2]tokenProfile // by Token
}

type tokenProfile struct {
	claims         []claimSpec // sorted by name
	scopes         bool
	scopePrefix    string
	allowExact     map[string]bool
	allowPrefixes  []string
	allowAll       bool
	restricted     bool
	suppressScopes []string
	suppressClaims []string
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
	s := &Snapshot{
		version:  version,
		policy:   p,
		roles:    make(map[string]grant, len(p.Roles)),
		groups:   make(map[string]grant, len(p.Groups)),
		machines: make(map[string]grant, len(p.Machines)),
		profiles: make(map[string]*profile, len(p.Clients)+1),
		limits:   p.Limits,
	}
	// Interning makes every occurrence of a permission or role name share
	// one string, which keeps large snapshots small.
	intern := make(map[string]string)
	in := func(s string) string {
		if v, ok := intern[s]; ok {
			return v
		}
		intern[s] = s
		return s
	}
	for name := range p.Roles {
		s.closure(in(name), in)
	}
	for g, roles := range p.Groups {
		s.groups[g] = s.union(roles)
	}
	s.defaults = s.union(p.Defaults.Roles)
	for id, roles := range p.Machines {
		s.machines[id] = s.union(roles)
	}
	for id, c := range p.Clients {
		s.profiles[id] = compileProfile(id, c)
	}
	if _, ok := s.profiles[DefaultProfile]; !ok {
		s.profiles[DefaultProfile] = compileProfile(DefaultProfile, ClientProfile{})
	}
	if s.limits.MaxTokenBytes == 0 {
		s.limits.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if s.limits.OnOverflow == "" {
		s.limits.OnOverflow = OverflowFail
	}
	return s, nil
}

// closure computes and memoizes the grant of role name. Validation has ruled
// out cycles and unknown parents.
func (s *Snapshot) closure(name string, in func(string) string) grant {
	if g, ok := s.roles[name]; ok {
		return g
	}
	r := s.policy.Roles[name]
	g := grant{roles: []string{name}}
	for _, perm := range r.Permissions {
		g.perms = append(g.perms, in(perm))
	}
	for _, parent := range r.Inherits {
		pg := s.closure(in(parent), in)
		g.roles = append(g.roles, pg.roles...)
		g.perms = append(g.perms, pg.perms...)
	}
	g = normalize(g)
	s.roles[name] = g
	return g
}

func (s *Snapshot) union(roles []string) grant {
	var g grant
	for _, r := range roles {
		rg := s.roles[r]
		g.roles = append(g.roles, rg.roles...)
		g.perms = append(g.perms, rg.perms...)
	}
	return normalize(g)
}

func normalize(g grant) grant {
	slices.Sort(g.roles)
	slices.Sort(g.perms)
	return grant{roles: slices.Clip(slices.Compact(g.roles)), perms: slices.Clip(slices.Compact(g.perms))}
}

func compileProfile(id string, c ClientProfile) *profile {
	p := &profile{id: id}
	for tok, t := range [2]TokenProfile{IDToken: c.IDToken, AccessToken: c.AccessToken} {
		tp := tokenProfile{
			scopes:         t.Scopes,
			scopePrefix:    t.ScopePrefix,
			restricted:     len(t.Allow) > 0,
			suppressScopes: slices.Clone(t.SuppressScopes),
			suppressClaims: slices.Clone(t.SuppressClaims),
		}
		for _, a := range t.Allow {
			switch {
			case a == "*":
				tp.allowAll = true
			case strings.HasSuffix(a, "*"):
				tp.allowPrefixes = append(tp.allowPrefixes, strings.TrimSuffix(a, "*"))
			default:
				if tp.allowExact == nil {
					tp.allowExact = make(map[string]bool)
				}
				tp.allowExact[a] = true
			}
		}
		for _, name := range sortedKeys(t.Claims) {
			kind, _ := claimKind(t.Claims[name])
			tp.claims = append(tp.claims, claimSpec{name: name, kind: kind, attribute: strings.TrimPrefix(t.Claims[name], SourceAttribute)})
		}
		p.tokens[tok] = tp
	}
	return p
}

// Version is the label the snapshot was compiled with.
func (s *Snapshot) Version() string { return s.version }

// Policy returns the policy the snapshot was compiled from. It must not be changed.
func (s *Snapshot) Policy() *Policy { return s.policy }

// Limits returns the policy's limits with defaults filled in.
func (s *Snapshot) Limits() Limits { return s.limits }

// HasRole reports whether the policy defines role name.
func (s *Snapshot) HasRole(name string) bool {
	_, ok := s.roles[name]
	return ok
}

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
	// Attributes are the user's attributes, read by attribute: claims.
	Attributes map[string]string
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
	// FromPermissions is true for a claim listing permissions, the first
	// thing dropped when a token is over its size budget.
	FromPermissions bool
}

// Resolve works out what sub's tokens get.
func (s *Snapshot) Resolve(sub Subject) Result {
	g := s.grantFor(sub)
	p := s.profiles[sub.ClientID]
	if p == nil {
		p = s.profiles[DefaultProfile]
	}
	r := Result{Profile: p.id, Roles: g.roles, Permissions: g.perms}
	r.ID = p.tokens[IDToken].changes(sub, g, false)
	r.Access = p.tokens[AccessToken].changes(sub, g, true)
	return r
}

func (s *Snapshot) grantFor(sub Subject) grant {
	if sub.Machine {
		return s.machines[sub.ClientID]
	}
	parts := make([]grant, 0, 4)
	if len(s.defaults.roles) > 0 {
		parts = append(parts, s.defaults)
	}
	for _, grp := range sub.Groups {
		if g, ok := s.groups[grp]; ok && len(g.roles) > 0 {
			parts = append(parts, g)
		}
	}
	for _, role := range sub.Roles {
		if g, ok := s.roles[role]; ok {
			parts = append(parts, g)
		}
	}
	switch len(parts) {
	case 0:
		return grant{}
	case 1:
		return parts[0]
	}
	var nr, np int
	for _, p := range parts {
		nr += len(p.roles)
		np += len(p.perms)
	}
	out := grant{roles: make([]string, 0, nr), perms: make([]string, 0, np)}
	for _, p := range parts {
		out.roles = append(out.roles, p.roles...)
		out.perms = append(out.perms, p.perms...)
	}
	return normalize(out)
}

func (t *tokenProfile) allowed(perm string) bool {
	if !t.restricted || t.allowAll || t.allowExact[perm] {
		return true
	}
	for _, p := range t.allowPrefixes {
		if strings.HasPrefix(perm, p) {
			return true
		}
	}
	return false
}

func (t *tokenProfile) changes(sub Subject, g grant, access bool) TokenChanges {
	perms := g.perms
	if t.restricted && !t.allowAll {
		perms = make([]string, 0, len(g.perms))
		for _, p := range g.perms {
			if t.allowed(p) {
				perms = append(perms, p)
			}
		}
	}
	var c TokenChanges
	if len(t.claims) > 0 {
		c.Claims = make([]Claim, 0, len(t.claims))
	}
	for _, spec := range t.claims {
		switch spec.kind {
		case claimRoles:
			c.Claims = append(c.Claims, Claim{Name: spec.name, Values: g.roles})
		case claimPermissions:
			c.Claims = append(c.Claims, Claim{Name: spec.name, Values: perms, FromPermissions: true})
		case claimGroups:
			c.Claims = append(c.Claims, Claim{Name: spec.name, Values: sub.Groups})
		case claimAttribute:
			if v, ok := sub.Attributes[spec.attribute]; ok {
				c.Claims = append(c.Claims, Claim{Name: spec.name, Values: []string{v}, Single: true})
			}
		}
	}
	c.ClaimsToSuppress = t.suppressClaims
	if access {
		c.ScopesToSuppress = t.suppressScopes
		if t.scopes && len(perms) > 0 {
			c.ScopesToAdd = make([]string, len(perms))
			for i, p := range perms {
				c.ScopesToAdd[i] = t.scopePrefix + p
			}
		}
	}
	return c
}
