package permissions

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestEmptyAllowListAllowsNothing: `allow: []` means nothing, an absent
// allow-list means no filter, and the difference survives the file, export
// and JSON (the inline copy in DynamoDB).
func TestEmptyAllowListAllowsNothing(t *testing.T) {
	const src = `
roles:
  viewer: {permissions: [orders:read, catalog:read]}
defaults: {roles: [viewer]}
clients:
  default:
    accessToken: {scopes: true, claims: {perms: permissions}}
  locked:
    accessToken: {scopes: true, allow: [], claims: {perms: permissions}}
`
	p, err := ParseFile("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Clients["locked"].AccessToken.Allow; got == nil || len(got) != 0 {
		t.Fatalf("allow: [] parsed to %#v, want an empty, non-nil list", got)
	}
	snap := mustCompile(t, p)
	open := snap.Resolve(Subject{ClientID: "other"})
	if diff := cmp.Diff([]string{"catalog:read", "orders:read"}, open.Access.ScopesToAdd); diff != "" {
		t.Errorf("no allow-list: scopes (-want +got):\n%s", diff)
	}
	locked := snap.Resolve(Subject{ClientID: "locked"})
	if len(locked.Access.ScopesToAdd) != 0 || len(locked.Access.Claims[0].Values) != 0 {
		t.Errorf("allow: [] let through scopes %v and claim %v", locked.Access.ScopesToAdd, locked.Access.Claims)
	}

	out, err := MarshalFile(p, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "allow: []") {
		t.Errorf("export dropped allow: []:\n%s", out)
	}
	back, err := ParseFile("export.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Clients["locked"].AccessToken.Allow; got == nil {
		t.Error("allow: [] did not survive export: it would grant everything after apply")
	}
	if got := back.Clients[DefaultProfile].AccessToken.Allow; got != nil {
		t.Errorf("an absent allow-list came back as %#v", got)
	}
	if d := Diff(p, back); len(d) != 0 {
		t.Errorf("export round trip is a change: %v", d)
	}
	none := clonePolicy(t, p)
	c := none.Clients["locked"]
	c.AccessToken.Allow = nil
	none.Clients["locked"] = c
	if d := Diff(p, none); len(d) == 0 {
		t.Error("removing allow: [] is no change in the plan, yet it grants every permission")
	}
}

func clonePolicy(t *testing.T, p *Policy) *Policy {
	t.Helper()
	out, err := MarshalFile(p, "")
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseFile("clone.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestSuppressingAScopeTheAllowListKeepsOut: only a scope that can really be
// added counts as "both added and suppressed".
func TestSuppressingAScopeTheAllowListKeepsOut(t *testing.T) {
	p := testPolicy()
	c := p.Clients["narrow"]
	c.AccessToken.SuppressScopes = []string{"api/reports:read"}
	p.Clients["narrow"] = c
	if err := Validate(p); err != nil {
		t.Errorf("suppressing a scope the allow-list never adds: %v", err)
	}
}

// TestDuplicateGroupsCostNothing: a group named many times grants what it
// grants once, at the cost of naming it once.
func TestDuplicateGroupsCostNothing(t *testing.T) {
	snap := mustCompile(t, testPolicy())
	groups := slices.Repeat([]string{"staff", "support"}, 50_000)
	start := time.Now()
	got := snap.Resolve(Subject{ClientID: "other", Groups: groups})
	elapsed := time.Since(start)
	want := snap.Resolve(Subject{ClientID: "other", Groups: []string{"staff", "support"}})
	if diff := cmp.Diff(want.Permissions, got.Permissions); diff != "" {
		t.Errorf("permissions (-once +repeated):\n%s", diff)
	}
	allocs := testing.AllocsPerRun(5, func() { snap.Resolve(Subject{ClientID: "other", Groups: groups}) })
	// One merge per distinct group: the allocations do not grow with the
	// repeats (a merge per repeat allocated 100,000 times).
	if allocs > 50 {
		t.Errorf("100,000 group entries cost %v allocations per resolution (%v); duplicates must be merged once", allocs, elapsed)
	}
}
