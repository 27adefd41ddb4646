package main_test

// End-to-end tests: the trigger binary, built from this package, runs under
// aws-lambda-rie and reads DynamoDB Local through a proxy that counts
// requests and can play an unreachable DynamoDB.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
	"github.com/pretoken/pretoken/trigger"
)

const (
	examplePolicy = "../../examples/policy.yaml"
	staffEvent    = "../../examples/events/v2-signin-staff.json"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inProcess answers payload with the handler in this process, as the
// reference for what the Lambda must return.
func inProcess(t testing.TB, p *permissions.Policy, payload []byte) []byte {
	t.Helper()
	snap, err := permissions.Compile(p, "ref")
	if err != nil {
		t.Fatal(err)
	}
	out, err := trigger.New(trigger.Static{S: snap}, zerolog.Nop()).Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func examplePolicyOf(t testing.TB) *permissions.Policy {
	t.Helper()
	p, err := permissions.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func exampleEvents(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob("../../examples/events/*.json")
	if len(files) < 4 {
		t.Fatalf("want the 4 example events, have %d", len(files))
	}
	return files
}

// dynamoEnv is the environment of a function that reads table through proxy.
func dynamoEnv(table, endpoint string, extra map[string]string) map[string]string {
	env := map[string]string{
		"PRETOKEN_TABLE":            table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		"AWS_REGION":                "us-east-1",
		"AWS_ACCESS_KEY_ID":         "local",
		"AWS_SECRET_ACCESS_KEY":     "local",
		"AWS_EC2_METADATA_DISABLED": "true",
		"PRETOKEN_POLICY_FILE":      "",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func scopesOf(t testing.TB, body []byte) []string {
	t.Helper()
	var r trigger.Reply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decode answer: %v: %s", err, body)
	}
	d := r.Response.ClaimsAndScopeOverrideDetails
	if d == nil || d.AccessTokenGeneration == nil {
		return nil
	}
	return d.AccessTokenGeneration.ScopesToAdd
}

// answersAsTheHandler sends every example event (V1, V2, V3) to f, a fresh
// function, and expects exactly what the in-process handler answers with p.
func answersAsTheHandler(t *testing.T, f *lambdatest.Function, p *permissions.Policy, source string) {
	t.Helper()
	for i, ev := range exampleEvents(t) {
		payload := readFile(t, ev)
		got := f.Invoke(t, payload)
		if i == 0 {
			t.Logf("process start to first response through RIE (%s): %v", source, time.Since(f.Started).Round(time.Millisecond))
		}
		if got.ErrorMessage != "" {
			t.Fatalf("%s: %s", ev, got.ErrorMessage)
		}
		if diff := cmp.Diff(string(inProcess(t, p, payload)), string(got.Body)); diff != "" {
			t.Errorf("%s: the Lambda's answer differs from the handler's (-handler +lambda):\n%s", ev, diff)
		}
	}
}

func TestLambdaWithPolicyFile(t *testing.T) {
	bin := lambdatest.Build(t, ".")
	f := lambdatest.Start(t, bin, map[string]string{"PRETOKEN_POLICY_FILE": examplePolicy, "PRETOKEN_TABLE": ""})
	answersAsTheHandler(t, f, examplePolicyOf(t), "policy file")
	if got := f.Invoke(t, []byte(`{"version": "2", "request": {"groupConfiguration": {"groupsToOverride": 7}}}`)); got.ErrorMessage != "malformed event" {
		t.Errorf("malformed event answered %+v, want errorMessage %q", got, "malformed event")
	}
	if got := f.Invoke(t, []byte(`{"version": "5"}`)); got.ErrorMessage != "unsupported event version" {
		t.Errorf("version 5 answered %+v", got)
	}
}

// exampleTable is a fresh table holding the example policy, and its store.
func exampleTable(t *testing.T) (*dynamodb.Client, string, *dynamo.Store, *permissions.Policy) {
	t.Helper()
	client := dynamotest.Client(t)
	table := dynamotest.Table(t, client)
	store := dynamo.New(client, table)
	p := examplePolicyOf(t)
	if _, err := store.Apply(context.Background(), p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return client, table, store, p
}

func TestLambdaWithDynamoDB(t *testing.T) {
	_, table, store, p := exampleTable(t)
	ctx := context.Background()
	proxy := dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	f := lambdatest.Start(t, lambdatest.Build(t, "."), dynamoEnv(table, proxy.URL, map[string]string{
		"PRETOKEN_REFRESH_INTERVAL": "1s", "PRETOKEN_MAX_STALENESS": "4s"}))

	answersAsTheHandler(t, f, p, "DynamoDB Local")

	// A change reaches tokens within the refresh interval.
	staff := readFile(t, staffEvent)
	next := examplePolicyOf(t)
	r := next.Roles["editor"]
	r.Permissions = append(r.Permissions, "orders:cancel")
	next.Roles["editor"] = r
	if _, err := store.Apply(ctx, next, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	for !strings.Contains(strings.Join(scopesOf(t, f.Invoke(t, staff).Body), " "), "orders-api/orders:cancel") {
		if time.Since(applied) > 5*time.Second {
			t.Fatal("the change did not reach tokens within 5s (refresh interval 1s)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("apply to first token with the change: %v (refresh interval 1s)", time.Since(applied).Round(time.Millisecond))

	// DynamoDB unreachable: the last snapshot is served up to the maximum
	// staleness (4s), then tokens are refused with a safe message.
	proxy.SetDown(true)
	down := time.Now()
	var staleServed int
	for {
		got := f.Invoke(t, staff)
		if got.ErrorMessage != "" {
			if got.ErrorMessage != trigger.ErrUnavailable.Error() {
				t.Fatalf("refused with %q, want the safe message %q", got.ErrorMessage, trigger.ErrUnavailable)
			}
			break
		}
		if !strings.Contains(strings.Join(scopesOf(t, got.Body), " "), "orders:cancel") {
			t.Fatalf("while DynamoDB is down the answer changed: %s", got.Body)
		}
		staleServed++
		if time.Since(down) > 15*time.Second {
			t.Fatal("still serving 15s after DynamoDB went down; max staleness is 4s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if since := time.Since(down); since < 2*time.Second || staleServed == 0 {
		t.Errorf("refused %v after DynamoDB went down, after %d stale answers; want the stale snapshot for about 4s", since, staleServed)
	}
	proxy.SetDown(false)
	deadline := time.Now().Add(5 * time.Second)
	for f.Invoke(t, staff).ErrorMessage != "" {
		if time.Now().After(deadline) {
			t.Fatal("did not recover within 5s of DynamoDB coming back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	logs := f.Logs()
	for _, s := range []string{`"cache":"stale"`, `"cache":"loaded"`, `"outcome":"unavailable"`} {
		if !strings.Contains(logs, s) {
			t.Errorf("logs lack %s", s)
		}
	}
}

func TestLambdaStartedWithDynamoDBDown(t *testing.T) {
	deadEndpoint := "http://127.0.0.1:" + strconv.Itoa(lambdatest.FreePort(t))
	bin := lambdatest.Build(t, ".")
	staff := readFile(t, staffEvent)

	closed := lambdatest.Start(t, bin, dynamoEnv("pretoken-absent", deadEndpoint, nil))
	if got := closed.Invoke(t, staff); got.ErrorMessage != trigger.ErrUnavailable.Error() {
		t.Errorf("closed: answered %+v, want errorMessage %q", got, trigger.ErrUnavailable)
	}

	open := lambdatest.Start(t, bin, dynamoEnv("pretoken-absent", deadEndpoint, map[string]string{"PRETOKEN_FAILURE_MODE": "open"}))
	got := open.Invoke(t, staff)
	if got.ErrorMessage != "" {
		t.Fatalf("open: %s", got.ErrorMessage)
	}
	var r trigger.Reply
	if err := json.Unmarshal(got.Body, &r); err != nil {
		t.Fatal(err)
	}
	// Nothing added, groups kept; with no policy ever loaded, the requested
	// scopes no policy vouches for (the event asks for the admin scope) are
	// suppressed.
	want := &trigger.ClaimsAndScopeOverrideDetails{GroupOverrideDetails: &trigger.GroupConfiguration{
		GroupsToOverride: []string{"staff"}, IAMRolesToOverride: []string{}},
		AccessTokenGeneration: &trigger.TokenGeneration{ScopesToSuppress: []string{"aws.cognito.signin.user.admin"}}}
	if diff := cmp.Diff(want, r.Response.ClaimsAndScopeOverrideDetails); diff != "" {
		t.Errorf("open: want nothing added, groups kept, the admin scope suppressed (-want +got):\n%s", diff)
	}
}

// TestLambdaWarmInvocationsStayOffTheNetwork counts DynamoDB requests made by
// warm invocations at the default refresh interval (10s).
func TestLambdaWarmInvocationsStayOffTheNetwork(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 500
	}
	if s := os.Getenv("PRETOKEN_TEST_WARM_INVOCATIONS"); s != "" {
		n = atoi(t, s)
	}
	client := dynamotest.Client(t)
	table := dynamotest.Table(t, client)
	if _, err := dynamo.New(client, table).Apply(context.Background(), examplePolicyOf(t), dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	proxy := dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	f := lambdatest.Start(t, lambdatest.Build(t, "."), dynamoEnv(table, proxy.URL, nil))
	staff := readFile(t, staffEvent)
	if got := f.Invoke(t, staff); got.ErrorMessage != "" {
		t.Fatal(got.ErrorMessage)
	}
	initial := proxy.Counts()
	start := time.Now()
	for range n {
		if got := f.Invoke(t, staff); got.ErrorMessage != "" {
			t.Fatal(got.ErrorMessage)
		}
	}
	elapsed := time.Since(start)
	warm := proxy.Counts()
	total := 0
	for op, c := range warm {
		total += c
		if op != "GetItem" {
			t.Errorf("warm invocations made %d %s requests; only version checks (GetItem) are expected", c, op)
		}
	}
	// One version check per started 10s interval, at most.
	if allowed := int(elapsed/(10*time.Second)) + 1; total > allowed {
		t.Errorf("%d warm invocations in %v made %d DynamoDB requests, want at most %d", n, elapsed.Round(time.Millisecond), total, allowed)
	}
	t.Logf("initial load: %v; %d warm invocations in %v (%v each through RIE): %d DynamoDB requests",
		initial, n, elapsed.Round(time.Millisecond), (elapsed / time.Duration(n)).Round(time.Microsecond), total)
}

func TestLambdaUserAssignments(t *testing.T) {
	client := dynamotest.Client(t)
	table := dynamotest.Table(t, client)
	store := dynamo.New(client, table)
	ctx := context.Background()
	if _, err := store.Apply(ctx, examplePolicyOf(t), dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	staff := readFile(t, staffEvent) // sub 22222222-…
	var ev struct {
		Request struct {
			UserAttributes map[string]string `json:"userAttributes"`
		} `json:"request"`
	}
	if err := json.Unmarshal(staff, &ev); err != nil {
		t.Fatal(err)
	}
	sub := ev.Request.UserAttributes["sub"]
	if _, err := store.Assign(ctx, sub, []string{"refunder"}, "e2e-test"); err != nil {
		t.Fatal(err)
	}
	proxy := dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	bin := lambdatest.Build(t, ".")
	with := lambdatest.Start(t, bin, dynamoEnv(table, proxy.URL, map[string]string{"PRETOKEN_USER_ASSIGNMENTS": "true"}))
	if scopes := strings.Join(scopesOf(t, with.Invoke(t, staff).Body), " "); !strings.Contains(scopes, "orders-api/orders:refund") {
		t.Errorf("assigned role missing: scopes %s", scopes)
	}
	proxy.Counts()
	with.Invoke(t, staff)
	if c := proxy.Counts(); c["Query"] != 1 || len(c) != 1 {
		t.Errorf("one token with assignments made %v, want exactly one Query of the user's items", c)
	}
	m2m := readFile(t, "../../examples/events/v3-client-credentials.json")
	with.Invoke(t, m2m)
	if c := proxy.Counts(); len(c) != 0 {
		t.Errorf("a machine token made %v DynamoDB requests, want none", c)
	}
	without := lambdatest.Start(t, bin, dynamoEnv(table, proxy.URL, nil))
	if scopes := strings.Join(scopesOf(t, without.Invoke(t, staff).Body), " "); strings.Contains(scopes, "orders:refund") {
		t.Errorf("assignments are off by default, but the token has %s", scopes)
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}
