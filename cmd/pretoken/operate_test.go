package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/permissions"
)

// opsTable is a migrated table holding the example policy at version 1.
func opsTable(t *testing.T) string {
	t.Helper()
	awsEnv(t)
	t.Setenv("PRETOKEN_ACTOR", "test-setup")
	table := dynamotest.Table(t, dynamotest.Client(t))
	if code, _, errOut := runCLI(t, "apply", "--table", table, "-f", examplePolicy); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	return table
}

// export returns the table's policy file, to compare the table before and after.
func export(t *testing.T, table string) string {
	t.Helper()
	code, out, errOut := runCLI(t, "export", "--table", table)
	if code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	return out
}

// policyFile writes the example policy, changed by mutate, as a file.
func policyFile(t *testing.T, mutate func(p *permissions.Policy)) string {
	t.Helper()
	p, err := permissions.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	mutate(p)
	b, err := permissions.MarshalFile(p, "")
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "policy.yaml", string(b))
}

func TestPlan(t *testing.T) {
	table := opsTable(t)
	code, out, _ := runCLI(t, "plan", "--table", table, "-f", examplePolicy)
	if code != 0 || out != "no changes: table "+table+" (version 1) already holds this policy\n" {
		t.Errorf("no changes: code %d, %q", code, out)
	}
	tests := []struct {
		name   string
		mutate func(p *permissions.Policy)
		want   string
	}{
		{"role added", func(p *permissions.Policy) {
			p.Roles["auditor"] = permissions.Role{Permissions: []string{"audit:read"}}
		}, "+ role auditor"},
		{"role removed", func(p *permissions.Policy) { delete(p.Roles, "reporter"); delete(p.Machines, "7m2mclient") }, "- role reporter\n- machine 7m2mclient"},
		{"role permissions and parents", func(p *permissions.Policy) {
			p.Roles["editor"] = permissions.Role{Description: "Create and change orders", Permissions: []string{"orders:write", "orders:delete"}, Inherits: []string{"refunder"}}
		}, "~ role editor: +permissions orders:delete; +inherits refunder; -inherits viewer"},
		{"group mapping", func(p *permissions.Policy) { p.Groups["staff"] = []string{"refunder"} }, "~ group staff: +roles refunder; -roles editor"},
		{"group added", func(p *permissions.Policy) { p.Groups["auditors"] = []string{"viewer"} }, "+ group auditors"},
		{"defaults", func(p *permissions.Policy) { p.Defaults.Roles = nil }, "~ defaults: -roles viewer"},
		{"machine", func(p *permissions.Policy) { p.Machines["batch01"] = []string{"viewer"} }, "+ machine batch01"},
		{"client", func(p *permissions.Policy) {
			c := p.Clients["default"]
			c.AccessToken.ScopePrefix = "api/"
			p.Clients["default"] = c
		}, `~ client default: accessToken.scopePrefix "orders-api/" -> "api/"`},
		{"limits", func(p *permissions.Policy) { p.Limits.MaxTokenBytes = 4096 }, "~ limits: maxTokenBytes 2500 -> 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := policyFile(t, tt.mutate)
			code, out, errOut := runCLI(t, "plan", "--table", table, "-f", f)
			if code != 2 || errOut != "" && !strings.HasPrefix(errOut, "note: ") {
				t.Fatalf("code %d, stderr %q; want 2", code, errOut)
			}
			n := strings.Count(tt.want, "\n") + 1
			if want := tt.want + "\nplan: " + strconv.Itoa(n) + " change(s) to table " + table + " at version 1\n"; out != want {
				t.Errorf("plan:\n%s\nwant:\n%s", out, want)
			}
		})
	}

	f := policyFile(t, func(p *permissions.Policy) { delete(p.Groups, "support") })
	code, out, _ = runCLI(t, "plan", "--table", table, "-f", f, "--json")
	var plan struct {
		Table, Version string
		Changes        []permissions.Change
	}
	if err := json.Unmarshal([]byte(out), &plan); code != 2 || err != nil {
		t.Fatalf("--json: code %d, %v: %s", code, err, out)
	}
	if diff := cmp.Diff([]permissions.Change{{Op: "-", Kind: "group", Name: "support"}}, plan.Changes); diff != "" || plan.Version != "1" || plan.Table != table {
		t.Errorf("--json plan %+v:\n%s", plan, diff)
	}
	if code, _, errOut := runCLI(t, "plan", "--table", table, "-f", writeFile(t, "bad.yaml", "roles: [\n")); code != 1 || errOut == "" {
		t.Errorf("malformed file: code %d", code)
	}
}

