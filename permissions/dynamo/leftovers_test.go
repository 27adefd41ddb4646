package dynamo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// orphanParts are the audit part items whose record does not exist.
func orphanParts(t *testing.T, client *dynamodb.Client, table string) []string {
	t.Helper()
	items := scan(t, client, table)
	records := map[string]bool{}
	for _, k := range keysOf(items) {
		if sk, ok := strings.CutPrefix(k, "AUDIT "); ok {
			records[sk] = true
		}
	}
	var out []string
	for _, k := range keysOf(items) {
		if id, ok := strings.CutPrefix(k, "AUDIT#"); ok && !records[strings.Fields(id)[0]] {
			out = append(out, k)
		}
	}
	return out
}

// TestAbandonedAuditPartsSwept: an apply with a change list long enough
// for audit parts loses its switch; its parts go with its items. Before,
// nothing removed them (24 after 12 conflicting applies).
func TestAbandonedAuditPartsSwept(t *testing.T) {
	direct, faulty, proxy, client, table := proxied(t)
	ctx := context.Background()
	big := &permissions.Policy{Roles: map[string]permissions.Role{}}
	for i := range 1500 {
		// long names: the change list outgrows one record, so the apply writes audit parts
		big.Roles[fmt.Sprintf("role-%04d-%s", i, strings.Repeat("x", 100))] = permissions.Role{Permissions: []string{fmt.Sprintf("a:%04d", i)}}
	}
	patient(direct, faulty) // the switch is held however long; the clean-up's writes need their time under load
	release := proxy.Hold("TransactWriteItems", 1)
	// The parts land: only the switch is held.
	_, err := faulty.Apply(ctx, big, dynamo.ApplyOptions{})
	if err == nil {
		t.Fatal("apply with its switch held succeeded")
	}
	t.Logf("apply: %v", err)
	release()
	if got := orphanParts(t, client, table); len(got) > 0 {
		t.Errorf("%d audit parts of the abandoned apply remain: %v", len(got), got[:1])
	}
	if left, err := direct.Leftovers(ctx); err != nil || len(left) > 0 {
		t.Errorf("%d leftovers after the abandoned apply (%v), the first %v", len(left), err, left[:min(1, len(left))])
	}
	// The control: the same apply, switched, keeps its parts.
	if _, err := direct.Apply(ctx, big, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	parts := 0
	for _, k := range keysOf(scan(t, client, table)) {
		if strings.HasPrefix(k, "AUDIT#") {
			parts++
		}
	}
	if parts == 0 {
		t.Error("the apply wrote no audit parts: the test proves nothing")
	}
	if got := orphanParts(t, client, table); len(got) > 0 {
		t.Errorf("parts without a record after a good apply: %v", got)
	}
}

// TestLateWriteAfterTombstoneExpired: a write of an abandoned apply lands
// after its tombstone's grace: the marker is kept one grace period longer,
// so the next apply still finds it. Before, the marker was gone and the
// item stayed forever.
func TestLateWriteAfterTombstoneExpired(t *testing.T) {
	s, client, table := newStore(t)
	patient(s)
	ctx := context.Background()
	now := time.Now()
	const grace = time.Minute
	dynamo.SetClock(s, func() time.Time { return now }, grace)
	p := examplePolicy(t)
	if _, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	gen, err := dynamo.WriteGeneration(ctx, s, withEditor(t, "orders:cancel"))
	if err != nil {
		t.Fatal(err)
	}
	if err := dynamo.Abandon(ctx, s, gen); err != nil {
		t.Fatal(err)
	}
	noChange := func() int {
		t.Helper()
		res, err := s.Apply(ctx, p, dynamo.ApplyOptions{})
		if err != nil || res.Applied {
			t.Fatalf("no-change apply: %+v, %v", res, err)
		}
		return res.Leftovers
	}
	if n := noChange(); n == 0 {
		t.Fatal("the abandoned generation's items were not removed")
	}
	now = now.Add(grace + time.Second)
	noChange() // the tombstone is past its grace, and empty
	late := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "POLICY#" + gen},
		"SK": &types.AttributeValueMemberS{Value: "ROLE#late"}, "name": &types.AttributeValueMemberS{Value: "late"}}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: late}); err != nil {
		t.Fatal(err)
	}
	left, err := s.Leftovers(ctx)
	if err != nil || len(left) != 1 || left[0].SK != "ROLE#late" || left[0].Bytes == 0 {
		t.Errorf("check lists %+v, %v; want the late item with its size", left, err)
	}
	if n := noChange(); n != 1 {
		t.Errorf("removed %d leftovers; want the late write", n)
	}
	now = now.Add(2*grace + time.Second)
	noChange()
	noChange()
	for _, k := range keysOf(scan(t, client, table)) {
		if strings.Contains(k, gen) {
			t.Errorf("%s is still there two grace periods on", k)
		}
	}
}

// TestLeftoversChangeNothing: the check after a killed apply lists its
// items with their sizes and writes nothing.
func TestLeftoversChangeNothing(t *testing.T) {
	s, client, table := newStore(t)
	patient(s)
	ctx := context.Background()
	if _, err := s.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	gen, err := dynamo.WriteGeneration(ctx, s, withEditor(t, "orders:cancel"))
	if err != nil {
		t.Fatal(err)
	}
	if left, err := s.Leftovers(ctx); err != nil || len(left) != 0 {
		t.Fatalf("an apply in progress is no leftover: %v, %v", left, err)
	}
	dynamo.SetClock(s, func() time.Time { return time.Now().Add(time.Hour) }, 0)
	before := scan(t, client, table)
	left, err := s.Leftovers(ctx)
	if err != nil || len(left) == 0 {
		t.Fatalf("leftovers of an apply killed an hour ago: %v, %v", left, err)
	}
	for _, l := range left {
		if !strings.Contains(l.PK, gen) || l.Bytes <= 0 {
			t.Errorf("leftover %+v: want an item of %s with its size", l, gen)
		}
	}
	if diff := cmp.Diff(keysOf(before), keysOf(scan(t, client, table))); diff != "" {
		t.Errorf("the check changed the table: %s", diff)
	}
}
