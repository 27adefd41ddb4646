package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimulateIdPGroupsAndPrefixedScopes: through pretoken simulate, a
// native user who wrote the mapped attribute and asks for a scope under the
// prefix gets neither the IdP role nor the scope; an Okta user gets Okta's
// role, and still not the ungranted scope.
func TestSimulateIdPGroupsAndPrefixedScopes(t *testing.T) {
	dir := t.TempDir()
	native := `{"version":"2","triggerSource":"TokenGeneration_HostedAuth","userName":"maria","callerContext":{"clientId":"web"},
 "request":{"userAttributes":{"sub":"u-1","custom:groups":"[Okta-Support]"%s},"groupConfiguration":{"groupsToOverride":[]},
 "scopes":["openid","orders-api/users:manage"]},"response":{}}`
	write := func(name, extra string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Replace(native, "%s", extra, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nat := write("native.json", "")
	okta := write("okta.json", `,"identities":"[{\"providerName\":\"Okta\",\"providerType\":\"SAML\"}]"`)
	code, out, errOut := runCLI(t, "simulate", "--policy", "../../examples/tenants.yaml", "--event", nat, "--event", okta, "--summary")
	if code != 0 {
		t.Fatalf("simulate: %d %s", code, errOut)
	}
	parts := strings.Split(out, "== ")
	if len(parts) != 3 {
		t.Fatalf("simulate output:\n%s", out)
	}
	if !strings.Contains(parts[1], "+ app_roles: []") || !strings.Contains(parts[1], "- scopes: orders-api/users:manage") {
		t.Errorf("native user:\n%s", parts[1])
	}
	if !strings.Contains(parts[2], `+ app_roles: ["support"]`) || !strings.Contains(parts[2], "- scopes: orders-api/users:manage") {
		t.Errorf("Okta user:\n%s", parts[2])
	}
}
