package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
)

// benchPolicy has n roles, each with 5 permissions and inheriting the two
// roles before it, n/5 groups mapped to 3 roles each, one default role, and
// a default client profile that puts roles and permissions into both
// tokens and permissions as scopes.
func benchPolicy(n int) *permissions.Policy {
	p := &permissions.Policy{
		Roles:    make(map[string]permissions.Role, n),
		Groups:   make(map[string][]string),
		Defaults: permissions.Defaults{Roles: []string{"role0"}},
		Clients: map[string]permissions.ClientProfile{permissions.DefaultProfile: {
			IDToken: permissions.TokenProfile{Claims: map[string]string{"app_roles": "roles", "app_permissions": "permissions", "tenant": "attribute:custom:tenant_id"}},
			AccessToken: permissions.TokenProfile{Scopes: true, ScopePrefix: "api/", Claims: map[string]string{"app_roles": "roles"},
				SuppressScopes: []string{"aws.cognito.signin.user.admin"}},
		}},
	}
	for i := range n {
		r := permissions.Role{}
		for j := range 5 {
			r.Permissions = append(r.Permissions, fmt.Sprintf("res%d:action%d", i, j))
		}
		for _, parent := range []int{i - 1, i - 2} {
			if parent >= 0 && i%10 != 0 { // chains of ten, so closures stay small as n grows
				r.Inherits = append(r.Inherits, fmt.Sprintf("role%d", parent))
			}
		}
		p.Roles[fmt.Sprintf("role%d", i)] = r
	}
	for g := range max(n/5, 5) {
		var roles []string
		for k := range 3 {
			roles = append(roles, fmt.Sprintf("role%d", (g*3+k)%n))
		}
		p.Groups[fmt.Sprintf("group%d", g)] = roles
	}
	return p
}

func benchEvent(groups int) *Event {
	ev := &Event{
		Version:       "2",
		TriggerSource: "TokenGeneration_Authentication",
		Region:        "us-east-1",
		UserPoolID:    "us-east-1_BENCH",
		UserName:      "bench",
		CallerContext: CallerContext{ClientID: "webclient"},
		Request: Request{
			UserAttributes: Attributes{"sub": "b1", "email": "bench@example.com", "custom:tenant_id": "t1"},
			Scopes:         []string{"openid", "aws.cognito.signin.user.admin"},
		},
	}
	for g := range groups {
		ev.Request.GroupConfiguration.GroupsToOverride = append(ev.Request.GroupConfiguration.GroupsToOverride, fmt.Sprintf("group%d", g*3))
	}
	return ev
}

func benchHandler(b *testing.B, roles int) *Handler {
	snap, err := permissions.Compile(benchPolicy(roles), "bench")
	if err != nil {
		b.Fatal(err)
	}
	return New(Static{S: snap}, zerolog.Nop())
}

// BenchmarkHandle is the handler on a decoded V2 event: a user in 5 groups,
// 100-role policy.
func BenchmarkHandle(b *testing.B) {
	h := benchHandler(b, 100)
	ev := benchEvent(5)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Handle(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvoke is the same through raw JSON in and out, as the Lambda
// runtime calls it.
func BenchmarkInvoke(b *testing.B) {
	h := benchHandler(b, 100)
	payload, err := json.Marshal(benchEvent(5))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := h.Invoke(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandlePolicySize shows that the cost does not grow with the
// policy: compare the sub-benchmarks' ns/op.
func BenchmarkHandlePolicySize(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("roles=%d", n), func(b *testing.B) {
			h := benchHandler(b, n)
			ev := benchEvent(5)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Handle(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
