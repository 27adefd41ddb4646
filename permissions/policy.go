// Package permissions owns pretoken's authorization model: the policy (roles,
// group mappings, default roles, machine clients, client profiles, limits),
// its validation, and the compiled Snapshot that resolves a subject's roles,
// permissions, scopes and claims.
//
// The package is pure: no AWS, no logging, no globals. Adapters (the policy
// file, DynamoDB) produce a Policy; the trigger consumes a Snapshot.
package permissions

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strings"
)

// DefaultProfile is the key of the client profile used for any app client
// that has no profile of its own.
const DefaultProfile = "default"

// Policy is the whole authorization policy as a user writes it. The zero
// value is a valid, empty policy that grants nothing.
type Policy struct {
	// Roles by name.
	Roles map[string]Role `yaml:"roles,omitempty" json:"roles,omitempty"`
	// Groups maps a Cognito group name to the roles its members get.
	Groups map[string][]string `yaml:"groups,omitempty" json:"groups,omitempty"`
	// Defaults are given to every signed-in user (not to machine clients).
	Defaults Defaults `yaml:"defaults,omitempty" json:"defaults,omitempty"`
	// Machines maps an app client id to the roles it gets in a
	// client-credentials (machine-to-machine) token.
	Machines map[string][]string `yaml:"machines,omitempty" json:"machines,omitempty"`
	// Clients maps an app client id, or DefaultProfile, to what its tokens get.
	Clients map[string]ClientProfile `yaml:"clients,omitempty" json:"clients,omitempty"`
	// Limits bound what pretoken adds to one token.
	Limits Limits `yaml:"limits,omitempty" json:"limits,omitempty"`
	// Tenancy turns on tenants: a user holds roles per tenant (membership)
	// and each token is for one active tenant, whose roles join the others.
	Tenancy Tenancy `yaml:"tenancy,omitempty" json:"tenancy,omitzero"`
	// IdPGroups maps the groups each identity provider sends in a user
	// attribute to roles, one entry per provider. It is apart from Groups:
	// another trust domain.
	IdPGroups IdPGroups `yaml:"idpGroups,omitempty" json:"idpGroups,omitempty"`
}

// Tenancy says where a token's active tenant comes from.
type Tenancy struct {
	// Active is TenancyStored (the active tenant kept per user in the
	// table) or "attribute:<name>" (a user attribute that only admins or the
	// backend can write). Empty: no tenancy.
	Active string `yaml:"active,omitempty" json:"active,omitempty"`
}

// IsZero reports whether tenancy is off.
func (t Tenancy) IsZero() bool { return t.Active == "" }

// TenancyStored is Tenancy.Active for an active tenant kept in the table.
const TenancyStored = "stored"

// IdPGroups maps identity-provider groups to roles: one entry per provider.
// Order carries no meaning; files and items list the entries by provider.
type IdPGroups []IdPGroup

// IdPGroup maps the groups one identity provider sends to roles. The groups
// count only for a user whose identities attribute (written by Cognito, not
// by users) names Provider: a mapped attribute is writable by the user in
// any pool that federates, so the attribute alone proves nothing.
type IdPGroup struct {
	// Provider is the identity provider's name in the user pool, the
	// providerName in the user's identities attribute, such as Okta.
	Provider string `yaml:"provider,omitempty" json:"provider,omitempty"`
	// Attribute is the user attribute that holds the IdP's groups, such as
	// custom:groups: "[a, b]" (a multi-valued SAML attribute), a JSON array
	// (OIDC), or a comma-separated list.
	Attribute string `yaml:"attribute,omitempty" json:"attribute,omitempty"`
	// Roles maps an IdP group to roles. Unlisted IdP groups grant nothing.
	Roles map[string][]string `yaml:"roles,omitempty" json:"roles,omitempty"`
}

// UnmarshalJSON reads the list, and also the provider-less single mapping
// that policies stored before providers were named: it becomes one entry
// without a provider, which validation refuses, naming provider, so a
// stored policy of that form is never served as if it were scoped.
func (g *IdPGroups) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		var one IdPGroup
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*g = IdPGroups{one}
		return nil
	}
	var list []IdPGroup
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*g = list
	return nil
}

