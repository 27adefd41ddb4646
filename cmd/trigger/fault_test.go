package main

// In-process load and fault tests: the handler as main wires it (setup),
// reading DynamoDB Local through a proxy that counts requests and plays
// faults, with invocations under a Lambda-like deadline.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
	"github.com/pretoken/pretoken/trigger"
)

// lambdaTimeout is the deadline each invocation gets, as the function's
// timeout in serverless.yml; Cognito itself waits 5 s.
const lambdaTimeout = 3 * time.Second

// tagPolicy gives the staff group one role with five permissions tagged tag,
// put into the access token as scopes.
func tagPolicy(tag string) *permissions.Policy {
	var perms []string
	for i := range 5 {
		perms = append(perms, fmt.Sprintf("%s:perm%d", tag, i))
	}
	return &permissions.Policy{
		Roles:   map[string]permissions.Role{"worker": {Permissions: perms}},
		Groups:  map[string][]string{"staff": {"worker"}},
		Clients: map[string]permissions.ClientProfile{"default": {AccessToken: permissions.TokenProfile{Scopes: true}}},
	}
}

func staffEvent() []byte {
	return []byte(`{"version":"2","triggerSource":"TokenGeneration_Authentication","callerContext":{"clientId":"web"},` +
		`"request":{"userAttributes":{"sub":"s-1"},"groupConfiguration":{"groupsToOverride":["staff"]}}}`)
}

type rig struct {
	h     *trigger.Handler
	proxy *dynamotest.Proxy
	store *dynamo.Store
	api   *dynamodb.Client
	table string
	logs  *strings.Builder
	mu    sync.Mutex
}

// newRig applies p to a fresh table and sets up the handler as main does,
// reading the table through a proxy.
func newRig(t *testing.T, p *permissions.Policy, env map[string]string) *rig {
	t.Helper()
	client := dynamotest.Client(t)
	table := dynamotest.Table(t, client)
	store := dynamo.New(client, table)
	if _, err := store.Apply(context.Background(), p, dynamo.ApplyOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	proxy := dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	for k, v := range map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": proxy.URL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	vars := map[string]string{"PRETOKEN_TABLE": table}
	for k, v := range env {
		vars[k] = v
	}
	r := &rig{proxy: proxy, store: store, api: client, table: table, logs: &strings.Builder{}}
	h, err := setup(context.Background(), zerolog.New(lockedWriter{r}), envWith(vars))
	if err != nil {
		t.Fatal(err)
	}
	r.h = h
	r.invoke(t) // waits for the load that setup started in the background
	proxy.Counts()
	return r
}

// envWith is the process environment (the AWS settings the test set) with
// vars over it, as the function's getenv.
func envWith(vars map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
}

type lockedWriter struct{ r *rig }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.logs.Write(p)
}

// invoke answers the staff event under the Lambda deadline and returns the
// scopes added, the error, and how long it took.
func (r *rig) invoke(t *testing.T) ([]string, error, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lambdaTimeout)
	defer cancel()
	start := time.Now()
	out, err := r.h.Invoke(ctx, staffEvent())
	took := time.Since(start)
	if err != nil {
		return nil, err, took
	}
	var reply trigger.Reply
	if err := json.Unmarshal(out, &reply); err != nil {
		t.Fatal(err)
	}
	var scopes []string
	if d := reply.Response.ClaimsAndScopeOverrideDetails; d != nil && d.AccessTokenGeneration != nil {
		scopes = d.AccessTokenGeneration.ScopesToAdd
	}
	return scopes, nil, took
}

func scopesOf(p *permissions.Policy) []string { return p.Roles["worker"].Permissions }

