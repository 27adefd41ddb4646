// Package benchdata makes the policies and events that the benchmarks share.
package benchdata

import (
	"encoding/json"
	"fmt"

	"github.com/pretoken/pretoken/permissions"
)

// Policy has n roles of 5 permissions each, n groups and one machine client
// (machine0). The user's groups all map into the first ten roles (group i to
// role i mod 10, which inherits role i-1 within chains of five), so what a
// user gets is the same at every policy size and only the size varies.
// Every token gets roles and permissions as claims and permissions as scopes.
func Policy(n int) *permissions.Policy {
	p := &permissions.Policy{
		Roles:    make(map[string]permissions.Role, n),
		Groups:   make(map[string][]string, n),
		Defaults: permissions.Defaults{Roles: []string{"role0"}},
		Machines: map[string][]string{"machine0": {fmt.Sprintf("role%d", min(n, 10)-1)}},
		Clients: map[string]permissions.ClientProfile{permissions.DefaultProfile: {
			IDToken: permissions.TokenProfile{Claims: map[string]string{"app_roles": "roles", "app_permissions": "permissions", "tenant": "attribute:custom:tenant_id"}},
			AccessToken: permissions.TokenProfile{Scopes: true, ScopePrefix: "api/", Claims: map[string]string{"app_roles": "roles"},
				SuppressScopes: []string{"aws.cognito.signin.user.admin"}},
		}},
	}
	for i := range n {
		r := permissions.Role{}
		for j := range 5 {
			r.Permissions = append(r.Permissions, fmt.Sprintf("res%d:action%d", i, j))
		}
		if i%5 != 0 {
			r.Inherits = []string{fmt.Sprintf("role%d", i-1)}
		}
		p.Roles[fmt.Sprintf("role%d", i)] = r
		p.Groups[fmt.Sprintf("group%d", i)] = []string{fmt.Sprintf("role%d", i%min(n, 10))}
	}
	return p
}

// Event is a raw sign-in event of version "1", "2" or "3" for a user in
// groups group0 … group<groups-1>; version "3" is a client-credentials event
// for machine0, without a user.
func Event(version string, groups int) []byte {
	var names []string
	for g := range groups {
		names = append(names, fmt.Sprintf("group%d", g))
	}
	ev := map[string]any{
		"version": version, "triggerSource": "TokenGeneration_Authentication", "region": "us-east-1",
		"userPoolId": "us-east-1_BENCH", "userName": "bench",
		"callerContext": map[string]any{"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "webclient"},
		"request": map[string]any{
			"userAttributes":     map[string]string{"sub": "b1", "email": "bench@example.com", "custom:tenant_id": "t1"},
			"scopes":             []string{"openid", "aws.cognito.signin.user.admin"},
			"groupConfiguration": map[string]any{"groupsToOverride": names, "iamRolesToOverride": []string{}, "preferredRole": nil},
		},
		"response": map[string]any{},
	}
	if version == "3" {
		ev["triggerSource"] = "TokenGeneration_ClientCredentials"
		ev["callerContext"] = map[string]any{"clientId": "machine0"}
		delete(ev, "userName")
		ev["request"] = map[string]any{"scopes": []string{"api/res9:action0"}}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}
