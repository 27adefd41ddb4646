package main

import (
	"slices"
	"strings"
	"testing"
)

// Every command that reads a policy file takes it as the argument or with
// -f (and --policy, the older spelling); plan and apply reach the table
// either way, so an unreachable table, not a usage error, stops them.
func TestPolicyFileEitherWay(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "x")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	event := exampleEvents + "/v2-signin-staff.json"
	commands := [][]string{
		{"validate"},
		{"simulate", "--summary", "--event", event},
		{"explain", "--client", "web"},
	}
	for _, cmd := range commands {
		var want string
		for i, form := range [][]string{{examplePolicy}, {"-f", examplePolicy}, {"--file", examplePolicy}, {"--policy", examplePolicy}} {
			args := append(append([]string{cmd[0]}, form...), cmd[1:]...)
			code, out, errOut := runCLI(t, args...)
			if code != 0 {
				t.Errorf("%v: code %d, stderr %q", args, code, errOut)
			}
			if i == 0 {
				want = out
			} else if out != want {
				t.Errorf("%v printed %q, want what the argument form printed, %q", args, out, want)
			}
		}
	}
	for _, cmd := range []string{"plan", "apply"} {
		for _, form := range [][]string{{examplePolicy}, {"-f", examplePolicy}} {
			args := append(append([]string{cmd}, form...), "--table", "pretoken", "--yes")
			if cmd == "plan" {
				args = args[:len(args)-1]
			}
			code, _, errOut := runCLI(t, args...)
			if code == exitUsage || !strings.Contains(errOut, "cannot reach DynamoDB") {
				t.Errorf("%v: code %d, stderr %q; want it to reach for the table", args, code, errOut)
			}
		}
		code, _, errOut := runCLI(t, cmd, "--table", "pretoken")
		if code != exitUsage || !strings.Contains(errOut, "pretoken "+cmd+" FILE (or -f FILE)") {
			t.Errorf("%s without a file: code %d, stderr %q", cmd, code, errOut)
		}
	}
	code, _, errOut := runCLI(t, "validate", "-f", examplePolicy, "other.yaml")
	if code != exitUsage || !strings.Contains(errOut, "name the policy file once") {
		t.Errorf("two files: code %d, stderr %q", code, errOut)
	}
}

// --version takes 1, v1 and V1_0 alike, in explain as in attach.
func TestEventVersionForms(t *testing.T) {
	var want string
	for i, v := range []string{"1", "v1", "V1", "V1_0", "v1_0", "1.0"} {
		code, out, errOut := runCLI(t, "explain", examplePolicy, "--client", "web", "--version", v)
		if code != 0 {
			t.Fatalf("--version %s: code %d, stderr %q", v, code, errOut)
		}
		if i == 0 {
			want = out
		} else if out != want {
			t.Errorf("--version %s printed %q, want %q", v, out, want)
		}
	}
	if !strings.Contains(want, "event V1 ") {
		t.Errorf("--version 1 did not make a V1 event:\n%s", want)
	}
	if code, _, errOut := runCLI(t, "explain", examplePolicy, "--client", "web", "--version", "V4_0"); code != exitUsage || !strings.Contains(errOut, "want 1, 2 or 3") {
		t.Errorf("--version V4_0: code %d, stderr %q", code, errOut)
	}
	for _, v := range []string{"1", "v1", "V1_0"} {
		var ev eventVersion
		if err := ev.UnmarshalText([]byte(v)); err != nil || ev.Name() != "V1_0" {
			t.Errorf("attach --version %s = %q, %v; want V1_0", v, ev.Name(), err)
		}
	}
}

// onlyWarnings returns the lines of stderr that are not warnings.
func onlyWarnings(stderr string) []string {
	var other []string
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if line != "" && !strings.HasPrefix(line, "warning: ") {
			other = append(other, line)
		}
	}
	return other
}

