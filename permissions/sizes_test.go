package permissions

import (
	"fmt"
	"strings"
	"testing"
)

// TestEveryItemMeasured: a group, the defaults, a machine client and a
// client profile too large for one stored item are validation errors that
// name them, as a role is; before, only roles were measured and such a
// policy passed validate and plan, then failed apply midway.
func TestEveryItemMeasured(t *testing.T) {
	roles := map[string]Role{}
	var many []string
	for i := range 4000 {
		name := fmt.Sprintf("role-%04d-%s", i, strings.Repeat("x", 110))
		roles[name] = Role{}
		many = append(many, name)
	}
	p := &Policy{
		Roles:    roles,
		Groups:   map[string][]string{"everyone": many},
		Defaults: Defaults{Roles: many},
		Machines: map[string][]string{"4machineclient000000000000": many},
		Clients: map[string]ClientProfile{"default": {AccessToken: TokenProfile{Scopes: true,
			SuppressScopes: []string{strings.Repeat("s", 500<<10)}}}},
	}
	err := Validate(p)
	if err == nil {
		t.Fatal("a policy with items over 400 KB is valid")
	}
	for _, want := range []string{`group "everyone" would take`, `defaults would take`, `machine client "4machineclient000000000000" would take`, `client profile "default" would take`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in the validation error", want)
		}
	}
}
