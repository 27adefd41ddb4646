package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/trigger"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	examplePolicy = "../../examples/policy.yaml"
	exampleEvents = "../../examples/events"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut})
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidate(t *testing.T) {
	code, out, errOut := runCLI(t, "validate", "-f", examplePolicy)
	if code != 0 || !strings.Contains(out, "valid (5 roles") || errOut != "" ||
		!strings.Contains(out, "trusted user attributes (leave each out of every app client's write attributes):\n  custom:tenant_id  claim tenant (client default, idToken)\n") {
		t.Errorf("valid policy: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	bad := writeFile(t, "bad.yaml", "roles:\n  a: {inherits: [ghost]}\n  b: {permissions: [\"x y\"]}\ngroups:\n  g: [a]\n  g: [b]\n")
	code, out, errOut = runCLI(t, "validate", "-f", bad)
	if code != 1 || out != "" {
		t.Errorf("duplicate key: code %d, stdout %q", code, out)
	}
	if want := bad + ":6:3: groups.g: duplicate key \"g\" (first at line 5)\n" + bad + ": 1 problem(s)\n"; errOut != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want)
	}

	bad = writeFile(t, "bad.yaml", "roles:\n  a: {inherits: [ghost]}\n  b: {permissions: [\"x y\"]}\nextra: 1\n")
	code, _, errOut = runCLI(t, "validate", "-f", bad)
	if code != 1 || !strings.Contains(errOut, bad+`:4:1: extra: unknown key "extra"`) {
		t.Errorf("unknown key: code %d, stderr %q", code, errOut)
	}
	bad = writeFile(t, "bad.yaml", "roles:\n  a: {inherits: [ghost]}\n  b: {permissions: [\"x y\"]}\n")
	code, _, errOut = runCLI(t, "validate", "-f", bad)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 1 || len(lines) != 3 || lines[2] != bad+": 2 problem(s)" || !strings.HasPrefix(lines[0], bad+`:2:18: roles.a.inherits[0]: unknown role "ghost"`) ||
		!strings.HasPrefix(lines[1], bad+`:3:21: roles.b.permissions[0]: permission "x y"`) {
		t.Errorf("every problem with its place: code %d, stderr:\n%s", code, errOut)
	}

	code, _, errOut = runCLI(t, "validate", "-f", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: code %d, stderr %q", code, errOut)
	}
}

// TestSimulateIsTheLambdaAnswer checks that simulate prints exactly what the
// handler that the Lambda runs returns.
func TestSimulateIsTheLambdaAnswer(t *testing.T) {
	snap, err := permissions.LoadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	h := trigger.New(trigger.Static{S: snap}, zerolog.Nop())
	events, _ := filepath.Glob(filepath.Join(exampleEvents, "*.json"))
	if len(events) < 4 {
		t.Fatalf("want at least 4 example events, have %d", len(events))
	}
	for _, ev := range events {
		payload, err := os.ReadFile(ev)
		if err != nil {
			t.Fatal(err)
		}
		want, err := h.Invoke(context.Background(), payload)
		if err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
		code, out, errOut := runCLI(t, "simulate", "--policy", examplePolicy, "--event", ev)
		if code != 0 || onlyWarnings(errOut) != nil {
			t.Fatalf("%s: code %d, stderr %q", ev, code, errOut)
		}
		if diff := cmp.Diff(string(want)+"\n", out); diff != "" {
			t.Errorf("%s (-lambda +simulate):\n%s", ev, diff)
		}
	}
}

func TestSimulateErrors(t *testing.T) {
	malformed := writeFile(t, "ev.json", `{"version": "2", "request": {"groupConfiguration": {"groupsToOverride": "admins"}}}`)
	badPolicy := writeFile(t, "p.yaml", "roles:\n  a: {inherits: [x, y]}\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"malformed event", []string{"--policy", examplePolicy, "--event", malformed}, "malformed event: json: cannot unmarshal"},
		{"invalid policy", []string{"--policy", badPolicy, "--event", malformed}, `invalid policy ` + badPolicy + `:2:18: roles.a.inherits[0]: unknown role "x" (and 1 more; see pretoken validate -f`},
		{"unsupported version", []string{"--policy", examplePolicy, "--event", writeFile(t, "v.json", `{"version": "7"}`)}, "the trigger answered with an error: unsupported event version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"simulate"}, tt.args...)...)
			if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("code %d, stdout %q, stderr %q; want one line with %q", code, out, errOut, tt.want)
			}
		})
	}
}

