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
		"~ client narrow: accessToken changed",
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
