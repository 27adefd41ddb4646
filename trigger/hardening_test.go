package trigger

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
)

// manyScopes is a policy whose access token gets far more than its ID token.
func manyScopes(t *testing.T, max int) *permissions.Snapshot {
	t.Helper()
	perms := make([]string, 200)
	for i := range perms {
		perms[i] = fmt.Sprintf("orders:permission-number-%03d", i)
	}
	p := &permissions.Policy{
		Roles:    map[string]permissions.Role{"viewer": {Permissions: perms}},
		Defaults: permissions.Defaults{Roles: []string{"viewer"}},
		Clients: map[string]permissions.ClientProfile{permissions.DefaultProfile: {
			IDToken:     permissions.TokenProfile{Claims: map[string]string{"app_roles": "roles"}},
			AccessToken: permissions.TokenProfile{Scopes: true, ScopePrefix: "api/"},
		}},
		Limits: permissions.Limits{MaxTokenBytes: max, OnOverflow: permissions.OverflowFail},
	}
	snap, err := permissions.Compile(p, "test")
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestBudgetPerChangedToken: a V1 answer changes only the ID token, so the
// access token's scopes (which it never sends) must not refuse it.
func TestBudgetPerChangedToken(t *testing.T) {
	h := New(Static{S: manyScopes(t, 1000)}, zerolog.Nop())
	v1 := readEvent(t, "v1-signin.json")
	r, err := h.Handle(context.Background(), v1)
	if err != nil {
		t.Fatalf("V1: %v; the access-token scopes are not part of a V1 answer", err)
	}
	if got := r.Response.ClaimsOverrideDetails.ClaimsToAddOrOverride["app_roles"]; got != "viewer" {
		t.Errorf("V1 app_roles = %q", got)
	}
	if _, err := h.Handle(context.Background(), readEvent(t, "v2-signin-groups.json")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("V2 with 200 scopes over a 1,000-byte budget: %v, want ErrTooLarge", err)
	}
}

// TestGrowthIsWireGrowth is a property test: for random claims and scopes
// (with characters encoding/json escapes, multi-byte and invalid UTF-8),
// the estimate is never below the real growth of the base64url payload and
// at most 10% above it.
func TestGrowthIsWireGrowth(t *testing.T) {
	base := map[string]any{
		"sub": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE",
		"client_id": "4webappclient0000", "origin_jti": "f1e2d3c4", "event_id": "e1", "token_use": "access",
		"scope": "openid email", "auth_time": 1700000000, "exp": 1700003600, "iat": 1700000000, "jti": "j1", "username": "sam",
	}
	encoded := func(m map[string]any) int {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodedLen(len(b))
	}
	alphabet := []string{"a", "Z", "9", ":", "/", "<", ">", "&", "\"", "\\", "\n", "\x01", "é", "€", "\u2028", "\u2029", "𝄞", "\xff", " "}
	word := func(r *rand.Rand, n int) string {
		var b strings.Builder
		for range 1 + r.IntN(n) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	r := rand.New(rand.NewPCG(1, 2))
	worst := 0.0
	for i := range 2000 {
		var out tokenOut
		v1 := i%3 == 0
		for c := range 1 + r.IntN(6) {
			cl := permissions.Claim{Name: fmt.Sprintf("x_%d_%s", c, word(r, 8))}
			for range r.IntN(12) {
				cl.Values = append(cl.Values, word(r, 24))
			}
			if len(cl.Values) == 1 && r.IntN(2) == 0 {
				cl.Single = true
			}
			out.claims = append(out.claims, cl)
		}
		if !v1 {
			for range r.IntN(20) {
				out.scopesToAdd = append(out.scopesToAdd, "api/"+word(r, 20))
			}
		}
		with := map[string]any{}
		for k, v := range base {
			with[k] = v
		}
		if v1 {
			for k, v := range v1Claims(out.claims) {
				with[k] = v
			}
		} else if g := v2Token(out); g != nil {
			for k, v := range g.ClaimsToAddOrOverride {
				with[k] = v
			}
			if len(out.scopesToAdd) > 0 {
				with["scope"] = base["scope"].(string) + " " + strings.Join(out.scopesToAdd, " ")
			}
		}
		real := encoded(with) - encoded(base)
		est := growth(out, v1)
		if est < real {
			t.Fatalf("case %d: estimate %d below the real growth %d: %+v", i, est, real, out)
		}
		if real > 0 {
			if ratio := float64(est) / float64(real); ratio > worst {
				worst = ratio
			}
			if est > real+real/10 {
				t.Errorf("case %d: estimate %d more than 10%% above the real growth %d", i, est, real)
			}
		}
	}
	t.Logf("worst estimate / real growth over 2,000 cases: %.3f", worst)
}

// TestFailOpenKeepsSuppressions: with no snapshot to serve but a last known
// one, the failure mode open still removes what the policy removes.
func TestFailOpenKeepsSuppressions(t *testing.T) {
	src := lastKnownSource{last: loadSnapshot(t, "testdata/policy.yaml")}
	r, err := New(src, zerolog.Nop(), WithFailureMode(FailOpen)).Handle(context.Background(), readEvent(t, "v2-signin-groups.json"))
	if err != nil {
		t.Fatal(err)
	}
	d := r.Response.ClaimsAndScopeOverrideDetails
	if d.AccessTokenGeneration == nil || !cmp.Equal(d.AccessTokenGeneration.ScopesToSuppress, []string{"aws.cognito.signin.user.admin"}) {
		t.Fatalf("open answer without the policy's suppressions: %+v", d.AccessTokenGeneration)
	}
	if len(d.AccessTokenGeneration.ScopesToAdd) != 0 || len(d.AccessTokenGeneration.ClaimsToAddOrOverride) != 0 || d.IDTokenGeneration != nil {
		t.Errorf("open answer adds something: %+v %+v", d.AccessTokenGeneration, d.IDTokenGeneration)
	}
}

// TestFailOpenWithoutAPolicySuppressesCustomScopes: a container that never
// loaded a policy cannot tell which resource-server scopes are granted, so
// its open answer suppresses every requested custom scope (and the admin
// scope) rather than let Cognito's own additions through.
func TestFailOpenWithoutAPolicySuppressesCustomScopes(t *testing.T) {
	ev := readEvent(t, "v2-signin-groups.json")
	ev.Request.Scopes = []string{"openid", "email", "aws.cognito.signin.user.admin", "orders-api/orders:write", "other-api/x"}
	r, err := New(lastKnownSource{}, zerolog.Nop(), WithFailureMode(FailOpen)).Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	at := r.Response.ClaimsAndScopeOverrideDetails.AccessTokenGeneration
	want := []string{"aws.cognito.signin.user.admin", "orders-api/orders:write", "other-api/x"}
	if at == nil || !cmp.Equal(at.ScopesToSuppress, want) || len(at.ScopesToAdd) != 0 || len(at.ClaimsToAddOrOverride) != 0 {
		t.Fatalf("open answer without a policy: %+v; want only %v suppressed", at, want)
	}
}

type lastKnownSource struct{ last *permissions.Snapshot }

func (s lastKnownSource) Snapshot(context.Context) (*permissions.Snapshot, permissions.CacheState, error) {
	return nil, permissions.CacheNone, permissions.ErrNoSnapshot
}
func (s lastKnownSource) Last() *permissions.Snapshot { return s.last }

// TestOneLogLinePerInvocation: every path writes exactly one line, of one
// shape, with the outcome and (where something went wrong) the problem.
func TestOneLogLinePerInvocation(t *testing.T) {
	snap := loadSnapshot(t, "testdata/policy.yaml")
	event := func(name string) []byte {
		b, err := os.ReadFile("testdata/events/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	store := errors.New("dynamodb: RequestTimeout on table pretoken-prod")
	tests := []struct {
		name    string
		h       *Handler
		payload []byte
		outcome Outcome
		level   string
		fields  []string
	}{
		{"issued", New(Static{S: snap}, zerolog.Nop()), event("v2-signin-groups.json"), OutcomeIssued, "info", nil},
		{"malformed", New(Static{S: snap}, zerolog.Nop()), []byte(`{"version": "2", "request": 7}`), OutcomeMalformed, "warn", []string{"problem"}},
		{"not JSON", New(Static{S: snap}, zerolog.Nop()), []byte(`nope`), OutcomeMalformed, "warn", []string{"problem"}},
		{"unknown version", New(Static{S: snap}, zerolog.Nop()), []byte(`{"version": "9"}`), OutcomeMalformed, "warn", []string{"problem"}},
		{"closed", New(failingSource{store}, zerolog.Nop()), event("v2-signin-groups.json"), OutcomeUnavailable, "error", []string{"problem"}},
		{"open", New(failingSource{store}, zerolog.Nop(), WithFailureMode(FailOpen)), event("v2-signin-groups.json"), OutcomeIssued, "error", []string{"problem", "failure_mode_open"}},
		{"too large", New(Static{S: manyScopes(t, 1000)}, zerolog.Nop()), event("v2-signin-groups.json"), OutcomeTooLarge, "warn", []string{"problem", "over_budget"}},
		{"panic", New(panickingSource{}, zerolog.Nop()), event("v1-signin.json"), OutcomeInternal, "error", []string{"problem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			tt.h.log = zerolog.New(&logs)
			tt.h.Invoke(context.Background(), tt.payload)
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1:\n%s", len(lines), logs.String())
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatal(err)
			}
			if got["message"] != "pre token generation" || got["outcome"] != string(tt.outcome) || got["level"] != tt.level {
				t.Errorf("line %s: want outcome %s at level %s", lines[0], tt.outcome, tt.level)
			}
			for _, f := range append([]string{"trigger_source", "event_version", "client_id", "cache", "duration_ms"}, tt.fields...) {
				if _, ok := got[f]; !ok {
					t.Errorf("line lacks %s: %s", f, lines[0])
				}
			}
		})
	}
}
