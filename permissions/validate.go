package permissions

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
)

// Bounds on names, chosen to fit Cognito's own (group names and client ids
// up to 128 characters, custom scopes up to 256).
const (
	maxNameLen       = 128
	maxPermissionLen = 256
	maxTokenBytes    = 1 << 16
)

// Path locates a value in a policy: map keys and list indexes ("[2]") from
// the top, for example roles / editor / inherits / [0].
type Path []string

func (p Path) String() string {
	var b strings.Builder
	for i, e := range p {
		if i > 0 && !strings.HasPrefix(e, "[") {
			b.WriteByte('.')
		}
		b.WriteString(e)
	}
	return b.String()
}

// Key is a comparable form of the path, for maps from path to position.
func (p Path) Key() string { return strings.Join(p, "\x1f") }

func (p Path) with(elems ...string) Path {
	return append(slices.Clip(p), elems...)
}

func index(i int) string { return fmt.Sprintf("[%d]", i) }

// FieldError is one problem found in a policy, at Path.
type FieldError struct {
	Path Path
	Msg  string
}

func (e FieldError) Error() string { return e.Path.String() + ": " + e.Msg }

// ValidationError holds every problem found in a policy, in a stable order.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		lines[i] = fe.Error()
	}
	return "invalid policy: " + strings.Join(lines, "; ")
}

type validator struct {
	p    *Policy
	errs []FieldError
}

func (v *validator) addf(path Path, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks p and returns a *ValidationError listing every problem,
// or nil when p is valid.
func Validate(p *Policy) error {
	v := &validator{p: p}
	v.roles()
	for _, g := range slices.Sorted(maps.Keys(p.Groups)) {
		path := Path{"groups", g}
		v.groupName(path, g)
		v.roleRefs(path, p.Groups[g])
		v.itemSize(path, "group", g, 2*len(g)+len("roles")+listBytes(p.Groups[g]))
	}
	v.roleRefs(Path{"defaults", "roles"}, p.Defaults.Roles)
	v.itemSize(Path{"defaults"}, "defaults", "", len("roles")+listBytes(p.Defaults.Roles))
	for _, id := range slices.Sorted(maps.Keys(p.Machines)) {
		path := Path{"machines", id}
		v.clientID(path, id)
		v.roleRefs(path, p.Machines[id])
		v.itemSize(path, "machine client", id, 2*len(id)+len("roles")+listBytes(p.Machines[id]))
	}
	for _, id := range slices.Sorted(maps.Keys(p.Clients)) {
		path := Path{"clients", id}
		if id != DefaultProfile {
			v.clientID(path, id)
		}
		c := p.Clients[id]
		if b, err := json.Marshal(c); err == nil { // JSON spends more bytes on a value than DynamoDB does
			v.itemSize(path, "client profile", id, 2*len(id)+len(b))
		}
		v.token(path.with("idToken"), c.IDToken, IDToken)
		v.token(path.with("accessToken"), c.AccessToken, AccessToken)
	}
	v.limits(Path{"limits"}, p.Limits)
	v.tenancy(Path{"tenancy"}, p.Tenancy)
	v.idpGroups(Path{"idpGroups"}, p.IdPGroups)
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: v.errs}
}

func (v *validator) roles() {
	names := slices.Sorted(maps.Keys(v.p.Roles))
	for _, name := range names {
		r := v.p.Roles[name]
		path := Path{"roles", name}
		if !ValidScope(name) || len(name) > maxNameLen {
			v.addf(path, "role name %q must be 1 to %d printable characters without blanks, quotes or backslashes", name, maxNameLen)
		}
		v.permissionList(path.with("permissions"), r.Permissions)
		for i, parent := range r.Inherits {
			if _, ok := v.p.Roles[parent]; !ok {
				v.addf(path.with("inherits", index(i)), "unknown role %q%s", parent, v.roleHint(parent))
			}
		}
		v.duplicates(path.with("inherits"), r.Inherits)
		if n := roleItemBytes(name, r); n > MaxItemBytes {
			v.addf(path, "role %q would take %d bytes as one stored item, over DynamoDB's limit of %d (400 KB); split its permissions into roles it inherits", name, n, MaxItemBytes)
		}
	}
	v.cycles(names)
}

