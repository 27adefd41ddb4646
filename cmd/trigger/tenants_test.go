package main_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
	"github.com/pretoken/pretoken/trigger"
)

// tenantToken invokes f for user sub (with extra attributes) and returns the
// ID token's claims.
func tenantToken(t *testing.T, f *lambdatest.Function, sub string, attrs map[string]string) map[string]any {
	t.Helper()
	a := map[string]string{"sub": sub}
	for k, v := range attrs {
		a[k] = v
	}
	ev, _ := json.Marshal(map[string]any{"version": "2", "triggerSource": "TokenGeneration_RefreshTokens", "userName": "maria",
		"callerContext": map[string]any{"clientId": "web"}, "request": map[string]any{"userAttributes": a,
			"groupConfiguration": map[string]any{"groupsToOverride": []string{}}}})
	got := f.Invoke(t, ev)
	if got.ErrorMessage != "" {
		t.Fatalf("invoke: %s", got.ErrorMessage)
	}
	var r trigger.Reply
	if err := json.Unmarshal(got.Body, &r); err != nil {
		t.Fatal(err)
	}
	if d := r.Response.ClaimsAndScopeOverrideDetails; d != nil && d.IDTokenGeneration != nil {
		return d.IDTokenGeneration.ClaimsToAddOrOverride
	}
	return map[string]any{}
}

// TestLambdaTenants: the trigger binary under the emulator, with the
// memberships in DynamoDB Local: tenant A active gives A's roles; switching
// to B (then a refresh) gives B's; removed from B, no B roles; one DynamoDB
// request per token, whatever the number of memberships.
func TestLambdaTenants(t *testing.T) {
	client := dynamotest.Client(t)
	table := dynamotest.Table(t, client)
	store := dynamo.New(client, table)
	ctx := context.Background()
	p, err := permissions.ReadFile("../../examples/tenants.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	const sub = "33333333-3333-4333-8333-333333333333"
	for tenant, role := range map[string]string{"acme": "tenant-admin", "globex": "member"} {
		if _, err := store.AssignInTenant(ctx, sub, tenant, []string{role}, "e2e"); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.SetActiveTenant(ctx, sub, "acme", "e2e"); err != nil {
		t.Fatal(err)
	}
	proxy := dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	f := lambdatest.Start(t, lambdatest.Build(t, "."), dynamoEnv(table, proxy.URL, map[string]string{"PRETOKEN_REFRESH_INTERVAL": "1s"}))
	tenantToken(t, f, sub, nil) // the first token also loads the policy
	proxy.Counts()

	claims := tenantToken(t, f, sub, nil)
	if diff := cmp.Diff(map[string]any{"app_roles": []any{"member", "tenant-admin"}, "tenant_id": "acme", "tenants": []any{"acme", "globex"}}, claims); diff != "" {
		t.Errorf("acme active (-want +got):\n%s", diff)
	}
	c := proxy.Counts()
	delete(c, "GetItem") // a version check, once a second at most, is not the user's
	if c["Query"] != 1 || len(c) != 1 {
		t.Errorf("one token made %v DynamoDB requests for the user, want one Query", c)
	}
	for _, r := range proxy.Reads() {
		if r.Op == "Query" && (r.Partition != "USER#"+sub || !r.Consistent) {
			t.Errorf("the user read on the wire: %+v, want a strongly consistent Query of the user", r)
		}
	}

	// The backend switches the user to globex; the client refreshes.
	if err := store.SetActiveTenant(ctx, sub, "globex", "e2e"); err != nil {
		t.Fatal(err)
	}
	claims = tenantToken(t, f, sub, nil)
	if claims["tenant_id"] != "globex" || cmp.Diff([]any{"member"}, claims["app_roles"]) != "" {
		t.Errorf("after the switch to globex: %v", claims)
	}
	// Removed from globex: its roles and claim are gone at the next token,
	// and so is the stored active tenant; acme, the only membership left,
	// is the token's tenant.
	if _, err := store.UnassignInTenant(ctx, sub, "globex", []string{"member"}, "e2e"); err != nil {
		t.Fatal(err)
	}
	claims = tenantToken(t, f, sub, nil)
	if claims["tenant_id"] != "acme" || cmp.Diff([]any{"member", "tenant-admin"}, claims["app_roles"]) != "" || cmp.Diff([]any{"acme"}, claims["tenants"]) != "" {
		t.Errorf("removed from globex, still active there: %v", claims)
	}
	// Re-added to globex: a member again, not its active tenant again.
	if _, err := store.AssignInTenant(ctx, sub, "globex", []string{"member"}, "e2e"); err != nil {
		t.Fatal(err)
	}
	if claims = tenantToken(t, f, sub, nil); claims["tenant_id"] != nil || cmp.Diff([]any{}, claims["app_roles"]) != "" {
		t.Errorf("re-added to globex, active there again: %v", claims)
	}
	if _, err := store.UnassignInTenant(ctx, sub, "globex", []string{"member"}, "e2e"); err != nil {
		t.Fatal(err)
	}

	// The active tenant from an attribute only the backend writes.
	p.Tenancy.Active = "attribute:custom:tenant_id"
	if _, err := store.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// Under the stored tenancy acme, the only membership, is every token's
	// tenant; under the attribute, a tenant the user left gives none. That
	// tells when the new policy has reached the function.
	deadline := time.Now().Add(15 * time.Second)
	for {
		claims = tenantToken(t, f, sub, map[string]string{"custom:tenant_id": "globex"})
		if claims["tenant_id"] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("attribute tenancy did not reach tokens, or the attribute names a tenant the user left: %v", claims)
		}
		time.Sleep(200 * time.Millisecond)
	}
	claims = tenantToken(t, f, sub, map[string]string{"custom:tenant_id": "acme"})
	if claims["tenant_id"] != "acme" || cmp.Diff([]any{"member", "tenant-admin"}, claims["app_roles"]) != "" {
		t.Errorf("acme from the attribute: %v", claims)
	}
}
