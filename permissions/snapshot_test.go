package permissions

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// testPolicy has a four-deep inheritance chain, a diamond, defaults, a
// machine client and three client profiles.
func testPolicy() *Policy {
	return &Policy{
		Roles: map[string]Role{
			"d":        {Permissions: []string{"d:1"}},
			"c":        {Permissions: []string{"c:1"}, Inherits: []string{"d"}},
			"b":        {Permissions: []string{"b:1"}, Inherits: []string{"c"}},
			"a":        {Permissions: []string{"a:1"}, Inherits: []string{"b"}},
			"viewer":   {Permissions: []string{"orders:read"}},
			"editor":   {Permissions: []string{"orders:write"}, Inherits: []string{"viewer"}},
			"refunder": {Permissions: []string{"orders:refund", "orders:read"}, Inherits: []string{"viewer"}},
			"admin":    {Permissions: []string{"users:manage"}, Inherits: []string{"editor", "refunder"}},
			"reporter": {Permissions: []string{"reports:read"}},
			"basic":    {Permissions: []string{"profile:read"}},
		},
		Groups: map[string][]string{
			"chain":   {"a"},
			"staff":   {"editor"},
			"support": {"refunder"},
			"admins":  {"admin"},
			"empty":   {},
		},
		Defaults: Defaults{Roles: []string{"basic"}},
		Machines: map[string][]string{"m2m": {"reporter"}},
		Clients: map[string]ClientProfile{
			DefaultProfile: {
				IDToken:     TokenProfile{Claims: map[string]string{"roles": "roles", "perms": "permissions", "tenant": "attribute:custom:tenant"}},
				AccessToken: TokenProfile{Scopes: true, SuppressScopes: []string{"aws.cognito.signin.user.admin"}},
			},
			"narrow": {
				IDToken:     TokenProfile{Claims: map[string]string{"perms": "permissions", "grp": "groups"}, Allow: []string{"orders:read"}},
				AccessToken: TokenProfile{Scopes: true, ScopePrefix: "api/", Allow: []string{"orders:*", "users:manage"}, Claims: map[string]string{"perms": "permissions"}},
			},
			"m2m": {AccessToken: TokenProfile{Scopes: true, ScopePrefix: "rs/", Claims: map[string]string{"roles": "roles"}}},
		},
	}
}