// TestDemo pins what `make demo` prints: the example policy on the example events.
func TestDemo(t *testing.T) {
	events, _ := filepath.Glob(filepath.Join(exampleEvents, "*.json"))
	args := []string{"simulate", "--summary", "--policy", examplePolicy}
	for _, ev := range events {
		args = append(args, "--event", ev)
	}
	code, out, errOut := runCLI(t, args...)
	if code != 0 || onlyWarnings(errOut) != nil {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	out = strings.ReplaceAll(out, exampleEvents+"/", "")
	golden := "testdata/demo.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), out); diff != "" {
		t.Errorf("demo output (-golden +got):\n%s", diff)
	}
	for _, s := range []string{
		"+ scopes: orders-api/catalog:read orders-api/orders:read orders-api/orders:write", // staff through the allow-list
		`+ app_roles: "viewer"`, // V1: a string
		"+ scopes: orders-api/orders:read orders-api/reports:read", // machine client
	} {
		if !strings.Contains(out, s) {
			t.Errorf("demo output lacks %q", s)
		}
	}
}

func TestExplain(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"staff on the web client, V2", []string{"--client", "web", "--group", "staff", "--attr", "custom:tenant_id=t9"}, []string{
			`client profile "default"`,
			"roles:        editor viewer",
			"permissions:  catalog:read orders:read orders:write",
			`  + tenant: "t9"`,
			"  + scopes: orders-api/catalog:read orders-api/orders:read orders-api/orders:write",
			"  - scopes: aws.cognito.signin.user.admin",
			"groups kept as Cognito sent them: staff",
		}},
		{"admin console, V1", []string{"--client", "1example23456789", "--group", "admins", "--version", "1"}, []string{
			`client profile "1example23456789"`,
			`  + app_roles: "admin editor refunder viewer"`,
			`  + app_groups: "admins"`,
			"access token: unchanged (V1 events change the ID token only)",
		}},
		{"machine client", []string{"--client", "7m2mclient", "--version", "3", "--client-credentials"}, []string{
			"roles:        reporter",
			"event V3 TokenGeneration_ClientCredentials, client 7m2mclient, machine client (client credentials), groups: (none)",
			"  + scopes: orders-api/orders:read orders-api/reports:read",
		}},
		{"unknown groups grant nothing beyond defaults", []string{"--client", "web", "--group", "nobody"}, []string{
			"roles:        viewer",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"explain", "--policy", examplePolicy}, tt.args...)...)
			if code != 0 || onlyWarnings(errOut) != nil {
				t.Fatalf("code %d, stderr %q", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w+"\n") {
					t.Errorf("output lacks line %q:\n%s", w, out)
				}
			}
		})
	}
	code, _, errOut := runCLI(t, "explain", "--policy", examplePolicy, "--client", "7m2mclient", "--client-credentials")
	if code != exitUsage || !strings.Contains(errOut, "--client-credentials needs --version 3") {
		t.Errorf("client credentials on V2: code %d, stderr %q", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	for _, cmd := range []string{"validate", "simulate", "explain"} {
		code, out, _ := runCLI(t, cmd, "--help")
		if code != 0 || !strings.Contains(out, "Usage: pretoken "+cmd) {
			t.Errorf("%s --help: code %d, stdout %q", cmd, code, out)
		}
	}
	code, _, errOut := runCLI(t, "frobnicate")
	if code != exitUsage || strings.Count(errOut, "\n") != 1 {
		t.Errorf("unknown command: code %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "validate")
	if code != exitUsage || !strings.Contains(errOut, "pretoken validate FILE (or -f FILE)") {
		t.Errorf("missing file: code %d, stderr %q", code, errOut)
	}
	if code, out, _ := runCLI(t, "validate", examplePolicy); code != 0 || !strings.Contains(out, "valid") {
		t.Errorf("validate FILE: code %d, %q", code, out)
	}
	if code, out, _ := runCLI(t, "--version"); code != 0 || !strings.HasPrefix(out, "pretoken ") {
		t.Errorf("--version: code %d, %q", code, out)
	}
	for _, args := range [][]string{
		{"apply", "--table", "pretoken", "-f", examplePolicy, "--expect-version", "abc"},
		{"apply", "--table", "pretoken", "-f", examplePolicy, "--expect-version", "-1"},
		{"history", "--table", "pretoken", "--since", "yesterday"},
		{"plan", "--table", "t", "-f", examplePolicy},
		{"explain", "--client", "web"},
	} {
		if code, _, errOut := runCLI(t, args...); code != exitUsage || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: code %d, stderr %q; want a usage error (%d) in one line", args, code, errOut, exitUsage)
		}
	}
	// Help texts say each thing once.
	for _, cmd := range []string{"apply", "attach", "explain", "export", "history", "migrate", "plan", "simulate", "validate", "iam-policy", "assign"} {
		_, out, _ := runCLI(t, cmd, "--help")
		for _, line := range strings.Split(out, "\n") {
			if strings.Count(line, "PRETOKEN_") > 1 {
				t.Errorf("%s --help names a variable twice: %q", cmd, line)
			}
		}
	}
}

func TestSimulateSaysWhyNothing(t *testing.T) {
	p := writeFile(t, "p.yaml", "roles:\n  viewer: {permissions: [orders:read]}\ndefaults: {roles: [viewer]}\nclients:\n  default:\n    accessToken: {scopes: true}\n")
	code, out, errOut := runCLI(t, "simulate", "--summary", "--policy", p, "--event", "../../examples/events/v1-signin.json")
	if code != 0 || !strings.Contains(out, "nothing added: a V1 event changes only the ID token, and this client's idToken profile gives this user no claims") {
		t.Errorf("code %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
}

// TestSimulateURL sends the example events to the trigger binary running
// under aws-lambda-rie and expects what the in-process handler answers.
func TestSimulateURL(t *testing.T) {
	fn := lambdatest.Start(t, lambdatest.Build(t, "../trigger"), map[string]string{"PRETOKEN_POLICY_FILE": examplePolicy, "PRETOKEN_TABLE": ""})
	events, _ := filepath.Glob(filepath.Join(exampleEvents, "*.json"))
	args := func(target ...string) []string {
		a := append([]string{"simulate"}, target...)
		for _, ev := range events {
			a = append(a, "--event", ev)
		}
		return a
	}
	_, want, _ := runCLI(t, args("--policy", examplePolicy)...)
	code, got, errOut := runCLI(t, args("--url", fn.URL)...)
	if code != 0 || errOut != "" {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-in process +through the Lambda):\n%s", diff)
	}
	bad := writeFile(t, "bad.json", `{"version": "2", "request": []}`)
	code, _, errOut = runCLI(t, "simulate", "--url", fn.URL, "--event", bad)
	if code != 1 || !strings.Contains(errOut, "malformed event: json: cannot unmarshal array") {
		t.Errorf("malformed through the Lambda: code %d, %q", code, errOut)
	}
}

func TestCompile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "policy.snapshot")
	code, stdout, stderr := runCLI(t, "compile", examplePolicy, "-o", out)
	if code != 0 || !strings.Contains(stdout, "compiled to "+out) || stderr != "" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	snap, err := permissions.ServeFile(out)
	if err != nil {
		t.Fatal(err)
	}
	yaml, err := permissions.LoadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version() != yaml.Version() {
		t.Errorf("compiled version %s, YAML %s: the same policy must carry the same label", snap.Version(), yaml.Version())
	}
	bad := writeFile(t, "bad.yaml", "roles:\n  a: {inherits: [ghost]}\n")
	if code, _, stderr := runCLI(t, "compile", bad, "-o", out); code != 1 || !strings.Contains(stderr, `unknown role "ghost"`) {
		t.Errorf("invalid policy: code %d, stderr %q", code, stderr)
	}
}