func TestApplyDryRunIdempotenceAndAudit(t *testing.T) {
	table := opsTable(t)
	history := func() []map[string]any {
		t.Helper()
		code, out, errOut := runCLI(t, "history", "--table", table, "--json")
		if code != 0 {
			t.Fatalf("history: %s", errOut)
		}
		var recs []map[string]any
		if err := json.Unmarshal([]byte(out), &recs); err != nil {
			t.Fatal(err)
		}
		return recs
	}
	if h := history(); len(h) != 1 || h[0]["actor"] != "test-setup" || h[0]["oldVersion"] != "0" || h[0]["newVersion"] != "1" {
		t.Fatalf("after the first apply: %v", h)
	}
	code, out, _ := runCLI(t, "apply", "--table", table, "-f", examplePolicy)
	if code != 0 || !strings.HasPrefix(out, "no changes") || len(history()) != 1 {
		t.Errorf("second apply: code %d, %q, %d records", code, out, len(history()))
	}
	f := policyFile(t, func(p *permissions.Policy) { delete(p.Groups, "support") })
	before := export(t, table)
	code, out, _ = runCLI(t, "apply", "--table", table, "-f", f, "--dry-run")
	if code != 0 || out != "- group support\nplan: 1 change(s) to table "+table+" at version 1\ndry run: nothing was written\n" || export(t, table) != before || len(history()) != 1 {
		t.Errorf("dry run: code %d, %q", code, out)
	}
	code, out, errOut := runCLI(t, "apply", "--table", table, "-f", f, "--actor", "release-pipeline", "--expect-version", "1")
	if code != 0 || !strings.HasSuffix(out, "policy version 1 -> 2\n") {
		t.Fatalf("apply: code %d, %q, %q", code, out, errOut)
	}
	h := history()
	if len(h) != 2 || h[0]["actor"] != "release-pipeline" || h[0]["oldVersion"] != "1" || h[0]["newVersion"] != "2" ||
		cmp.Diff([]any{"- group support"}, h[0]["changes"]) != "" {
		t.Errorf("audit record of the apply: %v", h[0])
	}
	// Without --actor or PRETOKEN_ACTOR, and no reachable STS: $USER.
	t.Setenv("PRETOKEN_ACTOR", "")
	t.Setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:"+itoa(lambdatest.FreePort(t)))
	t.Setenv("USER", "maria")
	if code, _, errOut := runCLI(t, "apply", "--table", table, "-f", examplePolicy); code != 0 {
		t.Fatal(errOut)
	}
	if h := history(); h[0]["actor"] != "maria" {
		t.Errorf("fallback actor = %v, want $USER", h[0]["actor"])
	}
	code, out, _ = runCLI(t, "history", "--table", table, "--limit", "1")
	if code != 0 || strings.Count(out, " -> ") != 1 || !strings.Contains(out, "maria  apply policy  2 -> 3") {
		t.Errorf("history --limit 1: %q", out)
	}
	code, out, _ = runCLI(t, "history", "--table", table, "--since", "2000-01-01")
	if code != 0 || strings.Count(out, "apply policy") != 3 {
		t.Errorf("history --since: %q", out)
	}
	if code, _, errOut := runCLI(t, "history", "--table", table, "--since", "yesterday"); code != exitUsage || !strings.Contains(errOut, "--since") {
		t.Errorf("bad --since: %d %q", code, errOut)
	}
}

