package permissions

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiff(t *testing.T) {
	old := testPolicy()
	if d := Diff(old, testPolicy()); len(d) != 0 {
		t.Fatalf("identical policies differ: %v", d)
	}
	next := testPolicy()
	delete(next.Roles, "basic")
	next.Defaults.Roles = nil
	next.Roles["auditor"] = Role{Permissions: []string{"audit:read"}}
	next.Roles["editor"] = Role{Description: "Edits", Permissions: []string{"orders:write", "orders:delete"}}
	next.Groups["staff"] = []string{"editor", "auditor"}
	next.Groups["new"] = nil
	next.Machines["m2m"] = []string{"reporter"}
	c := next.Clients["narrow"]
	c.AccessToken.ScopePrefix = "api2/"
	next.Clients["narrow"] = c
	next.Limits = Limits{MaxTokenBytes: 4000, OnOverflow: OverflowRolesOnly}
	var got []string
	for _, ch := range Diff(old, next) {
		got = append(got, ch.String())
	}
	want := []string{
		"+ role auditor",
		"- role basic",
		`~ role editor: description "" -> "Edits"; +permissions orders:delete; -inherits viewer`,
		"+ group new",
		"~ group staff: +roles auditor",
		"~ defaults: -roles basic",
		`~ client narrow: accessToken.scopePrefix "api/" -> "api2/"`,
		`~ limits: maxTokenBytes 0 -> 4000; onOverflow "" -> "roles-only"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	reordered := testPolicy()
	reordered.Groups["staff"] = []string{"editor"}
	reordered.Roles["refunder"] = Role{Permissions: []string{"orders:read", "orders:refund"}, Inherits: []string{"viewer"}}
	if got := Diff(old, reordered); len(got) != 1 || got[0].String() != "~ role refunder: permissions reordered" {
		t.Errorf("reorder: %v", got)
	}
}

// A client's plan line names the claim, scope or list entry that changes.
func TestDiffClientFields(t *testing.T) {
	old := &Policy{Clients: map[string]ClientProfile{"kiosk": {
		IDToken:     TokenProfile{Claims: map[string]string{"app_roles": "roles", "old": "groups"}},
		AccessToken: TokenProfile{Scopes: true, ScopePrefix: "api/", Allow: AllowList{"orders:*"}, SuppressScopes: []string{"aws.cognito.signin.user.admin"}},
	}}}
	next := &Policy{Clients: map[string]ClientProfile{"kiosk": {
		IDToken: TokenProfile{Claims: map[string]string{"app_roles": "permissions", "lib_perms": "permissions"}, SuppressClaims: []string{"dev:x"}},
		AccessToken: TokenProfile{ScopePrefix: "api2/", Allow: AllowList{"orders:*", "catalog:read"},
			SuppressScopes: []string{"aws.cognito.signin.user.admin"}},
	}}}
	var got []string
	for _, ch := range Diff(old, next) {
		got = append(got, ch.String())
	}
	want := []string{`~ client kiosk: idToken.claims.app_roles "roles" -> "permissions"; idToken.claims + lib_perms; idToken.claims - old; ` +
		`idToken.suppressClaims + dev:x; accessToken.scopes true -> false; accessToken.scopePrefix "api/" -> "api2/"; accessToken.allow + catalog:read`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// An allow-list that appears or goes says what absent means.
	none := &Policy{Clients: map[string]ClientProfile{"kiosk": {AccessToken: TokenProfile{Allow: AllowList{}}}}}
	all := &Policy{Clients: map[string]ClientProfile{"kiosk": {}}}
	if got := Diff(all, none); len(got) != 1 || got[0].String() != "~ client kiosk: accessToken.allow (absent: every permission) -> []" {
		t.Errorf("allow appears: %v", got)
	}
	// Empty and absent lists and claim maps are the same.
	empty := &Policy{Clients: map[string]ClientProfile{"kiosk": {IDToken: TokenProfile{Claims: map[string]string{}, SuppressClaims: []string{}}}}}
	if got := Diff(all, empty); len(got) != 0 {
		t.Errorf("empty vs absent: %v", got)
	}
}
