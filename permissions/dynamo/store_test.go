package dynamo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

func examplePolicy(t testing.TB) *permissions.Policy {
	t.Helper()
	p, err := permissions.ReadFile("../../examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newStore(t testing.TB) (*dynamo.Store, *dynamodb.Client, string) {
	t.Helper()
	client := dynamotest.Client(t)
	table := dynamotest.Table(t, client)
	return dynamo.New(client, table), client, table
}

// scan returns every item of the table, for before/after comparisons.
func scan(t testing.TB, client *dynamodb.Client, table string) []map[string]types.AttributeValue {
	t.Helper()
	var items []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: &table, ConsistentRead: new(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, page.Items...)
	}
	return items
}

func keysOf(items []map[string]types.AttributeValue) []string {
	var keys []string
	for _, it := range items {
		keys = append(keys, it["PK"].(*types.AttributeValueMemberS).Value+" "+it["SK"].(*types.AttributeValueMemberS).Value)
	}
	return keys
}

var policyCmp = cmp.Options{cmpopts.EquateEmpty()}

func TestEmptyTableLoadsEmptyPolicy(t *testing.T) {
	s, _, _ := newStore(t)
	p, v, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v != "0" || cmp.Diff(&permissions.Policy{}, p, policyCmp) != "" {
		t.Errorf("fresh table: version %q, policy %+v; want 0 and empty", v, p)
	}
}

func TestApplyLoadRoundTrip(t *testing.T) {
	s, client, table := newStore(t)
	ctx := context.Background()
	want := examplePolicy(t)
	res, err := s.Apply(ctx, want, dynamo.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Applied || res.OldVersion != "0" || res.NewVersion != "1" || len(res.Changes) == 0 {
		t.Errorf("apply result = %+v", res)
	}
	got, v, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, policyCmp); diff != "" {
		t.Errorf("loaded policy differs from the file (-file +loaded):\n%s", diff)
	}
	if v != "1" {
		t.Errorf("version = %q, want 1", v)
	}
	if v2, err := s.Version(ctx); err != nil || v2 != "1" {
		t.Errorf("Version = %q, %v", v2, err)
	}

	// The same policy again changes nothing, not even the version.
	before := scan(t, client, table)
	res, err = s.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{})
	if err != nil || res.Applied || res.NewVersion != "1" || len(res.Changes) != 0 {
		t.Errorf("second apply = %+v, %v; want no changes", res, err)
	}
	if diff := cmp.Diff(before, scan(t, client, table), cmpopts.IgnoreUnexported(types.AttributeValueMemberS{}, types.AttributeValueMemberN{},
		types.AttributeValueMemberL{}, types.AttributeValueMemberM{}, types.AttributeValueMemberBOOL{}, types.AttributeValueMemberB{})); diff != "" {
		t.Errorf("a no-op apply wrote:\n%s", diff)
	}

	// A change: one role gone, one permission added; old generation cleaned up.
	next := examplePolicy(t)
	delete(next.Roles, "reporter")
	delete(next.Machines, "7m2mclient")
	r := next.Roles["viewer"]
	r.Permissions = append(r.Permissions, "orders:export")
	next.Roles["viewer"] = r
	res, err = s.Apply(ctx, next, dynamo.ApplyOptions{ExpectVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, c := range res.Changes {
		changes = append(changes, c.String())
	}
	wantChanges := []string{"- role reporter", "~ role viewer: +permissions orders:export", "- machine 7m2mclient"}
	if diff := cmp.Diff(wantChanges, changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	got, _, err = s.Load(ctx)
	if err != nil || cmp.Diff(next, got, policyCmp) != "" {
		t.Errorf("after change: %v\n%s", err, cmp.Diff(next, got, policyCmp))
	}
	gens := map[string]bool{}
	for _, k := range keysOf(scan(t, client, table)) {
		if strings.HasPrefix(k, "POLICY#") {
			gens[strings.Fields(k)[0]] = true
		}
	}
	if len(gens) != 1 {
		t.Errorf("policy generations left in the table: %v, want only the current one", gens)
	}
}

func TestApplyInvalidWritesNothing(t *testing.T) {
	s, client, table := newStore(t)
	ctx := context.Background()
	if _, err := s.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := keysOf(scan(t, client, table))
	bad := examplePolicy(t)
	bad.Groups["staff"] = []string{"ghost"}
	_, err := s.Apply(ctx, bad, dynamo.ApplyOptions{})
	var verr *permissions.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("apply invalid = %v, want a validation error", err)
	}
	if diff := cmp.Diff(before, keysOf(scan(t, client, table))); diff != "" {
		t.Errorf("an invalid apply changed the table:\n%s", diff)
	}
	if _, err := s.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{ExpectVersion: "7"}); !errors.Is(err, dynamo.ErrConflict) {
		t.Errorf("apply expecting version 7 over 1: %v, want ErrConflict", err)
	}
}

