package dynamo_test

// Fault injection against DynamoDB Local: a proxy that lets a request
// through and withholds the answer, or holds a request until after the
// caller's clean-up. Each test failed before the store learned to treat a
// timeout as an unknown outcome, to report damage, to keep change sets
// within the item limit, and to find leftovers.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// proxied is a fresh table, a store on it straight to DynamoDB Local, and a
// store that reaches it through a fault-playing proxy with short timeouts.
func proxied(t *testing.T) (direct, faulty *dynamo.Store, proxy *dynamotest.Proxy, client *dynamodb.Client, table string) {
	t.Helper()
	direct, client, table = newStore(t)
	proxy = dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	faulty = dynamo.New(dynamotest.NewClient(proxy.URL), table)
	faulty.CallTimeout = 500 * time.Millisecond
	return direct, faulty, proxy, client, table
}

func withEditor(t *testing.T, perm string) *permissions.Policy {
	t.Helper()
	p := examplePolicy(t)
	r := p.Roles["editor"]
	r.Permissions = append(r.Permissions, perm)
	p.Roles["editor"] = r
	return p
}

// TestSwitchWithLostAnswerStillApplies: the switch transaction reaches
// DynamoDB and lands, its answer is lost, the caller times out. Apply must
// not delete the generation that is now live.
func TestSwitchWithLostAnswerStillApplies(t *testing.T) {
	direct, faulty, proxy, _, _ := proxied(t)
	ctx := context.Background()
	if _, err := direct.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	next := withEditor(t, "orders:cancel")
	proxy.LoseAnswers("TransactWriteItems", 1)
	res, err := faulty.Apply(ctx, next, dynamo.ApplyOptions{Actor: "test"})
	if err != nil || !res.Applied || res.NewVersion != "2" {
		t.Fatalf("apply with a lost answer: %+v, %v; want it applied (the switch landed)", res, err)
	}
	got, v, err := direct.Load(ctx)
	if err != nil {
		t.Fatalf("load after the lost answer: %v", err)
	}
	if v != "2" || cmp.Diff(next, got, policyCmp) != "" {
		t.Errorf("stored policy at version %s differs from the applied one", v)
	}
	// And the next apply is no conflict.
	if _, err := direct.Apply(ctx, withEditor(t, "orders:archive"), dynamo.ApplyOptions{}); err != nil {
		t.Errorf("the apply after: %v", err)
	}
}

