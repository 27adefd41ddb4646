package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/deploy"
	"github.com/pretoken/pretoken/internal/awsfake"
	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/permissions"
)

// TestCLIIAMActionsFromEvidence runs every table command through a proxy
// that records the IAM action of each DynamoDB request, and checks the
// records against the policies `pretoken iam-policy` prints: each read-only
// command needs nothing beyond the readonly policy, every command nothing
// beyond the admin policy, and the admin policy grants nothing that no
// command calls.
func TestCLIIAMActionsFromEvidence(t *testing.T) {
	awsEnv(t)
	proxy := dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.URL)
	t.Setenv("PRETOKEN_ACTOR", "iam-test") // no STS call: it would leave this machine
	table := dynamotest.NewName("pretoken-iam")
	t.Setenv("PRETOKEN_TABLE", table)
	changed := policyFile(t, func(p *permissions.Policy) {
		r := p.Roles["editor"]
		r.Permissions = append(r.Permissions, "orders:cancel")
		p.Roles["editor"] = r
	})
	const sub = "11111111-1111-4111-8111-111111111111"
	steps := []struct {
		args     []string
		readonly bool
	}{
		{[]string{"migrate", "status"}, true},
		{[]string{"migrate"}, false},
		{[]string{"apply", "-f", examplePolicy}, false},
		{[]string{"apply", "-f", changed}, false}, // replaces a generation: the clean-up deletes items
		{[]string{"plan", "-f", examplePolicy}, true},
		{[]string{"export"}, true},
		{[]string{"assign", sub, "refunder"}, false},
		{[]string{"unassign", sub, "refunder"}, false},
		{[]string{"assign", sub, "viewer", "--tenant", "acme"}, false},
		{[]string{"tenant", "use", sub, "acme"}, false},
		{[]string{"tenant", "members", "acme"}, true},
		{[]string{"unassign", sub, "viewer", "--tenant", "acme"}, false},
		{[]string{"user", sub}, true},
		{[]string{"history"}, true},
		{[]string{"check"}, false}, // the one Scan: admin only
		{[]string{"explain", "--table", table, "--user", sub, "--client", "4webappclient0000", "--group", "staff"}, true},
	}
	admin, readonly := deploy.Actions(deploy.Admin), deploy.Actions(deploy.Readonly)
	called := map[string]bool{}
	for _, s := range steps {
		code, _, errOut := runCLI(t, s.args...)
		if code != 0 && code != 2 { // plan exits 2 for changes
			t.Fatalf("pretoken %s: exit %d: %s", strings.Join(s.args, " "), code, errOut)
		}
		actions := proxy.Actions()
		if len(actions) == 0 {
			t.Errorf("pretoken %s made no DynamoDB request through the proxy", strings.Join(s.args, " "))
		}
		for _, a := range actions {
			called[a] = true
			if !slices.Contains(admin, a) {
				t.Errorf("pretoken %s called %s, which the admin policy does not allow", strings.Join(s.args, " "), a)
			}
			if s.readonly && !slices.Contains(readonly, a) {
				t.Errorf("pretoken %s (read-only) called %s, which the readonly policy does not allow", strings.Join(s.args, " "), a)
			}
		}
	}
	for _, a := range admin {
		if !called[a] {
			t.Errorf("the admin policy allows %s, which no command called", a)
		}
	}
	for _, a := range readonly {
		if !called[a] {
			t.Errorf("the readonly policy allows %s, which no command called", a)
		}
	}
}