// pausingAPI blocks the first TransactWriteItems (the switch to a new
// version) until released, so another apply can run in between.
type pausingAPI struct {
	dynamo.API
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func (p *pausingAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	p.once.Do(func() {
		close(p.reached)
		<-p.release
	})
	return p.API.TransactWriteItems(ctx, in, opts...)
}

func TestConcurrentApplyConflict(t *testing.T) {
	s, client, table := newStore(t)
	ctx := context.Background()
	paused := &pausingAPI{API: client, reached: make(chan struct{}), release: make(chan struct{})}
	slow := dynamo.New(paused, table)

	loser := examplePolicy(t)
	loser.Defaults.Roles = []string{"admin"}
	errc := make(chan error, 1)
	go func() {
		_, err := slow.Apply(ctx, loser, dynamo.ApplyOptions{})
		errc <- err
	}()
	select {
	case <-paused.reached: // the slow apply has written its items and is about to switch
	case err := <-errc:
		t.Fatalf("the slow apply ended before its switch: %v", err)
	}

	winner := examplePolicy(t)
	if _, err := s.Apply(ctx, winner, dynamo.ApplyOptions{}); err != nil {
		t.Fatalf("winner: %v", err)
	}
	close(paused.release)
	if err := <-errc; !errors.Is(err, dynamo.ErrConflict) {
		t.Fatalf("loser: %v, want ErrConflict", err)
	}
	got, v, err := s.Load(ctx)
	if err != nil || v != "1" {
		t.Fatalf("load: %v, version %s", err, v)
	}
	if diff := cmp.Diff(winner, got, policyCmp); diff != "" {
		t.Errorf("table is not as the winner left it:\n%s", diff)
	}
	var markers, gens []string
	for _, it := range scan(t, client, table) {
		k := keysOf([]map[string]types.AttributeValue{it})[0]
		_, tombstone := it["droppedAt"] // the loser's marker stays a while, its items gone
		switch {
		case strings.HasPrefix(k, "META GEN#") && !tombstone:
			markers = append(markers, k)
		case strings.HasPrefix(k, "POLICY#"):
			gens = append(gens, strings.Fields(k)[0])
		}
	}
	if len(markers) != 1 {
		t.Errorf("live generation markers %v, want only the winner's", markers)
	}
	for _, g := range gens {
		if g != gens[0] {
			t.Errorf("the loser's items are still in the table: %v", g)
			break
		}
	}
}

func TestRacingApplies(t *testing.T) {
	s, _, table := newStore(t)
	client := dynamotest.Client(t)
	ctx := context.Background()
	const n = 4
	policies := make([]*permissions.Policy, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		policies[i] = examplePolicy(t)
		policies[i].Limits.MaxTokenBytes = 1000 + i
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = dynamo.New(client, table).Apply(ctx, policies[i], dynamo.ApplyOptions{ExpectVersion: "0"})
		}()
	}
	wg.Wait()
	winners := 0
	var won *permissions.Policy
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			won = policies[i]
		case !errors.Is(err, dynamo.ErrConflict):
			t.Errorf("apply %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d applies won from version 0, want exactly 1", winners)
	}
	got, v, err := s.Load(ctx)
	if err != nil || v != "1" || cmp.Diff(won, got, policyCmp) != "" {
		t.Errorf("after the race: version %s, %v, diff:\n%s", v, err, cmp.Diff(won, got, policyCmp))
	}
}

func bigPolicy(n int, tag string) *permissions.Policy {
	p := &permissions.Policy{Roles: map[string]permissions.Role{}, Groups: map[string][]string{}}
	for i := range n {
		name := fmt.Sprintf("role%03d", i)
		p.Roles[name] = permissions.Role{Description: tag, Permissions: []string{fmt.Sprintf("%s:res%d", tag, i)}}
		if i%5 == 0 {
			p.Groups[fmt.Sprintf("group%03d", i)] = []string{name}
		}
	}
	return p
}