func TestExportRoundTrip(t *testing.T) {
	table := opsTable(t)
	dir := t.TempDir()
	first := filepath.Join(dir, "first.yaml")
	if code, out, errOut := runCLI(t, "export", "--table", table, "-o", first); code != 0 || out != "" {
		t.Fatalf("export -o: %d %q %q", code, out, errOut)
	}
	b, _ := os.ReadFile(first)
	if string(b) != export(t, table) {
		t.Error("export -o and export to stdout differ")
	}
	if !strings.HasPrefix(string(b), "# pretoken policy exported from table "+table+" at version 1\n") {
		t.Errorf("export header: %q", strings.SplitN(string(b), "\n", 2)[0])
	}
	code, out, _ := runCLI(t, "apply", "--table", table, "-f", first)
	if code != 0 || !strings.HasPrefix(out, "no changes") {
		t.Errorf("applying the export: %d %q", code, out)
	}
	if again := export(t, table); again != string(b) {
		t.Errorf("export -> apply -> export is not byte-identical:\n%s", cmp.Diff(string(b), again))
	}
}

func TestBadFilesWriteNothing(t *testing.T) {
	table := opsTable(t)
	before := export(t, table)
	for name, src := range map[string]string{
		"malformed":      "roles:\n  a: [x\n",
		"unknown key":    "roles:\n  a: {permission: [x]}\n",
		"wrong type":     "roles:\n  a: {permissions: yes}\n",
		"reserved claim": "clients:\n  default:\n    idToken: {claims: {iss: roles}}\n",
		"unknown role":   "groups:\n  g: [nope]\n",
	} {
		code, out, errOut := runCLI(t, "apply", "--table", table, "-f", writeFile(t, "bad.yaml", src))
		if code != 1 || out != "" || !strings.Contains(errOut, "nothing was applied") {
			t.Errorf("%s: code %d, stdout %q, stderr %q", name, code, out, errOut)
		}
	}
	other := policyFile(t, func(p *permissions.Policy) { p.Limits.MaxTokenBytes = 100 })
	if code, _, errOut := runCLI(t, "apply", "--table", table, "-f", other, "--expect-version", "9"); code != exitConflict || !strings.Contains(errOut, "conflict") {
		t.Errorf("--expect-version mismatch: %d %q", code, errOut)
	}
	if after := export(t, table); after != before {
		t.Errorf("a failed command changed the table:\n%s", cmp.Diff(before, after))
	}
}

