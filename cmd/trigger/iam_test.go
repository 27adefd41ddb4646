package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/deploy"
	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// TestTriggerIAMActionsFromEvidence runs the trigger binary through every
// path that reads DynamoDB (the first load, the version check, a reload, a
// user's assignments)
// behind a proxy that records the IAM action of each request, and compares
// what the binary called with what deploy.Actions(deploy.Trigger) grants.
// The template test checks that the trigger's role in serverless.yml allows
// exactly that list, so a new DynamoDB call in the trigger fails one of the
// two until the role allows it, and an action the trigger no longer calls
// fails this one until the role drops it.
func TestTriggerIAMActionsFromEvidence(t *testing.T) {
	client, table, store, _ := exampleTable(t)
	ctx := context.Background()
	staff := readFile(t, staffEvent)
	if _, err := store.Assign(ctx, "22222222-2222-4222-8222-222222222222", []string{"refunder"}, "iam-test"); err != nil {
		t.Fatal(err)
	}
	proxy := dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	f := lambdatest.Start(t, lambdatest.Build(t, "."), dynamoEnv(table, proxy.URL, map[string]string{
		"PRETOKEN_REFRESH_INTERVAL": "200ms", "PRETOKEN_USER_ASSIGNMENTS": "true"}))
	if got := f.Invoke(t, staff); got.ErrorMessage != "" {
		t.Fatal(got.ErrorMessage)
	}

	// A changed policy (not inlined): the next reload reads its compiled
	// snapshot, and the assignments a Query.
	big := examplePolicyOf(t)
	r := big.Roles["editor"]
	r.Permissions = append(r.Permissions, "orders:cancel")
	big.Roles["editor"] = r
	large := dynamo.New(client, table)
	large.InlineLimit = -1
	if _, err := large.Apply(ctx, big, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(strings.Join(scopesOf(t, f.Invoke(t, staff).Body), " "), "orders-api/orders:cancel") {
		if time.Now().After(deadline) {
			t.Fatal("the large policy did not reach tokens within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	counts := proxy.Counts()
	for _, op := range []string{"BatchGetItem", "GetItem", "Query"} {
		if counts[op] == 0 {
			t.Errorf("the test did not exercise %s (requests: %v); it must cover every read path", op, counts)
		}
	}
	if diff := cmp.Diff(deploy.Actions(deploy.Trigger), proxy.Actions()); diff != "" {
		t.Errorf("IAM actions the trigger needs (deploy.Actions) vs what the binary called (-granted +called):\n%s", diff)
	}
}
