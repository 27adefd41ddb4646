package main

import (
	"os"
	"strings"
	"testing"
)

// TestTryItIsTrue runs the README's "Try it" against the example policy as
// far as it runs without AWS: the demo's web client has no profile of its
// own, so the default profile applies. With group staff the access token
// has orders:read and orders:write; after the user leaves staff, orders:write
// is gone and orders:read stays (viewer is a default role), so GET /orders
// still answers 200; app_roles never holds admin, so GET /admin answers 403.
func TestTryItIsTrue(t *testing.T) {
	const webClient = "a1b2c3d4e5f6g7h8i9j0k1l2m3" // an id Cognito makes up at deploy time
	explain := func(groups ...string) string {
		args := []string{"explain", examplePolicy, "--client", webClient, "--version", "2"}
		for _, g := range groups {
			args = append(args, "--group", g)
		}
		code, out, errOut := runCLI(t, args...)
		if code != 0 || onlyWarnings(errOut) != nil {
			t.Fatalf("%v: code %d, stderr %q", args, code, errOut)
		}
		return out
	}
	scopes := func(out string) string {
		for _, line := range strings.Split(out, "\n") {
			if s, ok := strings.CutPrefix(line, "  + scopes: "); ok {
				return " " + s + " "
			}
		}
		return ""
	}
	staff, left := explain("staff"), explain()
	for _, tt := range []struct {
		what, out, want string
		has             bool
	}{
		{"in staff, GET /orders (200)", scopes(staff), " orders-api/orders:read ", true},
		{"in staff, GET /me", scopes(staff), " orders-api/orders:write ", true},
		{"in staff, GET /me roles", staff, `+ app_roles: ["editor","viewer"]`, true},
		{"in staff, GET /admin (403)", staff, `"admin"`, false},
		{"after leaving staff, GET /orders still 200", scopes(left), " orders-api/orders:read ", true},
		{"after leaving staff, no orders:write", scopes(left), " orders-api/orders:write ", false},
		{"after leaving staff, GET /me roles", left, `+ app_roles: ["viewer"]`, true},
	} {
		if strings.Contains(tt.out, tt.want) != tt.has {
			t.Errorf("%s: %q in the preview is %v, want %v:\n%s", tt.what, tt.want, !tt.has, tt.has, tt.out)
		}
	}
	// The README promises what the previews show.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, try, _ := strings.Cut(string(readme), "**Try it**")
	try, _, _ = strings.Cut(try, "\n```\n")
	for _, promise := range []string{"# 200: scope orders-api/orders:read", "# 403: app_roles lacks admin", "no orders-api/orders:write scope", "GET /orders still answers 200"} {
		if !strings.Contains(try, promise) {
			t.Errorf("README's Try it does not say %q", promise)
		}
	}
	if strings.Contains(try, "GET /orders answers 403") {
		t.Error("README's Try it promises a 403 on GET /orders that the example policy's default role viewer prevents")
	}
	if !strings.Contains(explain(), "client profile \"default\"") {
		t.Error("the demo's web client is not served by the default profile")
	}
}
