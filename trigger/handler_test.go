package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

func loadSnapshot(t testing.TB, path string) *permissions.Snapshot {
	t.Helper()
	snap, err := permissions.LoadFile(path)
	if err != nil {
		t.Fatalf("load policy: %v", err)
	}
	return snap
}

func newTestHandler(t testing.TB) *Handler {
	t.Helper()
	return New(Static{S: loadSnapshot(t, "testdata/policy.yaml")}, zerolog.Nop())
}

// TestGolden runs every event in testdata/events through Invoke and compares
// the answer with testdata/golden, then checks the invariants that must hold
// for any answer.
func TestGolden(t *testing.T) {
	h := newTestHandler(t)
	files, err := filepath.Glob("testdata/events/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no events: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			payload, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out, err := h.Invoke(context.Background(), payload)
			var got []byte
			if err != nil {
				got, _ = json.MarshalIndent(map[string]string{"error": err.Error()}, "", "  ")
			} else {
				var buf bytes.Buffer
				if err := json.Indent(&buf, out, "", "  "); err != nil {
					t.Fatalf("response is not JSON: %v", err)
				}
				got = buf.Bytes()
				checkInvariants(t, payload, out)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata/golden", name)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("answer differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// checkInvariants checks what must hold for every answer, whatever the
// policy and event: the user's groups are kept, no reserved claim is set,
// scopes are well formed, V1 answers carry strings only, and a
// client-credentials answer has no ID token part.
func checkInvariants(t testing.TB, payload, out []byte) {
	t.Helper()
	ev, err := DecodeEvent(payload)
	if err != nil {
		t.Fatalf("handler answered a malformed event: %v", err)
	}
	var r struct {
		Response struct {
			V1 *struct {
				Claims   map[string]any      `json:"claimsToAddOrOverride"`
				Suppress []string            `json:"claimsToSuppress"`
				Groups   *GroupConfiguration `json:"groupOverrideDetails"`
			} `json:"claimsOverrideDetails"`
			V2 *struct {
				ID     *rawToken           `json:"idTokenGeneration"`
				Access *rawToken           `json:"accessTokenGeneration"`
				Groups *GroupConfiguration `json:"groupOverrideDetails"`
			} `json:"claimsAndScopeOverrideDetails"`
		} `json:"response"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	machine := ev.TriggerSource == ClientCredentials
	wantGroups := keepGroups(ev.Request.GroupConfiguration)
	v1, _ := isV1(ev.Version)
	checkGroups := func(got *GroupConfiguration) {
		t.Helper()
		if machine {
			if got != nil {
				t.Errorf("client-credentials answer overrides groups: %+v", got)
			}
			return
		}
		if got == nil {
			t.Fatalf("answer has no groupOverrideDetails: the user's groups would be dropped")
		}
		if diff := cmp.Diff(wantGroups, got); diff != "" {
			t.Errorf("groups not kept (-request +answer):\n%s", diff)
		}
	}
	checkClaims := func(claims map[string]any, suppress []string, tok permissions.Token) {
		t.Helper()
		for name, v := range claims {
			if err := permissions.CheckAddClaim(name, tok); err != nil {
				t.Errorf("%v claim %q emitted: %v", tok, name, err)
			}
			if _, ok := v.(string); v1 && !ok {
				t.Errorf("V1 claim %q is %T, want a string", name, v)
			}
		}
		for _, name := range suppress {
			if err := permissions.CheckSuppressClaim(name, tok); err != nil {
				t.Errorf("%v claim %q suppressed: %v", tok, name, err)
			}
		}
	}
	switch {
	case v1:
		if r.Response.V1 == nil || r.Response.V2 != nil {
			t.Fatalf("V1 event answered without claimsOverrideDetails or with V2 details")
		}
		checkGroups(r.Response.V1.Groups)
		checkClaims(r.Response.V1.Claims, r.Response.V1.Suppress, permissions.IDToken)
	default:
		d := r.Response.V2
		if d == nil || r.Response.V1 != nil {
			t.Fatalf("V2/V3 event answered without claimsAndScopeOverrideDetails or with V1 details")
		}
		checkGroups(d.Groups)
		if machine && d.ID != nil {
			t.Errorf("client-credentials answer changes an ID token")
		}
		for tok, g := range map[permissions.Token]*rawToken{permissions.IDToken: d.ID, permissions.AccessToken: d.Access} {
			if g == nil {
				continue
			}
			checkClaims(g.Claims, g.Suppress, tok)
			for _, s := range append(g.ScopesToAdd, g.ScopesToSuppress...) {
				if !permissions.ValidScope(s) {
					t.Errorf("malformed scope %q", s)
				}
			}
			if tok == permissions.IDToken && len(g.ScopesToAdd)+len(g.ScopesToSuppress) > 0 {
				t.Errorf("scopes in the ID token")
			}
		}
	}
}

type rawToken struct {
	Claims           map[string]any `json:"claimsToAddOrOverride"`
	Suppress         []string       `json:"claimsToSuppress"`
	ScopesToAdd      []string       `json:"scopesToAdd"`
	ScopesToSuppress []string       `json:"scopesToSuppress"`
}

func readEvent(t testing.TB, name string) *Event {
	t.Helper()
	payload, err := os.ReadFile(filepath.Join("testdata/events", name))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := DecodeEvent(payload)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestClientMetadataGrantsNothing(t *testing.T) {
	h := newTestHandler(t)
	payload, err := os.ReadFile("testdata/events/v2-signin-groups.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(payload, &raw); err != nil {
		t.Fatal(err)
	}
	req := raw["request"].(map[string]any)
	if req["clientMetadata"] == nil {
		t.Fatal("test event lost its clientMetadata")
	}
	with, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	delete(req, "clientMetadata")
	without, _ := json.Marshal(raw)
	want, err := h.Invoke(context.Background(), without)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(with)); diff != "" {
		t.Errorf("clientMetadata changed the answer (-without +with):\n%s", diff)
	}
}

func TestVersions(t *testing.T) {
	h := newTestHandler(t)
	for _, tt := range []struct {
		version Version
		v1      bool
	}{{"0", true}, {"1", true}, {"2", false}, {"3", false}} {
		ev := readEvent(t, "v2-refresh.json")
		ev.Version = tt.version
		r, err := h.Handle(context.Background(), ev)
		if err != nil {
			t.Fatalf("version %s: %v", tt.version, err)
		}
		if gotV1 := r.Response.ClaimsOverrideDetails != nil; gotV1 != tt.v1 || (r.Response.ClaimsAndScopeOverrideDetails != nil) == tt.v1 {
			t.Errorf("version %s: answered V1 shape = %v, want %v", tt.version, gotV1, tt.v1)
		}
	}
	for _, bad := range []Version{"", "4", "2.0", "V2_0"} {
		ev := readEvent(t, "v2-refresh.json")
		ev.Version = bad
		if _, err := h.Handle(context.Background(), ev); !errors.Is(err, ErrVersion) {
			t.Errorf("version %q: err = %v, want ErrVersion", bad, err)
		}
	}
}

func TestDecodeTolerance(t *testing.T) {
	tests := []struct {
		name, json string
		want       Event
	}{
		{"numeric version", `{"version": 2}`, Event{Version: "2"}},
		{"preferredRole string", `{"version":"2","request":{"groupConfiguration":{"preferredRole":"arn:r"}}}`,
			Event{Version: "2", Request: Request{GroupConfiguration: GroupConfiguration{PreferredRole: "arn:r"}}}},
		{"preferredRole array", `{"version":"2","request":{"groupConfiguration":{"preferredRole":["arn:a","arn:b"]}}}`,
			Event{Version: "2", Request: Request{GroupConfiguration: GroupConfiguration{PreferredRole: "arn:a"}}}},
		{"preferredRole empty array", `{"version":"2","request":{"groupConfiguration":{"preferredRole":[]}}}`, Event{Version: "2"}},
		{"preferredRole null", `{"version":"2","request":{"groupConfiguration":{"preferredRole":null}}}`, Event{Version: "2"}},
		{"response as array", `{"version":"2","response":{"claimsAndScopeOverrideDetails":[]}}`, Event{Version: "2"}},
		{"response as empty list", `{"version":"2","response":[]}`, Event{Version: "2"}},
		{"scalar attributes", `{"version":"0","request":{"userAttributes":{"a":true,"b":42,"c":null,"d":"x"}}}`,
			Event{Version: "0", Request: Request{UserAttributes: Attributes{"a": "true", "b": "42", "d": "x"}}}},
		{"unknown fields", `{"version":"2","new":{"x":1},"request":{"newer":[1]}}`, Event{Version: "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent([]byte(tt.json))
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{``, `null`, `[]`, `"2"`, `{"version":"2","request":{"userAttributes":{"a":{"b":1}}}}`,
		`{"version":"2","request":{"groupConfiguration":{"preferredRole":[1]}}}`, `{"version":{}}`} {
		if _, err := DecodeEvent([]byte(bad)); err == nil {
			t.Errorf("DecodeEvent(%s) succeeded, want an error", bad)
		}
	}
}

type failingSource struct{ err error }

func (f failingSource) Snapshot(context.Context) (*permissions.Snapshot, permissions.CacheState, error) {
	return nil, permissions.CacheNone, f.err
}

type panickingSource struct{}

func (panickingSource) Snapshot(context.Context) (*permissions.Snapshot, permissions.CacheState, error) {
	panic("boom in table orders-prod")
}

func TestFailureModes(t *testing.T) {
	internal := errors.New("dynamodb: ResourceNotFoundException: table pretoken-prod")
	ev := readEvent(t, "v2-signin-groups.json")

	_, err := New(failingSource{internal}, zerolog.Nop()).Handle(context.Background(), ev)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed: err = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "dynamodb") || strings.Contains(err.Error(), "pretoken-prod") {
		t.Errorf("error shown to the user reveals internals: %q", err)
	}

	r, err := New(failingSource{internal}, zerolog.Nop(), WithFailureMode(FailOpen)).Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	// Nothing added; the requested scopes that no policy vouches for (here
	// the admin scope) suppressed.
	want := &ClaimsAndScopeOverrideDetails{GroupOverrideDetails: keepGroups(ev.Request.GroupConfiguration),
		AccessTokenGeneration: &TokenGeneration{ScopesToSuppress: unknownScopes(ev.Request.Scopes)}}
	if len(want.AccessTokenGeneration.ScopesToSuppress) == 0 {
		t.Fatal("the event requests no scope to suppress; the case tests nothing")
	}
	if diff := cmp.Diff(want, r.Response.ClaimsAndScopeOverrideDetails); diff != "" {
		t.Errorf("open: answer should keep groups, add nothing and suppress the unknown scopes (-want +got):\n%s", diff)
	}

	payload, _ := os.ReadFile("testdata/events/v1-signin.json")
	var log bytes.Buffer
	out, err := New(panickingSource{}, zerolog.New(&log)).Invoke(context.Background(), payload)
	if !errors.Is(err, ErrInternal) || out != nil {
		t.Errorf("panic: got %q, %v; want ErrInternal", out, err)
	}
	// The log, not the user, learns what and where.
	if l := log.String(); !strings.Contains(l, "boom in table orders-prod") || !strings.Contains(l, "panickingSource.Snapshot") {
		t.Errorf("the log of a panic should name it and where it was: %s", l)
	}
}

func TestLimits(t *testing.T) {
	base := func(max int, onOverflow string) *Handler {
		p, err := permissions.ReadFile("testdata/policy.yaml")
		if err != nil {
			t.Fatal(err)
		}
		p.Limits = permissions.Limits{MaxTokenBytes: max, OnOverflow: onOverflow}
		snap, err := permissions.Compile(p, "test")
		if err != nil {
			t.Fatal(err)
		}
		return New(Static{S: snap}, zerolog.Nop())
	}
	ev := readEvent(t, "v2-signin-groups.json")
	full, err := base(0, "").Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	idFull := full.Response.ClaimsAndScopeOverrideDetails.IDTokenGeneration
	if _, ok := idFull.ClaimsToAddOrOverride["app_permissions"]; !ok {
		t.Fatal("the default budget should fit every claim")
	}

	// 140 bytes holds the roles (about 100 bytes in the ID token) but not the
	// permissions as well (about 180).
	if _, err := base(140, permissions.OverflowFail).Handle(context.Background(), ev); !errors.Is(err, ErrTooLarge) {
		t.Errorf("fail: err = %v, want ErrTooLarge", err)
	}
	r, err := base(140, permissions.OverflowRolesOnly).Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("roles-only: %v", err)
	}
	d := r.Response.ClaimsAndScopeOverrideDetails
	if _, ok := d.IDTokenGeneration.ClaimsToAddOrOverride["app_permissions"]; ok {
		t.Error("roles-only kept the permissions claim")
	}
	if diff := cmp.Diff(idFull.ClaimsToAddOrOverride["app_roles"], d.IDTokenGeneration.ClaimsToAddOrOverride["app_roles"]); diff != "" {
		t.Errorf("roles-only changed the roles claim (-full +got):\n%s", diff)
	}
	if d.AccessTokenGeneration == nil || len(d.AccessTokenGeneration.ScopesToAdd) != 0 || d.AccessTokenGeneration.ClaimsToAddOrOverride["app_roles"] == nil {
		t.Errorf("roles-only access token = %+v, want roles claim and no added scopes", d.AccessTokenGeneration)
	}
	if _, err := base(20, permissions.OverflowRolesOnly).Handle(context.Background(), ev); !errors.Is(err, ErrTooLarge) {
		t.Errorf("roles-only over budget: err = %v, want ErrTooLarge", err)
	}
}

// TestReservedClaimsFiltered feeds the trigger's last line of defence
// changes that a validated policy can never produce.
func TestReservedClaimsFiltered(t *testing.T) {
	st := &Decision{}
	got := token(permissions.TokenChanges{
		Claims: []permissions.Claim{{Name: "sub", Values: []string{"x"}}, {Name: "ok", Values: []string{"y"}}, {Name: "cognito:username"},
			{Name: "Email", Values: []string{"e"}}, {Name: "Custom:Tenant", Values: []string{"t"}}},
		ClaimsToSuppress: []string{"exp", "dev:x"},
		ScopesToAdd:      []string{"good", "", "has blank", "aws.cognito.signin.user.admin", "openid"},
		ScopesToSuppress: []string{"a\tb", "fine"},
	}, permissions.AccessToken, false, st)
	want := tokenOut{
		claims:           []permissions.Claim{{Name: "ok", Values: []string{"y"}}},
		suppress:         []string{"dev:x"},
		scopesToAdd:      []string{"good"},
		scopesToSuppress: []string{"fine"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(tokenOut{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Names that shadow a standard claim or a user attribute, in any case,
	// are dropped too: validate refuses them, this is the last line.
	wantDropped := []string{"access token claim sub", "access token claim cognito:username", "access token claim Email", "access token claim Custom:Tenant", `access token claim to suppress "exp"`,
		`scope to add ""`, `scope to add "has blank"`, `scope to add "aws.cognito.signin.user.admin"`, `scope to add "openid"`, `scope to suppress "a\tb"`}
	if diff := cmp.Diff(wantDropped, st.Dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}

func TestLogLine(t *testing.T) {
	var logs bytes.Buffer
	h := New(Static{S: loadSnapshot(t, "testdata/policy.yaml")}, zerolog.New(&logs))
	payload, _ := os.ReadFile("testdata/events/v2-console-test-event.json")
	if _, err := h.Invoke(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1:\n%s", len(lines), logs.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"level": "info", "message": "pre token generation",
		"trigger_source": "TokenGeneration_HostedAuth", "event_version": "2", "client_id": "1example23456789",
		"user_sub": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "policy_version": got["policy_version"],
		"cache": "static", "roles": 1.0, "scopes_added": 1.0, "id_claims_added": 3.0, "access_claims_added": 1.0,
		"id_token_bytes_added": got["id_token_bytes_added"], "access_token_bytes_added": got["access_token_bytes_added"],
		"outcome": "issued", "duration_ms": got["duration_ms"],
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
	if v, _ := got["policy_version"].(string); !strings.HasPrefix(v, "sha256:") {
		t.Errorf("policy_version = %v", got["policy_version"])
	}
	for _, secret := range []string{"test@example.com", "+12065551212"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log line holds %q", secret)
		}
	}
}