// Sorted returns the entries by provider, then attribute: the order files
// and items keep.
func (g IdPGroups) Sorted() IdPGroups {
	out := slices.Clone(g)
	slices.SortStableFunc(out, func(a, b IdPGroup) int {
		return cmp.Or(strings.Compare(a.Provider, b.Provider), strings.Compare(a.Attribute, b.Attribute))
	})
	return out
}

// Role is a named set of permissions. A role also holds every permission of
// the roles it inherits, to any depth.
type Role struct {
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Permissions []string `yaml:"permissions,omitempty" json:"permissions,omitempty"`
	Inherits    []string `yaml:"inherits,omitempty" json:"inherits,omitempty"`
}

// Defaults holds what every signed-in user gets.
type Defaults struct {
	Roles []string `yaml:"roles,omitempty" json:"roles,omitempty"`
}

// ClientProfile says what one app client's tokens receive.
type ClientProfile struct {
	IDToken     TokenProfile `yaml:"idToken,omitempty" json:"idToken,omitempty"`
	AccessToken TokenProfile `yaml:"accessToken,omitempty" json:"accessToken,omitempty"`
}

// TokenProfile says what one token receives. Scopes, ScopePrefix and
// SuppressScopes only apply to the access token.
type TokenProfile struct {
	// Claims maps a claim name to its source: "roles", "permissions",
	// "groups" or "attribute:<user attribute name>".
	Claims map[string]string `yaml:"claims,omitempty" json:"claims,omitempty"`
	// Scopes adds the subject's permissions as OAuth scopes.
	Scopes bool `yaml:"scopes,omitempty" json:"scopes,omitempty"`
	// ScopePrefix is put before every added scope, for example a resource
	// server identifier and a slash.
	ScopePrefix string `yaml:"scopePrefix,omitempty" json:"scopePrefix,omitempty"`
	// Allow, when present, limits the permissions that reach this token
	// (as scopes or in a permissions claim). An entry ending in "*" matches
	// every permission with that prefix. Absent (nil) means no filter; an
	// empty list means no permission reaches the token.
	Allow AllowList `yaml:"allow,omitempty" json:"allow,omitzero"`
	// SuppressScopes are removed from the access token.
	SuppressScopes []string `yaml:"suppressScopes,omitempty" json:"suppressScopes,omitempty"`
	// SuppressClaims are removed from the token.
	SuppressClaims []string `yaml:"suppressClaims,omitempty" json:"suppressClaims,omitempty"`
}

// AllowList is a token's allow-list. Its zero value, nil, is "no filter"
// and is left out of files and items; an empty list is kept, because it
// means "nothing" and must survive export and storage.
type AllowList []string

// IsZero reports whether the list is absent (nil), for the YAML and JSON
// encoders' omitempty and omitzero.
func (a AllowList) IsZero() bool { return a == nil }

// Limits bound what pretoken adds to a single token.
type Limits struct {
	// MaxTokenBytes is the budget for each token pretoken changes: the
	// bytes by which the claims and scopes it adds grow the encoded token
	// (the base64url JWT payload). Zero means DefaultMaxTokenBytes.
	MaxTokenBytes int `yaml:"maxTokenBytes,omitempty" json:"maxTokenBytes,omitempty"`
	// OnOverflow is what happens when the budget is exceeded: OverflowFail
	// (the default) or OverflowRolesOnly.
	OnOverflow string `yaml:"onOverflow,omitempty" json:"onOverflow,omitempty"`
}

// Limit defaults and choices.
const (
	// DefaultMaxTokenBytes is the default growth budget per token: a
	// browser keeps about 4,096 bytes per cookie, and a Cognito token
	// without additions is about 1,000 to 1,500 bytes, so 2,500 added bytes
	// keep a token within one cookie; both tokens together stay far below
	// CloudFront's 8,192 bytes per header and API Gateway's 10,240 bytes for
	// all request headers. See the README, "Token size".
	DefaultMaxTokenBytes = 2500
	// OverflowFail refuses the token.
	OverflowFail = "fail"
	// OverflowRolesOnly drops permission claims and scopes and keeps roles.
	OverflowRolesOnly = "roles-only"
)

// Claim sources.
const (
	SourceRoles       = "roles"
	SourcePermissions = "permissions"
	SourceGroups      = "groups"
	SourceAttribute   = "attribute:"
	// SourceTenant is the token's active tenant id (left out without one).
	SourceTenant = "tenant"
	// SourceTenants lists every tenant the user is a member of.
	SourceTenants = "tenants"
)
