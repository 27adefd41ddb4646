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

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

func tenantStore(t *testing.T) *dynamo.Store {
	t.Helper()
	s, _, _ := newStore(t)
	p, err := permissions.ReadFile("../../examples/tenants.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMemberships(t *testing.T) {
	s := tenantStore(t)
	ctx := context.Background()
	if _, err := s.AssignInTenant(ctx, "u-1", "acme", []string{"tenant-admin"}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AssignInTenant(ctx, "u-1", "globex", []string{"member"}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Assign(ctx, "u-1", []string{"support"}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AssignInTenant(ctx, "u-1", "acme", []string{"ghost"}, "test"); !errors.Is(err, dynamo.ErrUnknownRole) {
		t.Errorf("unknown role in a tenant: %v", err)
	}
	if err := s.SetActiveTenant(ctx, "u-1", "initech", "test"); !errors.Is(err, dynamo.ErrNotMember) {
		t.Errorf("active tenant the user is not in: %v, want ErrNotMember", err)
	}
	if err := s.SetActiveTenant(ctx, "u-1", "globex", "test"); err != nil {
		t.Fatal(err)
	}
	u, err := s.User(ctx, "u-1")
	if err != nil {
		t.Fatal(err)
	}
	want := permissions.User{Roles: []string{"support"}, Memberships: map[string][]string{"acme": {"tenant-admin"}, "globex": {"member"}}, Active: "globex"}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("user (-want +got):\n%s", diff)
	}
	members, err := s.TenantMembers(ctx, "acme")
	if err != nil || len(members) != 1 || members[0].Sub != "u-1" || !slices.Equal(members[0].Roles, []string{"tenant-admin"}) {
		t.Errorf("acme members %+v, %v", members, err)
	}
	// Removing the last role ends the membership.
	if _, err := s.UnassignInTenant(ctx, "u-1", "acme", []string{"tenant-admin"}, "test"); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.User(ctx, "u-1"); u.Memberships["acme"] != nil {
		t.Errorf("still a member of acme: %+v", u)
	}
	if m, _ := s.TenantMembers(ctx, "acme"); len(m) != 0 {
		t.Errorf("acme still lists %+v", m)
	}
	hist, err := s.History(ctx, 10, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, r := range hist {
		targets = append(targets, r.Action+" "+r.Target)
	}
	for _, want := range []string{"unassign user u-1 tenant acme", "use tenant user u-1", "assign user u-1 tenant globex"} {
		if !slices.Contains(targets, want) {
			t.Errorf("history lacks %q: %v", want, targets)
		}
	}
}

// TestConcurrentAssignsInTwoTenantsLoseNothing: one user, two tenants,
// many writers at once: every role lands in its tenant.
func TestConcurrentAssignsInTwoTenantsLoseNothing(t *testing.T) {
	s := tenantStore(t)
	ctx := context.Background()
	p := &permissions.Policy{Roles: map[string]permissions.Role{}}
	for i := range 20 {
		p.Roles[fmt.Sprintf("r%02d", i)] = permissions.Role{}
	}
	if _, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, tenant := range []string{"acme", "globex"} {
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.AssignInTenant(ctx, "u-2", tenant, []string{fmt.Sprintf("r%02d", i)}, "race"); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	u, err := s.User(ctx, "u-2")
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"acme", "globex"} {
		if n := len(u.Memberships[tenant]); n != 10 {
			t.Errorf("%s: %d roles after 10 concurrent assigns: %v", tenant, n, u.Memberships[tenant])
		}
	}
}

// TestEndingMembershipClearsActiveTenant: a member removed from the active
// tenant and added back later is not made active there again by a stale
// active-tenant item; ending another membership leaves the active one be.
func TestEndingMembershipClearsActiveTenant(t *testing.T) {
	s := tenantStore(t)
	ctx := context.Background()
	for _, tenant := range []string{"acme", "globex", "initech"} {
		if _, err := s.AssignInTenant(ctx, "u-1", tenant, []string{"member"}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetActiveTenant(ctx, "u-1", "globex", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UnassignInTenant(ctx, "u-1", "initech", []string{"member"}, "test"); err != nil {
		t.Fatal(err)
	}
	if u, err := s.User(ctx, "u-1"); err != nil || u.Active != "globex" {
		t.Fatalf("after leaving another tenant: active %q, %v; want globex", u.Active, err)
	}
	if _, err := s.UnassignInTenant(ctx, "u-1", "globex", []string{"member"}, "test"); err != nil {
		t.Fatal(err)
	}
	if u, err := s.User(ctx, "u-1"); err != nil || u.Active != "" {
		t.Fatalf("after leaving the active tenant: active %q, %v; want none", u.Active, err)
	}
	// Re-added: a member again, but not active until someone says so.
	if _, err := s.AssignInTenant(ctx, "u-1", "globex", []string{"member"}, "test"); err != nil {
		t.Fatal(err)
	}
	u, err := s.User(ctx, "u-1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Active != "" || len(u.Memberships) != 2 {
		t.Errorf("re-added member: active %q, memberships %v; want no active tenant", u.Active, u.Memberships)
	}
}

// TestUserReadIsConsistent: the per-token user read asks DynamoDB for a
// strongly consistent read, as recorded on the wire, so an unassign counts
// at the next token.
func TestUserReadIsConsistent(t *testing.T) {
	proxy := dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	client := dynamotest.NewClient(proxy.URL)
	table := dynamotest.Table(t, client)
	s := dynamo.New(client, table)
	ctx := context.Background()
	proxy.Reads()
	if _, err := s.User(ctx, "u-1"); err != nil {
		t.Fatal(err)
	}
	want := []dynamotest.Read{{Op: "Query", Partition: "USER#u-1", Consistent: true}}
	if diff := cmp.Diff(want, proxy.Reads()); diff != "" {
		t.Errorf("reads on the wire (-want +got):\n%s", diff)
	}
}
