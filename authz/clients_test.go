package authz

import (
	"context"
	"testing"

	"github.com/pretoken/pretoken/internal/pooltest"
	"github.com/pretoken/pretoken/permissions"
)

// One Verifier serves two clients whose profiles name their claims
// differently: each token is read with its own client's names, and a name
// of the other client grants nothing.
func TestVerifierServesClientsWithTheirOwnClaims(t *testing.T) {
	policy := &permissions.Policy{Clients: map[string]permissions.ClientProfile{
		"web": {IDToken: permissions.TokenProfile{Claims: map[string]string{"app_roles": "roles", "app_permissions": "permissions"}}},
		"kiosk": {IDToken: permissions.TokenProfile{Claims: map[string]string{"lib_roles": "roles", "lib_perms": "permissions", "org": "tenant"}},
			AccessToken: permissions.TokenProfile{Scopes: true, ScopePrefix: "lib/"}},
	}, Tenancy: permissions.Tenancy{Active: permissions.TenancyStored}}
	names, err := ClaimsForClients(policy, []string{"web", "kiosk"})
	if err != nil {
		t.Fatal(err)
	}
	p := pooltest.New(t, "k1")
	v, err := New(Config{Issuer: p.Issuer(), ClientIDs: []string{"web", "kiosk"}, TokenUse: Any, ClientClaims: names})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	idToken := func(client string, claims map[string]any) *Principal {
		t.Helper()
		claims["token_use"], claims["client_id"], claims["aud"], claims["scope"] = "id", nil, client, nil
		pr, err := v.Verify(ctx, p.Sign(t, "k1", claims))
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	web := idToken("web", map[string]any{"app_roles": "editor", "app_permissions": "orders:write", "lib_perms": "books:lend"})
	if !web.HasRole("editor") || !web.HasPermission("orders:write") || web.HasPermission("books:lend") {
		t.Errorf("web token read with the wrong names: %+v", web)
	}
	kiosk := idToken("kiosk", map[string]any{"lib_roles": "librarian", "lib_perms": "books:lend", "org": "branch-1", "app_permissions": "orders:write"})
	if !kiosk.HasRole("librarian") || !kiosk.HasPermission("books:lend") || kiosk.HasPermission("orders:write") || kiosk.Tenant() != "branch-1" {
		t.Errorf("kiosk token read with the wrong names: %+v", kiosk)
	}
	access, err := v.Verify(ctx, p.Sign(t, "k1", map[string]any{"client_id": "kiosk", "scope": "lib/books:lend orders-api/orders:read"}))
	if err != nil {
		t.Fatal(err)
	}
	if !access.HasPermission("books:lend") || access.HasPermission("orders:read") {
		t.Errorf("kiosk access token: scopes read with another client's prefix: %+v", access)
	}
}
