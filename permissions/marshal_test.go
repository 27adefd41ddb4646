package permissions

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestMarshalFileRoundTrip(t *testing.T) {
	p, err := ReadFile("../examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := MarshalFile(p, "exported\nversion 3")
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseFile("export.yaml", out)
	if err != nil {
		t.Fatalf("exported file does not parse: %v\n%s", err, out)
	}
	if diff := cmp.Diff(p, back, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-file +export):\n%s", diff)
	}
	again, _ := MarshalFile(back, "exported\nversion 3")
	if string(again) != string(out) {
		t.Errorf("export is not byte-stable:\n%s\n---\n%s", out, again)
	}
	if want := "# exported\n# version 3\nroles:\n"; string(out[:len(want)]) != want {
		t.Errorf("export starts %q", out[:40])
	}
}

func TestExpand(t *testing.T) {
	s := mustCompile(t, testPolicy())
	roles, perms := s.Expand([]string{"admin", "ghost"})
	if diff := cmp.Diff([]string{"admin", "editor", "refunder", "viewer"}, roles); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"orders:read", "orders:refund", "orders:write", "users:manage"}, perms); diff != "" {
		t.Errorf("permissions (-want +got):\n%s", diff)
	}
	if r, p := s.Expand(nil); r != nil || p != nil {
		t.Errorf("nothing expands to %v, %v", r, p)
	}
}
