package main

import (
	"strings"
	"testing"
)

// TestTenantCommands: assign and unassign in a tenant, user, tenant use
// (refusing a tenant the user is not in), tenant members, and explain with
// the table's memberships.
func TestTenantCommands(t *testing.T) {
	awsEnv(t)
	t.Setenv("PRETOKEN_ACTOR", "tenant-test")
	table := opsTable(t)
	if code, _, errOut := runCLI(t, "apply", "--table", table, "-f", "../../examples/tenants.yaml", "--remove-all"); code != 0 {
		t.Fatal(errOut)
	}
	const sub = "44444444-4444-4444-8444-444444444444"
	for _, args := range [][]string{
		{"assign", "--table", table, sub, "tenant-admin", "--tenant", "acme"},
		{"assign", "--table", table, sub, "member", "--tenant", "globex"},
	} {
		if code, out, errOut := runCLI(t, args...); code != 0 || !strings.Contains(out, "in tenant") {
			t.Fatalf("%v: exit %d, %q, %q", args, code, out, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "tenant", "use", "--table", table, sub, "initech"); code != 1 || !strings.Contains(errOut, "not a member") {
		t.Errorf("tenant use for a non-member: exit %d, %q", code, errOut)
	}
	if code, out, errOut := runCLI(t, "tenant", "use", "--table", table, sub, "globex"); code != 0 || !strings.Contains(out, "active tenant globex") {
		t.Fatalf("tenant use: exit %d, %q, %q", code, out, errOut)
	}
	_, out, _ := runCLI(t, "user", "--table", table, sub)
	for _, want := range []string{"tenant acme: roles tenant-admin", "tenant globex (active): roles member; permissions orders:read"} {
		if !strings.Contains(out, want) {
			t.Errorf("user lacks %q:\n%s", want, out)
		}
	}
	if _, out, _ := runCLI(t, "tenant", "members", "--table", table, "acme"); out != sub+"  tenant-admin\n" {
		t.Errorf("tenant members: %q", out)
	}
	_, out, errOut := runCLI(t, "explain", "--table", table, "--user", sub, "--client", "web", "--tenant", "acme")
	if !strings.Contains(out, "tenant:       acme") || !strings.Contains(out, "roles:        member tenant-admin") {
		t.Errorf("explain --tenant acme:\n%s%s", out, errOut)
	}
	_, out, _ = runCLI(t, "explain", "--table", table, "--user", sub, "--client", "web", "--tenant", "initech")
	if !strings.Contains(out, "tenant:       none (initech is not one of the user's memberships)") {
		t.Errorf("explain --tenant initech:\n%s", out)
	}
	_, out, _ = runCLI(t, "explain", "--policy", "../../examples/tenants.yaml", "--client", "web", "--membership", "acme=member",
		"--idp-group", "Okta-Support")
	if !strings.Contains(out, "tenant:       acme") || !strings.Contains(out, "roles:        member support") {
		t.Errorf("explain with a membership and an IdP group:\n%s", out)
	}
	if code, out, _ := runCLI(t, "unassign", "--table", table, sub, "member", "--tenant", "globex"); code != 0 || !strings.Contains(out, "roles [member] -> []") {
		t.Errorf("unassign in a tenant: %q", out)
	}
}

// Tenant data in a table whose policy has no tenancy is kept, but no token
// reads it: assign --tenant and tenant use say so.
func TestTenantDataWithoutTenancyWarns(t *testing.T) {
	table := opsTable(t) // the example policy: no tenancy
	const sub = "55555555-5555-4555-8555-555555555555"
	for _, args := range [][]string{
		{"assign", "--table", table, sub, "refunder", "--tenant", "acme"},
		{"tenant", "use", "--table", table, sub, "acme"},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != 0 || !strings.Contains(errOut, "warning: the table's policy has no tenancy") {
			t.Errorf("%v: code %d, stderr %q", args, code, errOut)
		}
	}
	if _, _, errOut := runCLI(t, "assign", "--table", table, sub, "refunder"); errOut != "" {
		t.Errorf("assign without a tenant: stderr %q", errOut)
	}
}
