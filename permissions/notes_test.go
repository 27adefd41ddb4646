package permissions

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUngranted(t *testing.T) {
	p := &Policy{
		Roles: map[string]Role{
			"viewer":   {},
			"editor":   {Inherits: []string{"viewer"}},
			"reporter": {},
			"ops":      {},
			"partner":  {},
			"reader":   {}, // only for direct assignments
			"orphan":   {Inherits: []string{"reader"}},
		},
		Groups:    map[string][]string{"staff": {"editor"}},
		Machines:  map[string][]string{"m2m": {"reporter"}},
		IdPGroups: IdPGroups{{Provider: "Okta", Attribute: "custom:groups", Roles: map[string][]string{"Partners": {"partner"}}}},
		Defaults:  Defaults{Roles: []string{"ops"}},
	}
	if diff := cmp.Diff([]string{"orphan", "reader"}, Ungranted(p)); diff != "" {
		t.Errorf("Ungranted (-want +got):\n%s", diff)
	}
}

func TestClosest(t *testing.T) {
	names := []string{"staff", "admins", "webapp"}
	for in, want := range map[string]string{"Staff": "staff", "admin": "admins", "webstaf111": "", "nobody": "", "x": "", "ADMINS": "admins", "webap": "webapp"} {
		if got := Closest(in, names); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}
