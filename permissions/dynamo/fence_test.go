package dynamo_test

// The fence: a switch lands only while its apply still owns the
// generation, so no clean-up ever deletes what the version item names,
// however late a request arrives. Each test failed before the switch
// carried a ConditionCheck on the generation's marker.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// patient gives the stores' calls time for a loaded machine: the faults
// under test are held or lost requests, not slow ones.
func patient(stores ...*dynamo.Store) {
	for _, s := range stores {
		s.CallTimeout = 3 * time.Second
	}
}

// servable fails the test unless the table loads, whole, as want.
func servable(t *testing.T, s *dynamo.Store, want *permissions.Policy, wantVersion string) {
	t.Helper()
	got, v, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("the table is not servable: %v", err)
	}
	if v != wantVersion || cmp.Diff(want, got, policyCmp) != "" {
		t.Fatalf("the table serves version %s; want version %s with the policy applied there", v, wantVersion)
	}
}

// TestHeldSwitchNeverLandsLate: the switch is held by the network past the
// apply's deadline and delivered after the apply gave up. Before the fence
// the apply deleted the new generation, then the switch landed and the
// version item named a generation without items: the table was damaged.
func TestHeldSwitchNeverLandsLate(t *testing.T) {
	for _, inline := range []int{-1, 256 << 10} { // without the inline copy, nothing hides a damaged table
		direct, faulty, proxy, _, _ := proxied(t)
		patient(direct, faulty)
		direct.InlineLimit, faulty.InlineLimit = inline, inline
		ctx := context.Background()
		first := examplePolicy(t)
		if _, err := direct.Apply(ctx, first, dynamo.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		release := proxy.Hold("TransactWriteItems", 1)
		res, err := faulty.Apply(ctx, withEditor(t, "orders:cancel"), dynamo.ApplyOptions{Actor: "held"})
		if err == nil || res.Applied {
			t.Fatalf("apply whose switch is held: %+v, %v; want it to fail", res, err)
		}
		if errors.Is(err, dynamo.ErrUnknownOutcome) || !strings.Contains(err.Error(), "nothing was applied") {
			t.Errorf("apply whose switch is held: %v; want a known failure (the generation was abandoned)", err)
		}
		release() // the switch lands now, after the apply gave up and cleaned up
		servable(t, direct, first, "1")
		// And the next apply goes ahead.
		next := withEditor(t, "orders:archive")
		if _, err := direct.Apply(ctx, next, dynamo.ApplyOptions{}); err != nil {
			t.Fatalf("the apply after: %v", err)
		}
		servable(t, direct, next, "2")
	}
}

// TestLostSwitchAnswerServable: the switch lands and its answer is lost;
// apply settles it (the abandon fails on the live generation) and reports
// success, and the table serves the new policy without the inline copy.
func TestLostSwitchAnswerServable(t *testing.T) {
	direct, faulty, proxy, _, _ := proxied(t)
	patient(direct, faulty)
	direct.InlineLimit, faulty.InlineLimit = -1, -1
	ctx := context.Background()
	if _, err := direct.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	next := withEditor(t, "orders:cancel")
	proxy.LoseAnswers("TransactWriteItems", 1)
	res, err := faulty.Apply(ctx, next, dynamo.ApplyOptions{})
	if err != nil || !res.Applied {
		t.Fatalf("apply with a lost answer: %+v, %v; want it applied", res, err)
	}
	servable(t, direct, next, "2")
}

// TestNoSwitchAfterAbandon: an apply killed between the abandon and the
// delete leaves a dropped generation with all its items: its switch, sent
// late, fails, and the next apply (even with no changes) removes the items.
// A pending generation is never swept, and the live one never abandoned.
func TestNoSwitchAfterAbandon(t *testing.T) {
	s, _, _ := newStore(t)
	patient(s)
	s.InlineLimit = -1
	ctx := context.Background()
	first := examplePolicy(t)
	if _, err := s.Apply(ctx, first, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	next := withEditor(t, "orders:cancel")
	gen, err := dynamo.WriteGeneration(ctx, s, next)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dynamo.Sweep(ctx, s, gen, true); err == nil {
		t.Error("swept a generation whose marker is pending")
	}
	if err := dynamo.Abandon(ctx, s, gen); err != nil {
		t.Fatal(err)
	}
	// killed here: the items are all there, the marker is dropped
	if err := dynamo.Switch(ctx, s, next, gen); !errors.Is(err, dynamo.ErrConflict) {
		t.Fatalf("a switch to an abandoned generation: %v; want a conflict", err)
	}
	servable(t, s, first, "1")
	res, err := s.Apply(ctx, first, dynamo.ApplyOptions{})
	if err != nil || res.Applied || res.Leftovers == 0 {
		t.Fatalf("no-change apply after the kill: %+v, %v; want the abandoned items removed", res, err)
	}
	live, err := dynamo.Live(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := dynamo.Abandon(ctx, s, live); !errors.Is(err, dynamo.ErrLive) {
		t.Errorf("abandoning the live generation: %v; want it refused", err)
	}
	servable(t, s, first, "1")
}

// TestKilledApplyFoundByNoChangeApply: an apply killed before its switch
// leaves a pending generation numbered above the live one; a no-change
// apply leaves it while its apply may still run, and removes it once that
// apply is surely gone.
func TestKilledApplyFoundByNoChangeApply(t *testing.T) {
	s, client, table := newStore(t)
	patient(s)
	ctx := context.Background()
	first := examplePolicy(t)
	if _, err := s.Apply(ctx, first, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	gen, err := dynamo.WriteGeneration(ctx, s, withEditor(t, "orders:cancel"))
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		n := 0
		for _, k := range keysOf(scan(t, client, table)) {
			if strings.HasPrefix(k, "POLICY#"+gen+" ") {
				n++
			}
		}
		return n
	}
	if _, err := s.Apply(ctx, first, dynamo.ApplyOptions{}); err != nil || count() == 0 {
		t.Fatalf("a no-change apply removed a generation whose apply may still run (%v)", err)
	}
	dynamo.SetClock(s, func() time.Time { return time.Now().Add(time.Hour) }, 0)
	if _, err := s.Apply(ctx, first, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Errorf("%d items of the killed apply survived a no-change apply an hour later", n)
	}
	servable(t, s, first, "1")
}

// TestAssignmentWithLostAnswer: an assignment (or tenant use) whose answer
// is lost is sent again under the same ClientRequestToken: it lands once,
// reports success, and writes one audit record; with both answers lost the
// error is ErrUnknownOutcome. A repeated tenant use writes nothing. Before,
// a lost answer failed the command although the write landed, and every
// tenant use wrote another audit record.
func TestAssignmentWithLostAnswer(t *testing.T) {
	direct, faulty, proxy, _, _ := proxied(t)
	patient(direct, faulty)
	ctx := context.Background()
	if _, err := direct.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	const sub = "11111111-1111-4111-8111-111111111111"
	records := func(action string) int {
		hist, err := direct.History(ctx, 0, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range hist {
			if r.Action == action {
				n++
			}
		}
		return n
	}
	proxy.LoseAnswers("TransactWriteItems", 1)
	res, err := faulty.Assign(ctx, sub, []string{"refunder"}, "test")
	if err != nil || !res.Changed {
		t.Fatalf("assign with a lost answer: %+v, %v; want it done", res, err)
	}
	if n := records("assign"); n != 1 {
		t.Errorf("%d assign records; want 1", n)
	}
	if _, err := direct.AssignInTenant(ctx, sub, "acme", []string{"viewer"}, "test"); err != nil {
		t.Fatal(err)
	}
	proxy.LoseAnswers("TransactWriteItems", 1)
	if err := faulty.SetActiveTenant(ctx, sub, "acme", "test"); err != nil {
		t.Fatalf("tenant use with a lost answer: %v", err)
	}
	if err := faulty.SetActiveTenant(ctx, sub, "acme", "test"); err != nil {
		t.Fatalf("tenant use again: %v", err)
	}
	if n := records("use tenant"); n != 1 {
		t.Errorf("%d tenant use records; want 1", n)
	}
	proxy.LoseAnswers("TransactWriteItems", 2)
	if _, err := faulty.Unassign(ctx, sub, []string{"refunder"}, "test"); !errors.Is(err, dynamo.ErrUnknownOutcome) {
		t.Errorf("unassign with both answers lost: %v; want ErrUnknownOutcome", err)
	}
}

// TestSwitchConflictSaysWhatHappened: a switch refused for a transaction
// conflict, with the version unmoved, says "conflict, retry", not that
// another apply won; a lost answer to the audit parts' write is reported
// as that, not as the policy items'.
func TestSwitchConflictSaysWhatHappened(t *testing.T) {
	direct, faulty, proxy, _, _ := proxied(t)
	patient(direct, faulty)
	ctx := context.Background()
	if _, err := direct.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	proxy.Refuse("TransactWriteItems", `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",`+
		`"Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, None, TransactionConflict, None]",`+
		`"CancellationReasons":[{"Code":"None"},{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"}]}`)
	_, err := faulty.Apply(ctx, withEditor(t, "orders:cancel"), dynamo.ApplyOptions{})
	if !errors.Is(err, dynamo.ErrConflict) || !strings.Contains(err.Error(), "conflict, retry") || strings.Contains(err.Error(), "another apply") {
		t.Errorf("a transaction conflict with the version unmoved: %v; want conflict, retry", err)
	}

	big := examplePolicy(t)
	for i := range 1200 {
		// long names: the change list outgrows one record, so the apply writes audit parts
		big.Roles[fmt.Sprintf("bulk-%04d-%s", i, strings.Repeat("x", 100))] = permissions.Role{Permissions: []string{fmt.Sprintf("bulk:%04d", i)}}
	}
	items := len(big.Roles) + len(big.Groups) + len(big.Machines) + len(big.Clients) + 2 // defaults, limits
	if !big.Tenancy.IsZero() {
		items++
	}
	proxy.LoseAnswersAfter("BatchWriteItem", (items+24)/25, 1) // the first batch after the policy's items: audit parts
	_, err = faulty.Apply(ctx, big, dynamo.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "audit record's parts") || strings.Contains(err.Error(), "write policy items") {
		t.Errorf("a lost answer to the audit parts: %v; want it said as such", err)
	}
}
