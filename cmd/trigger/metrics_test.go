package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/permissions"
)

// emfLines returns the Embedded Metric Format lines of f's log output from
// line from on, each checked against the specification: every metric and
// dimension the _aws block names is a member of the line.
func emfLines(t *testing.T, f *lambdatest.Function, from int) []map[string]any {
	t.Helper()
	var out []map[string]any
	lines := strings.Split(f.Logs(), "\n")
	for _, l := range lines[from:] {
		if !strings.Contains(l, `"_aws"`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l[strings.Index(l, "{"):]), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		aws := m["_aws"].(map[string]any)
		if _, ok := aws["Timestamp"].(float64); !ok {
			t.Errorf("no Timestamp: %s", l)
		}
		cw := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if cw["Namespace"] != "pretoken" {
			t.Errorf("namespace %v", cw["Namespace"])
		}
		for _, set := range cw["Dimensions"].([]any) {
			for _, d := range set.([]any) {
				if _, ok := m[d.(string)].(string); !ok {
					t.Errorf("dimension %v is not a member: %s", d, l)
				}
			}
		}
		for _, metric := range cw["Metrics"].([]any) {
			if _, ok := m[metric.(map[string]any)["Name"].(string)].(float64); !ok {
				t.Errorf("metric %v is not a member: %s", metric, l)
			}
		}
		out = append(out, m)
	}
	return out
}

func lineCount(f *lambdatest.Function) int { return len(strings.Split(f.Logs(), "\n")) - 1 }

// lastEMF invokes f with payload and returns the EMF line it wrote.
func lastEMF(t *testing.T, f *lambdatest.Function, payload []byte) map[string]any {
	t.Helper()
	from := lineCount(f)
	f.Invoke(t, payload)
	var lines []map[string]any
	for deadline := time.Now().Add(2 * time.Second); len(lines) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		lines = emfLines(t, f, from)
	}
	if len(lines) != 1 {
		t.Fatalf("%d metric lines for one invocation, want 1:\n%s", len(lines), f.Logs())
	}
	return lines[0]
}

func wantMetrics(t *testing.T, what string, m map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s: %s = %v, want %v", what, k, m[k], v)
		}
	}
}

// TestLambdaMetrics reads the metrics from the Lambda's real log output
// under the runtime emulator, on every path: loaded, fresh, checked, user
// reads, malformed, stale (with its age), unavailable, roles-only and too
// large.
func TestLambdaMetrics(t *testing.T) {
	_, table, _, _ := exampleTable(t)
	proxy := dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	f := lambdatest.Start(t, lambdatest.Build(t, "."), dynamoEnv(table, proxy.URL, map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME": "pretoken-emf", "PRETOKEN_REFRESH_INTERVAL": "1s", "PRETOKEN_MAX_STALENESS": "6s",
		"PRETOKEN_USER_ASSIGNMENTS": "true"}))
	staff := readFile(t, staffEvent)
	base := map[string]any{"FunctionName": "pretoken-emf", "Tokens": 1.0}

	m := lastEMF(t, f, staff)
	wantMetrics(t, "first token", m, merge(base, map[string]any{"Outcome": "issued", "CacheLoaded": 1.0, "CacheFresh": 0.0, "UserReads": 1.0, "CacheNone": 0.0}))
	m = lastEMF(t, f, staff)
	wantMetrics(t, "warm token", m, merge(base, map[string]any{"Outcome": "issued", "CacheFresh": 1.0, "CacheLoaded": 0.0}))
	if d, _ := m["Duration"].(float64); d <= 0 || d > 1000 {
		t.Errorf("Duration %v ms", m["Duration"])
	}
	time.Sleep(1100 * time.Millisecond)
	wantMetrics(t, "after the interval", lastEMF(t, f, staff), merge(base, map[string]any{"CacheChecked": 1.0}))
	wantMetrics(t, "malformed", lastEMF(t, f, []byte(`{"version": "2", "request": 5}`)), merge(base, map[string]any{"Outcome": "malformed", "UserReads": 0.0}))

	// The store goes down: machine tokens (no user read) are served from
	// the stale snapshot, then refused.
	m2m := readFile(t, "../../examples/events/v3-client-credentials.json")
	proxy.SetDown(true)
	down := time.Now()
	time.Sleep(1100 * time.Millisecond)
	m = lastEMF(t, f, m2m)
	for m["CacheStale"] != 1.0 && time.Since(down) < 4*time.Second { // the first failed check is the one that sees it
		time.Sleep(100 * time.Millisecond)
		m = lastEMF(t, f, m2m)
	}
	wantMetrics(t, "store down", m, merge(base, map[string]any{"Outcome": "issued", "CacheStale": 1.0}))
	if s, _ := m["StaleSeconds"].(float64); s < 1 || s > 6 {
		t.Errorf("StaleSeconds %v, want the snapshot's age", m["StaleSeconds"])
	}
	time.Sleep(time.Until(down.Add(7 * time.Second)))
	wantMetrics(t, "beyond the maximum staleness", lastEMF(t, f, m2m), merge(base, map[string]any{"Outcome": "unavailable", "CacheNone": 1.0}))
	proxy.SetDown(false)

	// Over budget: roles only, and refused.
	p := examplePolicyOf(t)
	p.Limits = permissions.Limits{MaxTokenBytes: 120, OnOverflow: permissions.OverflowRolesOnly}
	rolesOnly := policyFileOf(t, p)
	p.Limits.OnOverflow = permissions.OverflowFail
	fail := policyFileOf(t, p)
	for _, c := range []struct {
		file string
		want map[string]any
	}{
		{rolesOnly, map[string]any{"Outcome": "issued", "RolesOnlyOverflows": 1.0}},
		{fail, map[string]any{"Outcome": "too_large", "RolesOnlyOverflows": 0.0}},
	} {
		g := lambdatest.Start(t, lambdatest.Build(t, "."), map[string]string{"PRETOKEN_POLICY_FILE": c.file, "PRETOKEN_TABLE": "",
			"AWS_LAMBDA_FUNCTION_NAME": "pretoken-emf"})
		wantMetrics(t, filepath.Base(c.file), lastEMF(t, g, staff), merge(base, c.want))
	}
}

// TestLambdaMetricsAtErrorLevel: at PRETOKEN_LOG_LEVEL=error an issued
// token, whose line is info, still emits its metrics.
func TestLambdaMetricsAtErrorLevel(t *testing.T) {
	g := lambdatest.Start(t, lambdatest.Build(t, "."), map[string]string{"PRETOKEN_POLICY_FILE": "../../examples/policy.yaml",
		"PRETOKEN_TABLE": "", "AWS_LAMBDA_FUNCTION_NAME": "pretoken-emf", "PRETOKEN_LOG_LEVEL": "error"})
	wantMetrics(t, "issued at level error", lastEMF(t, g, readFile(t, staffEvent)),
		map[string]any{"FunctionName": "pretoken-emf", "Tokens": 1.0, "Outcome": "issued"})
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func policyFileOf(t *testing.T, p *permissions.Policy) string {
	t.Helper()
	b, err := permissions.MarshalFile(p, "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "policy-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b)
	f.Close()
	return f.Name()
}
