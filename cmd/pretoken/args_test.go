package main

import (
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
