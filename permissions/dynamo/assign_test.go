package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pretoken/pretoken/permissions/dynamo"
)

func TestAssignments(t *testing.T) {
	s, client, table := newStore(t)
	ctx := context.Background()
	if _, err := s.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	if roles, err := s.UserRoles(ctx, "nobody"); err != nil || roles != nil {
		t.Errorf("unassigned user: %v, %v", roles, err)
	}
	res, err := s.Assign(ctx, "u1", []string{"refunder", "admin"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dynamo.AssignResult{After: []string{"admin", "refunder"}, Changed: true}, res); diff != "" {
		t.Errorf("assign (-want +got):\n%s", diff)
	}
	if roles, _ := s.UserRoles(ctx, "u1"); !slices.Equal(roles, []string{"admin", "refunder"}) {
		t.Errorf("roles = %v", roles)
	}
	if res, err := s.Assign(ctx, "u1", []string{"admin"}, "alice"); err != nil || res.Changed {
		t.Errorf("assigning again: %+v, %v; want no change", res, err)
	}

	before := keysOf(scan(t, client, table))
	_, err = s.Assign(ctx, "u1", []string{"viewer", "ghost"}, "alice")
	if !errors.Is(err, dynamo.ErrUnknownRole) {
		t.Fatalf("unknown role: %v, want ErrUnknownRole", err)
	}
	if diff := cmp.Diff(before, keysOf(scan(t, client, table))); diff != "" {
		t.Errorf("a failed assign wrote:\n%s", diff)
	}

	res, err = s.Unassign(ctx, "u1", []string{"admin", "viewer"}, "bob")
	if err != nil || !slices.Equal(res.After, []string{"refunder"}) {
		t.Errorf("unassign: %+v, %v", res, err)
	}
	if _, err := s.Unassign(ctx, "u1", []string{"refunder"}, "bob"); err != nil {
		t.Fatal(err)
	}
	if roles, _ := s.UserRoles(ctx, "u1"); roles != nil {
		t.Errorf("after unassigning all: %v", roles)
	}

	h, err := s.History(ctx, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range h {
		got = append(got, fmt.Sprintf("%s %s %s %s %s->%s %v", r.Actor, r.Action, r.Target, "", r.OldVersion, r.NewVersion, r.Changes))
	}
	want := []string{
		"bob unassign user u1  2->3 [roles [refunder] -> []]",
		"bob unassign user u1  1->2 [roles [admin refunder] -> [refunder]]",
		"alice assign user u1  0->1 [roles [] -> [admin refunder]]",
		got[len(got)-1], // the apply, checked in TestHistory
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history, newest first (-want +got):\n%s", diff)
	}
}

// TestConcurrentAssignmentsLoseNothing races assigns and unassigns of
// different roles on one user: every change must land.
func TestConcurrentAssignmentsLoseNothing(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	p := bigPolicy(40, "c")
	if _, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// Start with the odd roles; concurrently assign the even ones and
	// unassign the odd ones.
	var odd, even []string
	for i := range 40 {
		if r := fmt.Sprintf("role%03d", i); i%2 == 1 {
			odd = append(odd, r)
		} else {
			even = append(even, r)
		}
	}
	if _, err := s.Assign(ctx, "racer", odd, "setup"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := s.Assign(ctx, "racer", []string{even[i]}, "a")
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := s.Unassign(ctx, "racer", []string{odd[i]}, "u")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got, err := s.UserRoles(ctx, "racer")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(even, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("lost updates (-want +got):\n%s", diff)
	}
	h, _ := s.History(ctx, 0, time.Time{})
	if n := len(h); n != 1+1+40 { // apply, setup assign, 40 changes
		t.Errorf("%d audit records, want 42", n)
	}
}

func TestHistory(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{Actor: "arn:aws:iam::123456789012:user/ops"}); err != nil {
		t.Fatal(err)
	}
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	next := examplePolicy(t)
	delete(next.Groups, "support")
	if _, err := s.Apply(ctx, next, dynamo.ApplyOptions{Actor: "ci"}); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Apply(ctx, next, dynamo.ApplyOptions{Actor: "ci"}); err != nil || res.Applied {
		t.Fatalf("no-op apply: %+v, %v", res, err)
	}
	if res, err := s.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{Actor: "ci", DryRun: true}); err != nil || res.Applied || len(res.Changes) != 1 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	all, err := s.History(ctx, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("%d records, want 2 (no record for a no-op or a dry run): %+v", len(all), all)
	}
	newest := all[0]
	if newest.Actor != "ci" || newest.Action != "apply" || newest.OldVersion != "1" || newest.NewVersion != "2" ||
		!slices.Equal(newest.Changes, []string{"- group support"}) || newest.Time.Before(mid) {
		t.Errorf("newest record = %+v", newest)
	}
	if first := all[1]; first.Actor != "arn:aws:iam::123456789012:user/ops" || first.OldVersion != "0" || first.NewVersion != "1" || len(first.Changes) != 14 {
		t.Errorf("first record = %+v", first)
	}
	if got, _ := s.History(ctx, 1, time.Time{}); len(got) != 1 || got[0].NewVersion != "2" {
		t.Errorf("limit 1: %+v", got)
	}
	if got, _ := s.History(ctx, 0, mid); len(got) != 1 || got[0].NewVersion != "2" {
		t.Errorf("since the middle: %+v", got)
	}
}
