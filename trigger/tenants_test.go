package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
)

// memUsers is an in-memory Users that counts its reads.
type memUsers struct {
	users map[string]permissions.User
	reads int
}

func (m *memUsers) User(_ context.Context, sub string) (permissions.User, error) {
	m.reads++
	return m.users[sub], nil
}

func tenantEvent(t *testing.T, attrs map[string]string) *Event {
	t.Helper()
	ev := readEvent(t, "v2-signin-groups.json")
	ev.Request.GroupConfiguration.GroupsToOverride = nil
	ev.Request.UserAttributes = map[string]string{"sub": "u-1"}
	for k, v := range attrs {
		ev.Request.UserAttributes[k] = v
	}
	return ev
}

func idClaims(t *testing.T, r *Reply) map[string]any {
	t.Helper()
	d := r.Response.ClaimsAndScopeOverrideDetails
	if d == nil || d.IDTokenGeneration == nil {
		return nil
	}
	return d.IDTokenGeneration.ClaimsToAddOrOverride
}

func TestActiveTenant(t *testing.T) {
	p, err := permissions.ReadFile("../examples/tenants.yaml")
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := permissions.Compile(p, "stored")
	p2, _ := permissions.ReadFile("../examples/tenants.yaml")
	p2.Tenancy.Active = "attribute:custom:tenant_id"
	byAttr, _ := permissions.Compile(p2, "attr")
	two := map[string][]string{"acme": {"tenant-admin"}, "globex": {"member"}}

	tests := []struct {
		name      string
		snap      *permissions.Snapshot
		user      permissions.User
		attrs     map[string]string
		wantRoles any
		tenant    any
		refused   string
	}{
		{"stored acme", stored, permissions.User{Memberships: two, Active: "acme"}, nil, []any{"member", "tenant-admin"}, "acme", ""},
		{"stored globex", stored, permissions.User{Memberships: two, Active: "globex"}, nil, []any{"member"}, "globex", ""},
		{"one membership, nothing stored", stored, permissions.User{Memberships: map[string][]string{"acme": {"member"}}}, nil, []any{"member"}, "acme", ""},
		{"two memberships, nothing stored", stored, permissions.User{Memberships: two}, nil, []any{}, nil, ""},
		{"stored, no longer a member", stored, permissions.User{Memberships: two, Active: "initech"}, nil, []any{}, nil, "initech"},
		{"global roles still apply", stored, permissions.User{Memberships: two, Active: "initech"}, map[string]string{"custom:groups": "[Okta-Support]", "identities": `[{"providerName":"Okta","providerType":"SAML"}]`}, []any{"support"}, nil, "initech"},
		{"from the attribute", byAttr, permissions.User{Memberships: two, Active: "acme"}, map[string]string{"custom:tenant_id": "globex"}, []any{"member"}, "globex", ""},
		{"attribute names a tenant the user is not in", byAttr, permissions.User{Memberships: two}, map[string]string{"custom:tenant_id": "initech"}, []any{}, nil, "initech"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			users := &memUsers{users: map[string]permissions.User{"u-1": tt.user}}
			h := New(Static{S: tt.snap}, zerolog.New(&logs), WithUsers(users, false))
			r, err := h.Handle(context.Background(), tenantEvent(t, tt.attrs))
			if err != nil {
				t.Fatal(err)
			}
			claims := idClaims(t, r)
			roles := claims["app_roles"]
			if roles == nil {
				roles = []any{}
			}
			if diff := cmp.Diff(tt.wantRoles, jsonRound(t, roles)); diff != "" {
				t.Errorf("app_roles (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.tenant, claims["tenant_id"]); diff != "" {
				t.Errorf("tenant_id (-want +got):\n%s", diff)
			}
			if users.reads != 1 {
				t.Errorf("%d user reads per token, want 1", users.reads)
			}
			if tt.refused != "" && !strings.Contains(logs.String(), `"tenant_refused":"`+tt.refused+`"`) {
				t.Errorf("the log line does not say the tenant was refused:\n%s", logs.String())
			}
		})
	}
}

func jsonRound(t *testing.T, v any) any {
	t.Helper()
	b, _ := json.Marshal(v)
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUserReadsOnlyWhenNeeded: no tenancy and no direct roles, no read;
// machine tokens never read; direct roles apply only when on.
func TestUserReadsOnlyWhenNeeded(t *testing.T) {
	plain := loadSnapshot(t, "testdata/policy.yaml")
	users := &memUsers{users: map[string]permissions.User{"u-1": {Roles: []string{"admin"}}}}
	h := New(Static{S: plain}, zerolog.Nop(), WithUsers(users, false))
	r, err := h.Handle(context.Background(), tenantEvent(t, nil))
	if err != nil || users.reads != 0 {
		t.Fatalf("no tenancy, direct roles off: %d reads, %v", users.reads, err)
	}
	if strings.Contains(string(mustJSON(t, r)), "users:manage") {
		t.Error("a direct role applied with assignments off")
	}
	h = New(Static{S: plain}, zerolog.Nop(), WithUsers(users, true))
	r, _ = h.Handle(context.Background(), tenantEvent(t, nil))
	if users.reads != 1 || !strings.Contains(string(mustJSON(t, r)), "users:manage") {
		t.Errorf("direct roles on: %d reads, answer %s", users.reads, mustJSON(t, r))
	}
	if _, err := h.Handle(context.Background(), readEvent(t, "v3-client-credentials.json")); err != nil || users.reads != 1 {
		t.Errorf("a machine token read user data (%d reads), %v", users.reads, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestManyMembershipsAndTheBudget: with 500 memberships only the active
// tenant's roles enter the token; the tenants claim (every membership)
// counts against the budget: refused with onOverflow fail, dropped first
// with roles-only.
func TestManyMembershipsAndTheBudget(t *testing.T) {
	m := map[string][]string{}
	for i := range 500 {
		m[fmt.Sprintf("tenant-%03d", i)] = []string{"member"}
	}
	m["tenant-007"] = []string{"tenant-admin"}
	users := &memUsers{users: map[string]permissions.User{"u-1": {Memberships: m, Active: "tenant-007"}}}
	for _, overflow := range []string{permissions.OverflowFail, permissions.OverflowRolesOnly} {
		p, err := permissions.ReadFile("../examples/tenants.yaml")
		if err != nil {
			t.Fatal(err)
		}
		p.Limits.OnOverflow = overflow
		snap, err := permissions.Compile(p, overflow)
		if err != nil {
			t.Fatal(err)
		}
		r, err := New(Static{S: snap}, zerolog.Nop(), WithUsers(users, false)).Handle(context.Background(), tenantEvent(t, nil))
		if overflow == permissions.OverflowFail {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("fail: %v, want ErrTooLarge for 500 tenant ids over the default budget", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("roles-only: %v", err)
		}
		claims := idClaims(t, r)
		if _, ok := claims["tenants"]; ok {
			t.Error("roles-only kept the tenants claim")
		}
		if claims["tenant_id"] != "tenant-007" || cmp.Diff([]any{"member", "tenant-admin"}, jsonRound(t, claims["app_roles"])) != "" {
			t.Errorf("roles-only: %v; want only tenant-007's roles", claims)
		}
	}
}