// TestDamageIsReportedAndRepaired: items missing from the live generation
// are damage, said as such with the way out; an apply of a valid file
// repairs the table.
func TestDamageIsReportedAndRepaired(t *testing.T) {
	s, client, table := newStore(t)
	s.InlineLimit = -1 // the inline copy would hide the missing items
	ctx := context.Background()
	p := examplePolicy(t)
	if _, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, it := range scan(t, client, table) {
		if sk := it["SK"].(*types.AttributeValueMemberS).Value; sk == "ROLE#editor" {
			if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: map[string]types.AttributeValue{"PK": it["PK"], "SK": it["SK"]}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, _, err := s.Load(ctx)
	if !errors.Is(err, dynamo.ErrDamaged) || !strings.Contains(err.Error(), "pretoken apply -f") {
		t.Fatalf("load of a damaged table: %v; want ErrDamaged saying how to recover", err)
	}
	res, err := s.Apply(ctx, p, dynamo.ApplyOptions{Actor: "repair"})
	if err != nil || !res.Applied || !res.Repaired {
		t.Fatalf("apply over the damage: %+v, %v; want a repair", res, err)
	}
	if got, _, err := s.Load(ctx); err != nil || cmp.Diff(p, got, policyCmp) != "" {
		t.Errorf("after the repair: %v", err)
	}
}

// TestLeftoversAreFound: a batch of an apply that failed lands after that
// apply's clean-up; the next apply, even one with no changes, removes it.
func TestLeftoversAreFound(t *testing.T) {
	direct, faulty, proxy, client, table := proxied(t)
	ctx := context.Background()
	if _, err := direct.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := keysOf(scan(t, client, table))
	release := proxy.Hold("BatchWriteItem", 1)
	if _, err := faulty.Apply(ctx, withEditor(t, "orders:cancel"), dynamo.ApplyOptions{}); err == nil {
		t.Fatal("apply with its items held back succeeded")
	}
	release() // the held batch lands now, after the failed apply cleaned up
	var late []string
	for _, k := range keysOf(scan(t, client, table)) {
		if strings.HasPrefix(k, "POLICY#") && !slices.Contains(before, k) {
			late = append(late, k)
		}
	}
	if len(late) == 0 {
		t.Fatal("the held batch did not land; the test proves nothing")
	}
	res, err := direct.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{})
	if err != nil || res.Applied {
		t.Fatalf("apply with no changes: %+v, %v", res, err)
	}
	if res.Leftovers != len(late) {
		t.Errorf("removed %d leftovers, want the %d that landed late", res.Leftovers, len(late))
	}
	for _, k := range keysOf(scan(t, client, table)) {
		if slices.Contains(late, k) {
			t.Errorf("leftover %s is still there", k)
		}
	}
}

// TestChangeSetsOfAnySize: the audit record stays within the item limit
// for 30,000 roles onto an empty table, 10,000 roles each changed once, and
// a role with 1,400 long permissions replaced whole; history shows every
// change; a role too large for one item is a validation error.
func TestChangeSetsOfAnySize(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 40,000 roles; runs in make test")
	}
	s, _, _ := newStore(t)
	s.CallTimeout = 30 * time.Second
	ctx := context.Background()
	roles := func(n int, perm string) *permissions.Policy {
		p := &permissions.Policy{Roles: map[string]permissions.Role{}}
		for i := range n {
			p.Roles[fmt.Sprintf("role-%05d", i)] = permissions.Role{Permissions: []string{perm + fmt.Sprint(i)}}
		}
		return p
	}
	start := time.Now()
	res, err := s.Apply(ctx, roles(30000, "a:"), dynamo.ApplyOptions{Actor: "big"})
	if err != nil || len(res.Changes) != 30000 {
		t.Fatalf("30,000 roles onto an empty table: %d changes, %v", len(res.Changes), err)
	}
	t.Logf("30,000 roles applied in %v", time.Since(start).Round(time.Millisecond))
	small := roles(10000, "b:")
	start = time.Now()
	if res, err = s.Apply(ctx, small, dynamo.ApplyOptions{Actor: "big"}); err != nil || len(res.Changes) != 30000 {
		t.Fatalf("10,000 roles changed (and 20,000 removed): %d changes, %v", len(res.Changes), err)
	}
	t.Logf("10,000 changed and 20,000 removed in %v", time.Since(start).Round(time.Millisecond))

	long := func(tag string) []string {
		out := make([]string, 1400)
		for i := range out {
			out[i] = fmt.Sprintf("%s:%04d:%s", tag, i, strings.Repeat("x", 240))
		}
		return out
	}
	one := &permissions.Policy{Roles: map[string]permissions.Role{"wide": {Permissions: long("a")}}}
	if _, err := s.Apply(ctx, one, dynamo.ApplyOptions{Actor: "wide"}); err != nil {
		t.Fatalf("a role with 1,400 long permissions: %v", err)
	}
	one.Roles["wide"] = permissions.Role{Permissions: long("b")}
	if _, err := s.Apply(ctx, one, dynamo.ApplyOptions{Actor: "wide"}); err != nil {
		t.Fatalf("replacing its permissions: %v", err)
	}
	hist, err := s.History(ctx, 4, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if hist[2].ChangeCount != 30000 || len(hist[2].Changes) != 30000 {
		t.Errorf("history of the 10,000-role change: count %d, %d changes listed; want 30,000", hist[2].ChangeCount, len(hist[2].Changes))
	}
	if all := strings.Join(hist[0].Changes, " "); !strings.Contains(all, "b:1399:") || !strings.Contains(all, "a:0000:") {
		t.Errorf("history of the wide change lost part of it (%d bytes)", len(all))
	}

	too := &permissions.Policy{Roles: map[string]permissions.Role{"huge": {Permissions: append(long("a"), long("c")[:300]...)}}}
	err = permissions.Validate(too)
	if err == nil || !strings.Contains(err.Error(), `role "huge" would take`) {
		t.Errorf("a role over the item limit: %v; want a validation error that names it", err)
	}
}