func mustCompile(t testing.TB, p *Policy) *Snapshot {
	t.Helper()
	s, err := Compile(p, "v1")
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

func TestResolveRolesAndPermissions(t *testing.T) {
	s := mustCompile(t, testPolicy())
	tests := []struct {
		name      string
		sub       Subject
		wantRoles []string
		wantPerms []string
	}{
		{"defaults only", Subject{}, []string{"basic"}, []string{"profile:read"}},
		{"inheritance four deep", Subject{Groups: []string{"chain"}},
			[]string{"a", "b", "basic", "c", "d"}, []string{"a:1", "b:1", "c:1", "d:1", "profile:read"}},
		{"diamond counted once", Subject{Groups: []string{"admins"}},
			[]string{"admin", "basic", "editor", "refunder", "viewer"},
			[]string{"orders:read", "orders:refund", "orders:write", "profile:read", "users:manage"}},
		{"overlapping groups merge", Subject{Groups: []string{"staff", "support"}},
			[]string{"basic", "editor", "refunder", "viewer"},
			[]string{"orders:read", "orders:refund", "orders:write", "profile:read"}},
		{"unknown and empty groups grant nothing", Subject{Groups: []string{"nope", "empty", "Staff"}},
			[]string{"basic"}, []string{"profile:read"}},
		{"directly assigned roles, unknown ignored", Subject{Roles: []string{"reporter", "ghost"}},
			[]string{"basic", "reporter"}, []string{"profile:read", "reports:read"}},
		{"machine gets its roles, no defaults, no groups", Subject{Machine: true, ClientID: "m2m", Groups: []string{"admins"}},
			[]string{"reporter"}, []string{"reports:read"}},
		{"unknown machine gets nothing", Subject{Machine: true, ClientID: "other"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Resolve(tt.sub)
			if diff := cmp.Diff(tt.wantRoles, got.Roles, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPerms, got.Permissions, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("permissions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveTokens(t *testing.T) {
	s := mustCompile(t, testPolicy())
	tests := []struct {
		name        string
		sub         Subject
		wantProfile string
		wantID      TokenChanges
		wantAccess  TokenChanges
	}{
		{
			name:        "unlisted client uses the default profile",
			sub:         Subject{ClientID: "web", Groups: []string{"staff"}, Attributes: map[string]string{"custom:tenant": "t1", "email": "x@example.com"}},
			wantProfile: DefaultProfile,
			wantID: TokenChanges{Claims: []Claim{
				{Name: "perms", Values: []string{"orders:read", "orders:write", "profile:read"}, DropFirst: true},
				{Name: "roles", Values: []string{"basic", "editor", "viewer"}},
				{Name: "tenant", Values: []string{"t1"}, Single: true},
			}},
			wantAccess: TokenChanges{
				ScopesToAdd:      []string{"orders:read", "orders:write", "profile:read"},
				ScopesToSuppress: []string{"aws.cognito.signin.user.admin"},
			},
		},
		{
			name:        "missing attribute leaves its claim out, to be suppressed",
			sub:         Subject{ClientID: "web"},
			wantProfile: DefaultProfile,
			wantID: TokenChanges{Claims: []Claim{
				{Name: "perms", Values: []string{"profile:read"}, DropFirst: true},
				{Name: "roles", Values: []string{"basic"}},
			}, Unset: []string{"tenant"}},
			wantAccess: TokenChanges{ScopesToAdd: []string{"profile:read"}, ScopesToSuppress: []string{"aws.cognito.signin.user.admin"}},
		},
		{
			name:        "allow-lists and scope prefix per token",
			sub:         Subject{ClientID: "narrow", Groups: []string{"admins", "beta"}},
			wantProfile: "narrow",
			wantID: TokenChanges{Claims: []Claim{
				{Name: "grp", Values: []string{"admins", "beta"}},
				{Name: "perms", Values: []string{"orders:read"}, DropFirst: true},
			}},
			wantAccess: TokenChanges{
				Claims:      []Claim{{Name: "perms", Values: []string{"orders:read", "orders:refund", "orders:write", "users:manage"}, DropFirst: true}},
				ScopesToAdd: []string{"api/orders:read", "api/orders:refund", "api/orders:write", "api/users:manage"},
			},
		},
		{
			name:        "machine client: own profile, machine roles",
			sub:         Subject{ClientID: "m2m", Machine: true},
			wantProfile: "m2m",
			wantAccess: TokenChanges{
				Claims:      []Claim{{Name: "roles", Values: []string{"reporter"}}},
				ScopesToAdd: []string{"rs/reports:read"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Resolve(tt.sub)
			if got.Profile != tt.wantProfile {
				t.Errorf("profile = %q, want %q", got.Profile, tt.wantProfile)
			}
			if diff := cmp.Diff(tt.wantID, got.ID, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ID token (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantAccess, got.Access, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("access token (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAllowPatterns(t *testing.T) {
	tests := []struct {
		allow []string
		perm  string
		want  bool
	}{
		{nil, "anything", true},
		{[]string{"*"}, "anything", true},
		{[]string{"orders:read"}, "orders:read", true},
		{[]string{"orders:read"}, "orders:readall", false},
		{[]string{"orders:*"}, "orders:write", true},
		{[]string{"orders:*"}, "orders", false},
		{[]string{"orders:*"}, "catalog:read", false},
		{[]string{"a", "b*"}, "bz", true},
	}
	for _, tt := range tests {
		if got := tt.allow == nil || allowed(tt.allow, tt.perm); got != tt.want {
			t.Errorf("allow %q, permission %q: got %v, want %v", tt.allow, tt.perm, got, tt.want)
		}
	}
}

func TestCompileRejectsInvalidPolicy(t *testing.T) {
	p := testPolicy()
	p.Groups["bad"] = []string{"ghost"}
	if _, err := Compile(p, "v"); err == nil {
		t.Fatal("Compile accepted a policy with an unknown role")
	}
}

func TestCompileDefaults(t *testing.T) {
	s := mustCompile(t, &Policy{})
	if diff := cmp.Diff(Limits{MaxTokenBytes: DefaultMaxTokenBytes, OnOverflow: OverflowFail}, s.Limits()); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
	got := s.Resolve(Subject{ClientID: "any", Groups: []string{"g"}})
	if got.Profile != DefaultProfile || len(got.Roles) != 0 || len(got.ID.Claims) != 0 || len(got.Access.ScopesToAdd) != 0 {
		t.Errorf("empty policy resolved to %+v, want nothing", got)
	}
}

// TestGroupGrantPrecomputed checks the compiled shape: a group's
// grant is precomputed, so resolving does not walk roles.
func TestGroupGrantPrecomputed(t *testing.T) {
	s := mustCompile(t, testPolicy())
	g := s.ix.group("chain")
	if g == nil {
		t.Fatal("group chain not found")
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d"}, g.roleNames); diff != "" {
		t.Errorf("group grant roles (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a:1", "b:1", "c:1", "d:1"}, g.permNames); diff != "" {
		t.Errorf("group grant permissions (-want +got):\n%s", diff)
	}
}