// cycles reports each inheritance cycle once, at the role where a
// depth-first walk in name order first closes it.
func (v *validator) cycles(names []string) {
	const (
		unseen = iota
		active
		done
	)
	state := make(map[string]int, len(names))
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = active
		stack = append(stack, name)
		for i, parent := range v.p.Roles[name].Inherits {
			if _, ok := v.p.Roles[parent]; !ok {
				continue // reported as unknown
			}
			switch state[parent] {
			case active:
				start := slices.Index(stack, parent)
				cycle := append(slices.Clone(stack[start:]), parent)
				v.addf(Path{"roles", name, "inherits", index(i)}, "inheritance cycle: %s", strings.Join(cycle, " -> "))
			case unseen:
				visit(parent)
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, name := range names {
		if state[name] == unseen {
			visit(name)
		}
	}
}

func (v *validator) roleRefs(path Path, roles []string) {
	for i, r := range roles {
		if _, ok := v.p.Roles[r]; !ok {
			v.addf(path.with(index(i)), "unknown role %q%s", r, v.roleHint(r))
		}
	}
	v.duplicates(path, roles)
}

func (v *validator) permissionList(path Path, perms []string) {
	for i, perm := range perms {
		if !ValidScope(perm) || len(perm) > maxPermissionLen {
			v.addf(path.with(index(i)), "permission %q must be 1 to %d printable characters without blanks, quotes or backslashes", perm, maxPermissionLen)
		}
		if why, ok := CognitoScopes[perm]; ok {
			v.addf(path.with(index(i)), "permission %q is a scope Cognito gives a meaning of its own (%s): as a scope it would reach every holder; name the permission differently", perm, why)
		}
	}
	v.duplicates(path, perms)
}

func (v *validator) duplicates(path Path, list []string) {
	seen := make(map[string]bool, len(list))
	for i, s := range list {
		if seen[s] {
			v.addf(path.with(index(i)), "%q is listed twice", s)
		}
		seen[s] = true
	}
}

func (v *validator) groupName(path Path, g string) {
	ok := g != "" && len(g) <= maxNameLen
	for _, r := range g {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			ok = false
		}
	}
	if !ok {
		v.addf(path, "group name %q must be 1 to %d printable characters without blanks", g, maxNameLen)
	}
}

// clientID checks an app client id: Cognito's are [\w+]+, at most 128.
func (v *validator) clientID(path Path, id string) {
	ok := id != "" && len(id) <= maxNameLen
	for _, r := range id {
		if !(r == '_' || r == '+' || r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			ok = false
		}
	}
	if !ok {
		v.addf(path, "app client id %q must be 1 to %d letters, digits, '_' or '+'", id, maxNameLen)
	}
}

func (v *validator) token(path Path, t TokenProfile, tok Token) {
	for _, name := range slices.Sorted(maps.Keys(t.Claims)) {
		cpath := path.with("claims", name)
		if name == "" || len(name) > maxNameLen || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
			v.addf(cpath, "claim name %q must be 1 to %d printable characters without blanks", name, maxNameLen)
			continue
		}
		if err := CheckAddClaim(name, tok); err != nil {
			v.addf(cpath, "claim %q %v", name, err)
			continue
		}
		if why, bad := ShadowsClaim(name); bad {
			v.addf(cpath, "claim name %q %s: where the claim ends without a value, the user's or Cognito's own would pass for it; choose a name of your own, such as app_%s", name, why, strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(name), "custom:"), "dev:"))
			continue
		}
		src := t.Claims[name]
		kind, ok := claimKind(src)
		switch {
		case !ok:
			v.addf(cpath, "claim source %q must be roles, permissions, groups, tenant, tenants or attribute:<name>", src)
		case (kind == claimTenant || kind == claimTenants) && v.p.Tenancy.IsZero():
			v.addf(cpath, "claim source %q needs tenancy (tenancy.active: stored or attribute:<name>)", src)
		case tok == IDToken && simpleIDClaims[name] && kind != claimAttribute && kind != claimTenant:
			v.addf(cpath, "claim %q takes a single value in the ID token; use an attribute: source", name)
		}
		if slices.Contains(t.SuppressClaims, name) {
			v.addf(cpath, "claim %q is both added and suppressed", name)
		}
	}
	for i, name := range t.SuppressClaims {
		if err := CheckSuppressClaim(name, tok); err != nil {
			v.addf(path.with("suppressClaims", index(i)), "claim %q %v", name, err)
		}
	}
	v.duplicates(path.with("suppressClaims"), t.SuppressClaims)
	for i, a := range t.Allow {
		if !validAllow(a) {
			v.addf(path.with("allow", index(i)), "allow entry %q must be a permission, optionally ending in *", a)
		}
	}
	v.duplicates(path.with("allow"), t.Allow)
	if tok == IDToken {
		if t.Scopes {
			v.addf(path.with("scopes"), "scopes only go into the access token")
		}
		if t.ScopePrefix != "" {
			v.addf(path.with("scopePrefix"), "scopes only go into the access token")
		}
		if len(t.SuppressScopes) > 0 {
			v.addf(path.with("suppressScopes"), "scopes only go into the access token")
		}
		return
	}
	if t.ScopePrefix != "" && (!ValidScope(t.ScopePrefix) || len(t.ScopePrefix) > maxPermissionLen) {
		v.addf(path.with("scopePrefix"), "scope prefix %q must be printable characters without blanks, quotes or backslashes", t.ScopePrefix)
	}
	added := v.addedScopes(t)
	if t.ScopePrefix != "" {
		for _, scope := range slices.Sorted(maps.Keys(added)) {
			if why, ok := CognitoScopes[scope]; ok {
				v.addf(path.with("scopePrefix"), "scope prefix %q makes permission %q the scope %q, which Cognito gives a meaning of its own (%s)", t.ScopePrefix, added[scope], scope, why)
			}
		}
	}
	for i, s := range t.SuppressScopes {
		if !ValidScope(s) {
			v.addf(path.with("suppressScopes", index(i)), "scope %q must be printable characters without blanks, quotes or backslashes", s)
		}
		if perm, ok := added[s]; ok {
			v.addf(path.with("suppressScopes", index(i)), "scope %q is both added (from permission %q) and suppressed", s, perm)
		}
	}
	v.duplicates(path.with("suppressScopes"), t.SuppressScopes)
}