// TestLoadPolicyChangesUnderConcurrentInvocations runs invocations from many
// goroutines while the policy flips between two versions: every answer is
// wholly one version, and each change costs exactly one reload.
func TestLoadPolicyChangesUnderConcurrentInvocations(t *testing.T) {
	a, b := tagPolicy("a"), tagPolicy("b")
	r := newRig(t, a, map[string]string{"PRETOKEN_REFRESH_INTERVAL": "25ms"})
	var stop atomic.Bool
	var total, sawA, sawB atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				got, err, _ := r.invoke(t)
				total.Add(1)
				switch {
				case err != nil:
					r.mu.Lock()
					for _, l := range strings.Split(r.logs.String(), "\n") {
						if strings.Contains(l, "internal") || strings.Contains(l, "panic") {
							t.Log(l)
						}
					}
					r.mu.Unlock()
					t.Errorf("invocation failed: %v", err)
					return
				case slices.Equal(got, scopesOf(a)):
					sawA.Add(1)
				case slices.Equal(got, scopesOf(b)):
					sawB.Add(1)
				default:
					t.Errorf("answer is neither version: %v", got)
					return
				}
			}
		}()
	}
	const changes = 6
	for i := range changes {
		time.Sleep(150 * time.Millisecond)
		next := b
		if i%2 == 1 {
			next = a
		}
		if _, err := r.store.Apply(context.Background(), next, dynamo.ApplyOptions{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		// Wait until the change is served before the next one: on a loaded
		// machine two applies could otherwise fall into one refresh interval
		// and rightly cost one reload between them.
		waitServed(t, r, scopesOf(next))
	}
	time.Sleep(150 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	counts := r.proxy.Counts()
	// A reload is one BatchGetItem of the version item and the compiled
	// snapshot's copy; a version check is one GetItem. Each
	// change is served before the next lands (waitServed), so each costs
	// exactly one reload: never two (the reload is shared), never none.
	if counts["BatchGetItem"] != changes || counts["Query"] != 0 {
		t.Errorf("%d reloads (BatchGetItem) for %d changes, want exactly one each; requests: %v", counts["BatchGetItem"], changes, counts)
	}
	if sawA.Load() == 0 || sawB.Load() == 0 {
		t.Errorf("saw version a %d times and b %d times; want both", sawA.Load(), sawB.Load())
	}
	t.Logf("%d invocations from 8 goroutines across %d changes: %v DynamoDB requests", total.Load(), changes, counts)
}

// waitServed invokes until the answer carries want, for at most 10 s.
func waitServed(t *testing.T, r *rig, want []string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got, err, _ := r.invoke(t); err == nil && slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("the change to %v was not served within 10 s", want)
}

// fault plays one fault and checks the trigger: every answer within the
// deadline; the last good policy while within the maximum staleness; then
// the safe refusal (failure mode closed); never anything but the good policy.
func fault(t *testing.T, start, stop func(r *rig)) {
	good := tagPolicy("good")
	r := newRig(t, good, map[string]string{"PRETOKEN_REFRESH_INTERVAL": "100ms", "PRETOKEN_MAX_STALENESS": "1500ms"})
	if got, err, _ := r.invoke(t); err != nil || !slices.Equal(got, scopesOf(good)) {
		t.Fatalf("before the fault: %v, %v", got, err)
	}
	verified := time.Now()
	start(r)
	var stale, refused int
	var slowest time.Duration
	for time.Since(verified) < 4*time.Second {
		got, err, took := r.invoke(t)
		slowest = max(slowest, took)
		if took >= lambdaTimeout {
			t.Fatalf("answered after %v, at or past the %v deadline", took, lambdaTimeout)
		}
		switch {
		case errors.Is(err, trigger.ErrUnavailable):
			if time.Since(verified) < time.Second {
				t.Errorf("refused %v after the last good check, inside the maximum staleness", time.Since(verified))
			}
			refused++
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		case slices.Equal(got, scopesOf(good)):
			if stale > 0 && refused > 0 {
				t.Errorf("served again after refusing, while the fault lasts")
			}
			stale++
		default:
			t.Fatalf("granted %v during the fault; only %v was ever valid", got, scopesOf(good))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stale == 0 || refused == 0 {
		t.Errorf("%d stale answers and %d refusals; want the stale snapshot first, then refusals", stale, refused)
	}
	r.checkStaleLines(t)
	if stop != nil {
		stop(r)
		deadline := time.Now().Add(3 * time.Second)
		for {
			if got, err, _ := r.invoke(t); err == nil && slices.Equal(got, scopesOf(good)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no recovery within 3s of the fault ending")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("%d stale answers, then %d refusals; slowest answer %v", stale, refused, slowest.Round(time.Millisecond))
}

func TestFaultDynamoDBUnreachable(t *testing.T) {
	fault(t, func(r *rig) { r.proxy.SetDown(true) }, func(r *rig) { r.proxy.SetDown(false) })
}

func TestFaultDynamoDBSlow(t *testing.T) {
	// Slower than any timeout: each version check gives up after 500 ms.
	fault(t, func(r *rig) { r.proxy.SetDelay(5 * time.Second) }, func(r *rig) { r.proxy.SetDelay(0) })
}

func TestFaultDynamoDBThrottling(t *testing.T) {
	fault(t, func(r *rig) { r.proxy.SetThrottle(true) }, func(r *rig) { r.proxy.SetThrottle(false) })
}

// TestFaultCorruptItem writes a new policy version whose items are corrupt
// in ways that, read leniently, would widen access: the whole version is
// refused, so nobody gains anything.
func TestFaultCorruptItem(t *testing.T) {
	corruptions := map[string]map[string]types.AttributeValue{
		"permission that is not a scope": {"name": &types.AttributeValueMemberS{Value: "worker"},
			"permissions": &types.AttributeValueMemberL{Value: []types.AttributeValue{
				&types.AttributeValueMemberS{Value: "good:perm0"}, &types.AttributeValueMemberS{Value: "admin everything"}}}},
		"permissions of the wrong type": {"name": &types.AttributeValueMemberS{Value: "worker"},
			"permissions": &types.AttributeValueMemberN{Value: "42"}},
		"role whose name disagrees with its key": {"name": &types.AttributeValueMemberS{Value: "admin"},
			"permissions": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "admin:all"}}}},
	}
	for name, item := range corruptions {
		t.Run(name, func(t *testing.T) {
			fault(t, func(r *rig) { corruptRole(t, r, item) }, nil)
		})
	}
}

// TestFaultCorruptSnapshot writes a new policy version whose compiled
// snapshot has a byte changed: the version is refused, never misread.
func TestFaultCorruptSnapshot(t *testing.T) {
	fault(t, func(r *rig) {
		item := map[string]types.AttributeValue{}
		corruptItem(t, r, "SNAPSHOT#000", item, func(old map[string]types.AttributeValue) {
			d := slices.Clone(old["data"].(*types.AttributeValueMemberB).Value)
			d[len(d)/2] ^= 0x10
			maps.Copy(item, old)
			item["data"] = &types.AttributeValueMemberB{Value: d}
		}, "")
	}, nil)
}

// corruptRole overwrites the worker role's item in the current generation
// and moves the version, as a buggy or malicious writer might. The
// version item then names no compiled snapshot, as a table that an older
// pretoken applied, so the trigger reads the corrupt item.
func corruptRole(t *testing.T, r *rig, item map[string]types.AttributeValue) {
	corruptItem(t, r, "ROLE#worker", item, nil, " REMOVE snapshotChunks, snapshotFormat")
}

// corruptItem writes item as sk of the current generation (after edit, if
// given, has seen the item there) and moves the version, with more
// (an update expression clause) done to the version item too.
func corruptItem(t *testing.T, r *rig, sk string, item map[string]types.AttributeValue, edit func(old map[string]types.AttributeValue), more string) {
	t.Helper()
	ctx := context.Background()
	v, err := r.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.table, ConsistentRead: new(true), Key: map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "META"}, "SK": &types.AttributeValueMemberS{Value: "VERSION"}}})
	if err != nil {
		t.Fatal(err)
	}
	gen := v.Item["generation"].(*types.AttributeValueMemberS).Value
	if edit != nil {
		old, err := r.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.table, ConsistentRead: new(true), Key: map[string]types.AttributeValue{
			"PK": &types.AttributeValueMemberS{Value: "POLICY#" + gen}, "SK": &types.AttributeValueMemberS{Value: sk}}})
		if err != nil || old.Item == nil {
			t.Fatalf("read %s: %v", sk, err)
		}
		edit(old.Item)
	}
	item["PK"] = &types.AttributeValueMemberS{Value: "POLICY#" + gen}
	item["SK"] = &types.AttributeValueMemberS{Value: sk}
	if _, err := r.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &r.table, Item: item}); err != nil {
		t.Fatal(err)
	}
	_, err = r.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &r.table, Key: map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "META"}, "SK": &types.AttributeValueMemberS{Value: "VERSION"}},
		UpdateExpression:          new("SET #v = #v + :one" + more),
		ExpressionAttributeNames:  map[string]string{"#v": "version"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFaultDynamoDBHangs(t *testing.T) {
	// Connections accepted, never answered.
	fault(t, func(r *rig) { r.proxy.SetHang(true) }, func(r *rig) { r.proxy.SetHang(false) })
}

// TestFaultDynamoDBHangsFromColdStart: a container whose store takes
// connections and never answers, with no snapshot yet. The first token is
// answered well within Cognito's 5 s, init included; after that, at most one
// invocation per retry interval (1 s with no snapshot) waits on the store,
// and every other one is answered by the failure mode within 50 ms.
func TestFaultDynamoDBHangsFromColdStart(t *testing.T) {
	client := dynamotest.Client(t)
	table := dynamotest.Table(t, client)
	if _, err := dynamo.New(client, table).Apply(context.Background(), tagPolicy("good"), dynamo.ApplyOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	proxy := dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	proxy.SetHang(true)
	for k, v := range map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": proxy.URL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	r := &rig{proxy: proxy, table: table, logs: &strings.Builder{}}
	started := time.Now()
	h, err := setup(context.Background(), zerolog.New(lockedWriter{r}), envWith(map[string]string{"PRETOKEN_TABLE": table}))
	if err != nil {
		t.Fatal(err)
	}
	r.h = h
	if _, err, _ := r.invoke(t); !errors.Is(err, trigger.ErrUnavailable) {
		t.Fatalf("first token: %v, want the safe refusal", err)
	}
	first := time.Since(started)
	if first > 4*time.Second {
		t.Errorf("first token answered %v after start, init included; want within 4 s (Cognito waits 5 s)", first)
	}

	const window = 3 * time.Second
	var slow, fast atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(begin) < window {
				if _, err, took := r.invoke(t); !errors.Is(err, trigger.ErrUnavailable) {
					t.Errorf("answered %v, want the safe refusal", err)
					return
				} else if took > 50*time.Millisecond {
					slow.Add(1)
				} else {
					fast.Add(1)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	// One waiting invocation per started retry interval, at most.
	if allowed := int64(window/time.Second) + 1; slow.Load() > allowed {
		t.Errorf("%d invocations waited on the hanging store in %v (and %d did not); want at most %d", slow.Load(), window, fast.Load(), allowed)
	}
	t.Logf("first token %v after start; then %d invocations waited, %d answered within 50 ms", first.Round(time.Millisecond), slow.Load(), fast.Load())
}

// checkStaleLines fails the test unless every log line served stale says
// why (problem) and for how long (stale_seconds), and there is one.
func (r *rig) checkStaleLines(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	logs := r.logs.String()
	r.mu.Unlock()
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["cache"] != "stale" {
			continue
		}
		n++
		if p, _ := m["problem"].(string); p == "" || m["stale_seconds"] == nil {
			t.Errorf("a stale line without its reason or age: %s", l)
			return
		}
	}
	if n == 0 {
		t.Error("no line served stale")
	}
}