// TestCLIAWSActionsFromEvidence runs attach, attach --dry-run, signout,
// doctor and detach against the strict fake, which records the IAM action of
// every Cognito, Lambda, IAM and CloudWatch request, and checks the record
// against the admin policy that `pretoken iam-policy --for admin --user-pool
// ARN --function-arn ARN` prints: every call allowed, on the resource the
// policy names, and every allowed action called.
func TestCLIAWSActionsFromEvidence(t *testing.T) {
	f := setup{noTrigger: true}.start(t)
	f.AddUser(fakePool, awsfake.User{Username: "Okta_1", Sub: "11111111-1111-4111-8111-111111111111", Provider: "Okta", Groups: []string{"staff"}})
	for _, args := range [][]string{
		{"attach", "--user-pool-id", fakePool, "--function-arn", fakeTrigger, "--version", "V2_0", "--dry-run"},
		{"attach", "--user-pool-id", fakePool, "--function-arn", fakeTrigger, "--version", "V2_0"},
		{"signout", "--user-pool-id", fakePool, "11111111-1111-4111-8111-111111111111"},
		{"signout", "--user-pool-id", fakePool, "--group", "staff", "--resume", filepath.Join(t.TempDir(), "p.json")},
		{"doctor", "--user-pool-id", fakePool, "--policy", examplePolicy},
		{"attach", "--user-pool-id", fakePool, "--detach"},
	} {
		if code, out, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("pretoken %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	const tableARN = "arn:aws:dynamodb:us-east-1:123456789012:table/pretoken-prod"
	poolARN := "arn:aws:cognito-idp:us-east-1:123456789012:userpool/" + fakePool
	code, out, errOut := runCLI(t, "iam-policy", "--for", "admin", "--table", tableARN, "--user-pool", poolARN, "--function-arn", fakeTrigger)
	var doc deploy.PolicyDocument
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
		t.Fatalf("iam-policy: exit %d, %v, %s", code, err, errOut)
	}
	granted := map[string][]string{} // action -> resources
	for _, st := range doc.Statement {
		for _, a := range st.Action {
			if !strings.HasPrefix(a, "dynamodb:") {
				granted[a] = append(granted[a], st.Resource...)
			}
		}
	}
	called := map[string]bool{}
	for _, c := range f.Calls("") {
		called[c.Action] = true
		res, ok := granted[c.Action]
		if !ok {
			t.Errorf("%s was called; the admin policy does not allow it", c.Action)
			continue
		}
		var want string
		switch {
		case strings.HasPrefix(c.Action, "cognito-idp:"):
			want = poolARN
		case strings.HasPrefix(c.Action, "lambda:"):
			want = fakeTrigger
		case c.Action == "iam:SimulatePrincipalPolicy":
			want = "arn:aws:iam::123456789012:role/*"
		case c.Action == "cloudwatch:DescribeAlarms":
			want = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"
		}
		if !slices.Contains(res, want) {
			t.Errorf("%s is allowed on %v, not on %s", c.Action, res, want)
		}
	}
	for a := range granted {
		if !called[a] {
			t.Errorf("the admin policy allows %s, which no command called", a)
		}
	}
	for _, a := range deploy.LambdaActions {
		if !called[a] {
			t.Errorf("deploy.LambdaActions lists %s, which no command called", a)
		}
	}
}

func TestIAMPolicyCommand(t *testing.T) {
	const arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/pretoken-prod"
	for _, who := range deploy.Principals {
		code, out, errOut := runCLI(t, "iam-policy", "--for", string(who), "--table", arn)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", who, code, errOut)
		}
		var doc deploy.PolicyDocument
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%s: %v\n%s", who, err, out)
		}
		want := deploy.PolicyDocument{Version: "2012-10-17", Statement: []deploy.Statement{
			{Sid: "PretokenTable", Effect: "Allow", Action: deploy.Actions(who), Resource: []string{arn}}}}
		if who != deploy.Trigger { // tenant members: a query of the byTenant index, and no write there
			want.Statement = append(want.Statement, deploy.Statement{Sid: "PretokenIndexes", Effect: "Allow", Action: []string{"dynamodb:Query"}, Resource: []string{arn + "/index/*"}})
		}
		if diff := cmp.Diff(want, doc); diff != "" {
			t.Errorf("%s (-want +got):\n%s", who, diff)
		}
	}
	const pool = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbC123"
	code, out, _ := runCLI(t, "iam-policy", "--for", "admin", "--table", arn, "--user-pool", pool)
	if code != 0 || !strings.Contains(out, `"cognito-idp:UpdateUserPool"`) || !strings.Contains(out, pool) {
		t.Errorf("admin with a pool: exit %d\n%s", code, out)
	}
	const fn = "arn:aws:lambda:eu-west-1:123456789012:function:pretoken-prod-trigger"
	code, out, _ = runCLI(t, "iam-policy", "--for", "admin", "--table", arn, "--user-pool", pool, "--function-arn", fn)
	var doc deploy.PolicyDocument
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
		t.Fatalf("admin with a function: exit %d, %v\n%s", code, err, out)
	}
	var lambdaSt *deploy.Statement
	for i, st := range doc.Statement {
		if slices.Contains(st.Action, "lambda:AddPermission") {
			lambdaSt = &doc.Statement[i]
		}
	}
	if lambdaSt == nil || !slices.Contains(lambdaSt.Action, "lambda:GetPolicy") || !slices.Contains(lambdaSt.Action, "lambda:RemovePermission") ||
		!cmp.Equal(lambdaSt.Resource, []string{fn, fn + ":*"}) {
		t.Errorf("admin with a function: the Lambda actions of attach on the function, its versions and aliases:\n%s", out)
	}
	for _, bad := range [][]string{
		{"--for", "admin", "--table", "pretoken-prod"},
		{"--for", "readonly", "--table", arn, "--function-arn", fn},
		{"--for", "admin", "--table", arn, "--function-arn", "pretoken-prod-trigger"},
		{"--for", "trigger", "--table", arn, "--user-pool", pool},
		{"--for", "admin", "--table", arn, "--user-pool", "us-east-1_abc"},
	} {
		if code, out, errOut := runCLI(t, append([]string{"iam-policy"}, bad...)...); code != 1 || out != "" || errOut == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and one line on stderr", bad, code, out, errOut)
		}
	}
}