// MaxItemBytes is DynamoDB's item size limit. Each role is stored as one
// item, so a role must fit in one.
const MaxItemBytes = 400 * 1024

// itemSize reports an item apply would store (a group, the defaults, a
// machine client, a client profile) whose size bound n, with room for the
// keys, is over the limit: it fails validate and plan, naming the item,
// rather than the apply midway.
func (v *validator) itemSize(path Path, kind, name string, n int) {
	n += 200
	if n <= MaxItemBytes {
		return
	}
	what := kind
	if name != "" {
		what = fmt.Sprintf("%s %q", kind, name)
	}
	v.addf(path, "%s would take %d bytes as one stored item, over DynamoDB's limit of %d (400 KB); split it", what, n, MaxItemBytes)
}

func listBytes(l []string) int {
	n := 3
	for _, s := range l {
		n += len(s) + 1
	}
	return n
}

// roleItemBytes is an upper bound on the size of role r's stored item, by
// DynamoDB's rules (attribute names and values, 3 bytes per list and 1 per
// element), with room for the keys.
func roleItemBytes(name string, r Role) int {
	list := func(l []string) int {
		n := 3
		for _, s := range l {
			n += len(s) + 1
		}
		return n
	}
	return 200 + 2*len(name) + len("description") + len(r.Description) +
		len("permissions") + list(r.Permissions) + len("inherits") + list(r.Inherits)
}

// CognitoScopes are the scopes that Cognito itself gives a meaning, with
// what each one lets a token do. A permission may never become one.
var CognitoScopes = map[string]string{
	"aws.cognito.signin.user.admin": "it lets users read and change their own attributes, which attribute: claims trust",
	"openid":                        "it makes the token an OpenID Connect token",
	"email":                         "it releases the email address",
	"phone":                         "it releases the phone number",
	"profile":                       "it releases the user's profile attributes",
}