// TestLargePolicyNeverSeenHalfApplied applies 500-role policies (about 600
// items, far more than one transaction holds) while loaders run: every load
// must be exactly one of the policies, whether loaders read the generation's
// items or the inline copy.
func TestLargePolicyNeverSeenHalfApplied(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inline int
	}{{"items", -1}, {"inline", 1 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			s, client, table := newStore(t)
			s.InlineLimit = tc.inline
			ctx := context.Background()
			a, b := bigPolicy(500, "a"), bigPolicy(500, "b")
			if _, err := s.Apply(ctx, a, dynamo.ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var loads, bad int
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					loader := dynamo.New(client, table)
					for {
						select {
						case <-stop:
							return
						default:
						}
						got, _, err := loader.Load(ctx)
						mu.Lock()
						loads++
						if err != nil {
							t.Errorf("load during apply: %v", err)
							bad++
						} else if cmp.Diff(a, got, policyCmp) != "" && cmp.Diff(b, got, policyCmp) != "" {
							bad++
						}
						mu.Unlock()
					}
				}()
			}
			for i := range 4 {
				next := b
				if i%2 == 1 {
					next = a
				}
				if _, err := s.Apply(ctx, next, dynamo.ApplyOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			close(stop)
			wg.Wait()
			if bad > 0 {
				t.Errorf("%d of %d loads saw a policy that was neither version", bad, loads)
			}
			if loads < 4 {
				t.Errorf("only %d loads ran during the applies", loads)
			}
			t.Logf("%d loads during 4 applies of %d-role policies", loads, len(a.Roles))
		})
	}
}

// countingAPI counts the requests a store makes.
type countingAPI struct {
	dynamo.API
	mu sync.Mutex
	n  map[string]int
}

func (c *countingAPI) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[op]++
}

func (c *countingAPI) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	c.add("BatchGetItem")
	return c.API.BatchGetItem(ctx, in, o...)
}

func (c *countingAPI) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.add("Query")
	return c.API.Query(ctx, in, o...)
}

// TestInlineLoadIsOneRequest checks that a small policy loads in one
// request, a large one from its items, and that an inline copy which does
// not match the version (tampering) is not trusted.
func TestInlineLoadIsOneRequest(t *testing.T) {
	s, client, table := newStore(t)
	ctx := context.Background()
	p := examplePolicy(t)
	if _, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	api := &countingAPI{API: client, n: map[string]int{}}
	got, _, err := dynamo.New(api, table).Load(ctx)
	if err != nil || cmp.Diff(p, got, policyCmp) != "" {
		t.Fatalf("inline load: %v\n%s", err, cmp.Diff(p, got, policyCmp))
	}
	if diff := cmp.Diff(map[string]int{"BatchGetItem": 1}, api.n); diff != "" {
		t.Errorf("requests for a small policy (-want +got):\n%s", diff)
	}

	small := dynamo.New(client, table)
	small.InlineLimit = 100 // the example does not fit
	next := examplePolicy(t)
	delete(next.Groups, "support")
	if _, err := small.Apply(ctx, next, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	api.n = map[string]int{}
	got, v, err := dynamo.New(api, table).Load(ctx)
	if err != nil || v != "2" || cmp.Diff(next, got, policyCmp) != "" {
		t.Fatalf("items load: %v, version %s", err, v)
	}
	if diff := cmp.Diff(map[string]int{"BatchGetItem": 1, "Query": 1}, api.n); diff != "" {
		t.Errorf("requests for a large policy (-want +got):\n%s", diff)
	}

	// Put a widening inline copy under the right version: it is served as
	// written, so it must at least be valid, and a mismatched one is ignored.
	bogus, _ := json.Marshal(map[string]any{"roles": map[string]any{"x": map[string]any{"permissions": []string{"all:all"}}},
		"defaults": map[string]any{"roles": []string{"x"}}})
	item := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "META"}, "SK": &types.AttributeValueMemberS{Value: "POLICY"},
		"version": &types.AttributeValueMemberN{Value: "1"}, "policy": &types.AttributeValueMemberB{Value: bogus}}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item}); err != nil {
		t.Fatal(err)
	}
	got, _, err = s.Load(ctx)
	if err != nil || cmp.Diff(next, got, policyCmp) != "" {
		t.Errorf("an inline copy of another version was used: %v\n%s", err, cmp.Diff(next, got, policyCmp))
	}
}

func TestNotMigrated(t *testing.T) {
	client := dynamotest.Client(t)
	s := dynamo.New(client, dynamotest.NewName("pretoken-missing"))
	if _, _, err := s.Load(context.Background()); err == nil {
		t.Error("load from a missing table succeeded")
	}
}