func TestAssignUnassignUser(t *testing.T) {
	table := opsTable(t)
	code, out, errOut := runCLI(t, "assign", "--table", table, "00000000-0000-4000-8000-000000000042", "refunder", "reporter")
	if code != 0 || out != "user 00000000-0000-4000-8000-000000000042: roles [] -> [refunder reporter]\n" {
		t.Fatalf("assign: %d %q %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, "user", "--table", table, "00000000-0000-4000-8000-000000000042")
	if code != 0 || !strings.Contains(out, "direct roles:   refunder reporter\n") || !strings.Contains(out, "with inherited: refunder reporter viewer\n") ||
		!strings.Contains(out, "permissions:    catalog:read orders:read orders:refund reports:read\n") {
		t.Errorf("user: %q", out)
	}
	code, _, errOut = runCLI(t, "assign", "--table", table, "00000000-0000-4000-8000-000000000042", "admin", "superuser")
	if code != 1 || !strings.Contains(errOut, `unknown role: superuser (the stored policy`) {
		t.Errorf("unknown role: %d %q", code, errOut)
	}
	code, out, _ = runCLI(t, "unassign", "--table", table, "00000000-0000-4000-8000-000000000042", "reporter")
	if code != 0 || out != "user 00000000-0000-4000-8000-000000000042: roles [refunder reporter] -> [refunder]\n" {
		t.Errorf("unassign: %d %q", code, out)
	}
	code, out, errOut = runCLI(t, "explain", "--table", table, "--user", "00000000-0000-4000-8000-000000000042", "--client", "web", "--group", "staff")
	if code != 0 || !strings.Contains(out, "assigned:     refunder\n") || !strings.Contains(out, "roles:        editor refunder viewer\n") ||
		!strings.Contains(out, "orders-api/orders:refund") {
		t.Errorf("explain --table --user:\n%s", out)
	}
	// The function reads assignments only when told to: the preview says so.
	if !strings.Contains(errOut, "warning: user 00000000-0000-4000-8000-000000000042's assigned roles (refunder) reach tokens only where the function runs with PRETOKEN_USER_ASSIGNMENTS=true") {
		t.Errorf("explain --table --user: stderr %q, want the PRETOKEN_USER_ASSIGNMENTS warning", errOut)
	}
	code, out, _ = runCLI(t, "history", "--table", table)
	if code != 0 || !strings.Contains(out, "test-setup  unassign user 00000000-0000-4000-8000-000000000042  1 -> 2\n    roles [refunder reporter] -> [refunder]\n") {
		t.Errorf("history of assignments:\n%s", out)
	}
	if code, _, errOut := runCLI(t, "explain", "--policy", examplePolicy, "--user", "00000000-0000-4000-8000-000000000042", "--client", "web"); code != exitUsage || !strings.Contains(errOut, "--user needs --table") {
		t.Errorf("--user without --table: %d %q", code, errOut)
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, cmd := range [][]string{{"validate"}, {"simulate"}, {"explain"}, {"migrate"}, {"migrate", "status"}, {"plan"}, {"apply"},
		{"export"}, {"history"}, {"assign"}, {"unassign"}, {"user"}} {
		code, out, _ := runCLI(t, append(cmd, "--help")...)
		if code != 0 || !strings.Contains(out, "Usage: pretoken "+strings.Join(cmd, " ")) {
			t.Errorf("%v --help: code %d, %q", cmd, code, out)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// runTerminal runs the CLI as on a terminal, answering its question with answer.
func runTerminal(t *testing.T, answer string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	code = run(args, &env{stdin: strings.NewReader(answer), terminal: true, stdout: &out, stderr: &errOut})
	return code, out.String(), errOut.String()
}

// TestApplyForAFirstDay: on a terminal apply shows the plan and asks; --yes
// and scripts do not ask; a file that would remove every role needs
// --remove-all; --dry-run says nothing was written; export -o keeps an
// existing file unless --force.
func TestApplyForAFirstDay(t *testing.T) {
	table := opsTable(t)
	before := export(t, table)
	changed := policyFile(t, func(p *permissions.Policy) { p.Limits.MaxTokenBytes = 3000 })

	code, out, _ := runTerminal(t, "n\n", "apply", "--table", table, "-f", changed)
	if code != 0 || !strings.Contains(out, "~ limits: maxTokenBytes") || !strings.Contains(out, "Apply 1 change(s) to table "+table+"? [y/N] ") ||
		!strings.Contains(out, "not applied: nothing was written") || export(t, table) != before {
		t.Errorf("answered no: code %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "apply", "--table", table, "-f", changed, "--dry-run")
	if code != 0 || !strings.HasSuffix(out, "dry run: nothing was written\n") || export(t, table) != before {
		t.Errorf("dry run: code %d\n%s", code, out)
	}
	code, out, _ = runTerminal(t, "y\n", "apply", "--table", table, "-f", changed)
	if code != 0 || !strings.Contains(out, "applied: table "+table+" policy version 1 -> 2") {
		t.Errorf("answered yes: code %d\n%s", code, out)
	}
	back := policyFile(t, func(p *permissions.Policy) {})
	if code, out, _ = runTerminal(t, "", "apply", "--table", table, "-f", back, "--yes"); code != 0 || strings.Contains(out, "[y/N]") || !strings.Contains(out, "-> 3") {
		t.Errorf("--yes: code %d\n%s", code, out)
	}

	empty := writeFile(t, "empty.yaml", "limits: {maxTokenBytes: 3000}\n")
	code, _, errOut := runCLI(t, "apply", "--table", table, "-f", empty)
	if code != exitUsage || !strings.Contains(errOut, "--remove-all") {
		t.Errorf("a file without roles: code %d, %q", code, errOut)
	}
	if code, out, _ = runCLI(t, "apply", "--table", table, "-f", empty, "--remove-all"); code != 0 || !strings.Contains(out, "- role viewer") {
		t.Errorf("--remove-all: code %d\n%s", code, out)
	}

	file := writeFile(t, "policy.yaml", "# my comments\n")
	code, _, errOut = runCLI(t, "export", "--table", table, "-o", file)
	if got, _ := os.ReadFile(file); code != exitUsage || !strings.Contains(errOut, "--force") || string(got) != "# my comments\n" {
		t.Errorf("export over a file: code %d, %q, file now %q", code, errOut, got)
	}
	if code, _, _ = runCLI(t, "export", "--table", table, "-o", file, "--force"); code != 0 {
		t.Errorf("export --force: code %d", code)
	}
}
