package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/internal/awsfake"
)

const (
	fakePool    = "us-east-1_EXAMPLE"
	fakeTrigger = "arn:aws:lambda:us-east-1:123456789012:function:pretoken-prod-trigger"
)

// strictAWS serves the deploy fixture's pool (a DescribeUserPool answer
// with every member set, UnusedAccountValidityDays included) and the
// trigger function from a strict fake of Cognito and Lambda, and points the
// CLI at it.
func strictAWS(t *testing.T, mutate func(pool map[string]any)) *awsfake.Fake {
	t.Helper()
	b, err := os.ReadFile("../../deploy/testdata/describe-user-pool.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ UserPool map[string]any }
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(d.UserPool)
	}
	f := awsfake.New(t)
	f.AddPool(d.UserPool)
	f.AddFunction(awsfake.Function{ARN: fakeTrigger, Timeout: 5, Role: "arn:aws:iam::123456789012:role/pretoken-prod-trigger",
		Env: map[string]string{"PRETOKEN_TABLE": "pretoken-prod"}})
	f.Env(t)
	return f
}

// TestAttachCLI: the dry run shows the trigger's settings and the
// permission and writes nothing; attach changes only them; a second attach
// changes nothing; detach gives the pool and the function back as they were.
func TestAttachCLI(t *testing.T) {
	f := strictAWS(t, nil)
	before := f.Pool(fakePool)
	code, out, errOut := runCLI(t, "attach", "--user-pool-id", fakePool, "--function-arn", fakeTrigger, "--version", "V1_0", "--dry-run")
	wantLines := []string{
		`~ LambdaConfig.PreTokenGeneration: (not set) -> "` + fakeTrigger + `"`,
		`~ LambdaConfig.PreTokenGenerationConfig.LambdaArn: (not set) -> "` + fakeTrigger + `"`,
		`~ LambdaConfig.PreTokenGenerationConfig.LambdaVersion: (not set) -> "V1_0"`,
		`~ invoke permission pretoken-cognito-` + fakePool + ` would be added (principal cognito-idp.amazonaws.com, SourceArn arn:aws:cognito-idp:us-east-1:123456789012:userpool/` + fakePool + `, SourceAccount 123456789012)`,
		`dry run: 3 setting(s) would change on user pool ` + fakePool + `; nothing was written`,
	}
	if diff := cmp.Diff(strings.Join(wantLines, "\n")+"\n", out); code != 0 || diff != "" {
		t.Errorf("dry run: exit %d, stderr %q (-want +got):\n%s", code, errOut, diff)
	}
	if w := f.Writes(); len(w) != 0 {
		t.Errorf("the dry run wrote %v", w)
	}

	code, out, errOut = runCLI(t, "attach", "--user-pool-id", fakePool, "--function-arn", fakeTrigger, "--version", "V1_0")
	if code != 0 || !strings.Contains(out, "attached the trigger to user pool "+fakePool) || !strings.Contains(out, "pretoken doctor") {
		t.Fatalf("attach: exit %d, %q, %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, "attach", "--user-pool-id", fakePool, "--function-arn", fakeTrigger, "--version", "V1_0")
	if code != 0 || !strings.Contains(out, "no changes") || !strings.Contains(out, "already there") {
		t.Errorf("second attach: exit %d, %q", code, out)
	}
	if code, out, errOut := runCLI(t, "attach", "--user-pool-id", fakePool, "--detach"); code != 0 || !strings.Contains(out, "detached") || !strings.Contains(out, "removed") {
		t.Fatalf("detach: exit %d, %q, %q", code, out, errOut)
	}
	after := f.Pool(fakePool)
	delete(before["AdminCreateUserConfig"].(map[string]any), "UnusedAccountValidityDays") // refused by UpdateUserPool
	delete(before, "LastModifiedDate")
	delete(after, "LastModifiedDate")
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("attach then detach did not give back the pool as it was (-before +after):\n%s", diff)
	}
	if st := f.Statements(fakeTrigger, ""); len(st) != 0 {
		t.Errorf("statements left: %v", st)
	}
	if !cmp.Equal(f.Writes(), []string{"lambda:AddPermission", "cognito-idp:UpdateUserPool", "cognito-idp:UpdateUserPool", "lambda:RemovePermission"}) {
		t.Errorf("writes %v", f.Writes())
	}
}

func TestAttachCLIRefusals(t *testing.T) {
	strictAWS(t, func(p map[string]any) { p["UserPoolTier"] = "LITE" })
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--function-arn", fakeTrigger, "--version", "V2_0"}, "--upgrade-plan"},
		{[]string{"--function-arn", "arn:aws:lambda:us-east-1:210987654321:function:pretoken-prod-trigger", "--version", "V1_0"}, "different accounts"},
		{[]string{"--function-arn", "arn:aws:lambda:eu-west-1:123456789012:function:pretoken-prod-trigger", "--version", "V1_0"}, "different regions"},
	} {
		code, out, errOut := runCLI(t, append([]string{"attach", "--user-pool-id", fakePool}, c.args...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q", c.args, code, out, errOut, c.want)
		}
	}
}