// A newcomer's typos in a preview each get one warning line on stderr;
// names the policy knows get none.
func TestPreviewWarnsOfWhatMatchesNothing(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"known names", []string{"--client", "1example23456789", "--group", "staff"}, nil},
		{"client typo", []string{"--client", "1example2345678", "--group", "staff"}, []string{
			`warning: client "1example2345678" has no profile in the policy's clients: the default profile applies (did you mean "1example23456789"?)`}},
		{"group typo and tenant without tenancy", []string{"--client", "1example23456789", "--group", "Staff", "--group", "nobody", "--tenant", "t1"}, []string{
			`warning: group "Staff" is in none of the policy's groups: it grants nothing (did you mean "staff"?)`,
			`warning: group "nobody" is in none of the policy's groups: it grants nothing`,
			`warning: tenant t1: the policy has no tenancy, so tokens carry no tenant and no tenant's roles; add tenancy: {active: stored} (or attribute:<name>)`}},
		{"machine", []string{"--client", "7m2mclient", "--version", "3", "--client-credentials"}, nil},
		{"not a machine", []string{"--client", "7m2mclien", "--version", "3", "--client-credentials"}, []string{
			`warning: client "7m2mclien" is not one of the policy's machines: its client-credentials token gets no roles (did you mean "7m2mclient"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, append([]string{"explain", examplePolicy}, tt.args...)...)
			var got []string
			if errOut != "" {
				got = strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
			}
			if code != 0 || !slices.Equal(got, tt.want) {
				t.Errorf("code %d, stderr:\n%s\nwant:\n%s", code, errOut, strings.Join(tt.want, "\n"))
			}
		})
	}
	ev := writeFile(t, "ev.json", `{"version": "2", "triggerSource": "TokenGeneration_HostedAuth", "userName": "a",
		"callerContext": {"clientId": "webstaf111"}, "request": {"userAttributes": {"sub": "s"}, "groupConfiguration": {"groupsToOverride": ["Staff"]}}}`)
	code, _, errOut := runCLI(t, "simulate", examplePolicy, "--summary", "--event", ev)
	want := ev + `: client "webstaf111" has no profile`
	if code != 0 || strings.Count(errOut, "\n") != 2 || !strings.Contains(errOut, "warning: "+want) || !strings.Contains(errOut, `group "Staff"`) {
		t.Errorf("simulate: code %d, stderr %q; want two warnings", code, errOut)
	}
}

func TestValidateNotesRolesNothingGrants(t *testing.T) {
	p := writeFile(t, "p.yaml", "roles:\n  viewer: {permissions: [a]}\n  reader: {permissions: [b]}\ngroups:\n  staff: [viewer]\n")
	code, out, errOut := runCLI(t, "validate", p)
	want := "note: " + p + `: role "reader" is granted by no group, default, machine client or IdP group: only assign and tenant memberships can give it` + "\n"
	if code != 0 || !strings.Contains(out, "valid") || errOut != want {
		t.Errorf("code %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
}

// assign and unassign refuse an email or a username where a sub is meant,
// before they reach the table, and say how to find the sub.
func TestAssignRefusesWhatIsNotASub(t *testing.T) {
	for _, cmd := range []string{"assign", "unassign"} {
		for _, who := range []string{"alice@example.com", "alice"} {
			code, _, errOut := runCLI(t, cmd, "--table", "pretoken", who, "reader")
			if code != exitUsage || !strings.Contains(errOut, "aws cognito-idp list-users") || !strings.Contains(errOut, "--force") {
				t.Errorf("%s %s: code %d, stderr %q", cmd, who, code, errOut)
			}
		}
	}
	if !strings.Contains(func() string {
		_, _, e := runCLI(t, "assign", "--table", "pretoken", "alice@example.com", "r")
		return e
	}(), `--filter 'email = "alice@example.com"'`) {
		t.Error("an email gets no email filter")
	}
	// --force, or a sub, passes the check and goes on to the table.
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "x")
	for _, args := range [][]string{{"alice", "--force"}, {"3f2c1a9e-0b7d-4c55-9f3e-2a1b0c9d8e7f"}} {
		_, _, errOut := runCLI(t, append(append([]string{"assign", "--table", "pretoken", "--actor", "t"}, args...), "reader")...)
		if !strings.Contains(errOut, "cannot reach DynamoDB") {
			t.Errorf("assign %v: stderr %q; want it to reach for the table", args, errOut)
		}
	}
}
