package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateNotesTheAdminScopeWithIdPGroups: where the policy maps
// identity-provider groups, validate names each client profile whose access
// token keeps aws.cognito.signin.user.admin (with it, a federated user can
// write the groups attribute), and is quiet once the profile suppresses it.
func TestValidateNotesTheAdminScopeWithIdPGroups(t *testing.T) {
	policy := func(suppress string) string {
		f := filepath.Join(t.TempDir(), "p.yaml")
		body := `roles: {support: {permissions: [tickets:read]}}
idpGroups:
  - {provider: Okta, attribute: custom:groups, roles: {Okta-Support: [support]}}
clients:
  default: {accessToken: {scopes: true, scopePrefix: api/` + suppress + `}}
  kiosk: {idToken: {claims: {app_roles: roles}}, accessToken: {suppressScopes: [aws.cognito.signin.user.admin]}}
`
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	code, _, errOut := runCLI(t, "validate", policy(""))
	if code != 0 || !strings.Contains(errOut, "client profile default keeps aws.cognito.signin.user.admin") || strings.Contains(errOut, "profile kiosk") {
		t.Errorf("exit %d, stderr %q; want a note for default only", code, errOut)
	}
	code, _, errOut = runCLI(t, "validate", policy(", suppressScopes: [aws.cognito.signin.user.admin]"))
	if code != 0 || strings.Contains(errOut, "keeps aws.cognito.signin.user.admin") {
		t.Errorf("exit %d, stderr %q; want no note once suppressed", code, errOut)
	}
}