// addedScopes maps each scope the access token profile t can add to the
// permission it comes from (after the allow-list). It is empty when t adds
// no scopes.
func (v *validator) addedScopes(t TokenProfile) map[string]string {
	out := map[string]string{}
	if !t.Scopes {
		return out
	}
	for _, r := range v.p.Roles {
		for _, perm := range r.Permissions {
			if t.Allow == nil || allowed(t.Allow, perm) {
				out[t.ScopePrefix+perm] = perm
			}
		}
	}
	return out
}

func validAllow(a string) bool {
	if a == "*" {
		return true
	}
	body := strings.TrimSuffix(a, "*")
	return ValidScope(body) && len(body) <= maxPermissionLen && !strings.Contains(body, "*")
}

func (v *validator) tenancy(path Path, t Tenancy) {
	if t.Active == "" || t.Active == TenancyStored {
		return
	}
	if name, ok := strings.CutPrefix(t.Active, SourceAttribute); !ok || name == "" {
		v.addf(path.with("active"), "active %q must be %q or attribute:<user attribute>", t.Active, TenancyStored)
	}
}

func (v *validator) idpGroups(path Path, list IdPGroups) {
	seen := make(map[string]int, len(list))
	for i, g := range list {
		path := path.with(index(i))
		switch prev, dup := seen[g.Provider]; {
		case g.Provider == "":
			v.addf(path.with("provider"), "name the identity provider (provider: its providerName in the user's identities attribute, such as Okta): without it any provider, or the user, could grant these roles")
		case len(g.Provider) > maxNameLen || strings.ContainsFunc(g.Provider, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
			v.addf(path.with("provider"), "provider %q must be 1 to %d printable characters without blanks", g.Provider, maxNameLen)
		case dup:
			v.addf(path.with("provider"), "provider %q has two entries (also idpGroups[%d]); map all its groups in one", g.Provider, prev)
		default:
			seen[g.Provider] = i
		}
		if g.Attribute == "" {
			v.addf(path.with("attribute"), "name the user attribute that holds the identity provider's groups, such as custom:groups")
		}
		if g.Attribute != "" && (strings.ContainsFunc(g.Attribute, unicode.IsSpace) || len(g.Attribute) > maxNameLen || strings.EqualFold(g.Attribute, IdentitiesAttribute)) {
			v.addf(path.with("attribute"), "attribute %q must be a user attribute name", g.Attribute)
		}
		for _, name := range slices.Sorted(maps.Keys(g.Roles)) {
			p := path.with("roles", name)
			if name == "" || len(name) > maxNameLen || strings.ContainsAny(name, ",[]\"") {
				v.addf(p, "IdP group name %q must be 1 to %d characters without commas, brackets or quotes", name, maxNameLen)
			}
			v.roleRefs(p, g.Roles[name])
		}
	}
}

func (v *validator) limits(path Path, l Limits) {
	if l.MaxTokenBytes < 0 || l.MaxTokenBytes > maxTokenBytes {
		v.addf(path.with("maxTokenBytes"), "maxTokenBytes must be between 0 (the default, %d) and %d", DefaultMaxTokenBytes, maxTokenBytes)
	}
	switch l.OnOverflow {
	case "", OverflowFail, OverflowRolesOnly:
	default:
		v.addf(path.with("onOverflow"), "onOverflow %q must be %q or %q", l.OnOverflow, OverflowFail, OverflowRolesOnly)
	}
}

type claimSource int

const (
	claimRoles claimSource = iota
	claimPermissions
	claimGroups
	claimAttribute
	claimTenant
	claimTenants
)

func claimKind(src string) (claimSource, bool) {
	switch src {
	case SourceRoles:
		return claimRoles, true
	case SourcePermissions:
		return claimPermissions, true
	case SourceGroups:
		return claimGroups, true
	case SourceTenant:
		return claimTenant, true
	case SourceTenants:
		return claimTenants, true
	}
	if name, ok := strings.CutPrefix(src, SourceAttribute); ok && name != "" {
		return claimAttribute, true
	}
	return 0, false
}
