package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/deploy"
	"github.com/pretoken/pretoken/internal/awsfake"
	"github.com/pretoken/pretoken/internal/dynamotest"
)

const fakeRole = "arn:aws:iam::123456789012:role/pretoken-prod-trigger"

// setup is a deployed setup in the strict fake; its zero value is healthy.
type setup struct {
	tier        string // the pool's plan; "" ESSENTIALS
	noTrigger   bool   // the pool calls no pre token generation trigger
	otherPool   bool   // the function's statement names another pool
	timeout     int    // the function's timeout; 0: 5 s
	denied      string // an action the function's role may not call
	client      map[string]any
	skipAlarm   string // a metric with no alarm
	tableEnv    string // the function's PRETOKEN_TABLE; "": pretoken-prod
	noRole      bool   // IAM does not know the function's role
	wantFailing []int
}

func (s setup) start(t *testing.T) *awsfake.Fake {
	t.Helper()
	f := strictAWS(t, func(p map[string]any) {
		p["UserPoolTier"] = "ESSENTIALS"
		if s.tier != "" {
			p["UserPoolTier"] = s.tier
		}
		if !s.noTrigger {
			lc := p["LambdaConfig"].(map[string]any)
			lc["PreTokenGenerationConfig"] = map[string]any{"LambdaArn": fakeTrigger, "LambdaVersion": "V2_0"}
			lc["PreTokenGeneration"] = fakeTrigger
		}
	})
	table := "pretoken-prod"
	if s.tableEnv != "" {
		table = s.tableEnv
	}
	f.AddFunction(awsfake.Function{ARN: fakeTrigger, Timeout: max(s.timeout, 5), Role: fakeRole, Env: map[string]string{"PRETOKEN_TABLE": table}})
	pool := "arn:aws:cognito-idp:us-east-1:123456789012:userpool/" + fakePool
	if s.otherPool {
		pool = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_OTHER"
	}
	f.AddStatement(fakeTrigger, "", map[string]any{"Sid": "stack", "Effect": "Allow", "Principal": map[string]any{"Service": "cognito-idp.amazonaws.com"},
		"Action": "lambda:InvokeFunction", "Resource": fakeTrigger, "Condition": map[string]any{"ArnLike": map[string]any{"AWS:SourceArn": pool}}})
	var allowed []string
	for _, a := range deploy.Actions(deploy.Trigger) {
		if a != s.denied {
			allowed = append(allowed, a)
		}
	}
	if !s.noRole {
		f.RolePolicy(fakeRole, allowed...)
	}
	for _, m := range []string{"Errors", "Throttles", "Duration"} {
		if m != s.skipAlarm {
			f.AddAlarm(awsfake.Alarm{Name: "pretoken-prod-" + m, Namespace: "AWS/Lambda", MetricName: m, Dimensions: map[string]string{"FunctionName": "pretoken-prod-trigger"}})
		}
	}
	f.AddAlarm(awsfake.Alarm{Name: "other", Namespace: "AWS/Lambda", MetricName: "Errors", Dimensions: map[string]string{"FunctionName": "other"}})
	f.AddClient(fakePool, map[string]any{"ClientId": "4webappclient0000", "ClientName": "web", "WriteAttributes": []string{"email", "name"},
		"AllowedOAuthScopes": []string{"openid", "email"}})
	f.AddClient(fakePool, map[string]any{"ClientId": "5mobileclient0000", "ClientName": "mobile"}) // writes standard attributes only
	if s.client != nil {
		f.AddClient(fakePool, s.client)
	}
	return f
}

// failing returns the numbers of the checks marked ✘ in doctor's output,
// and fails the test on a line that is neither.
func failing(t *testing.T, out string) []int {
	t.Helper()
	var bad []int
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(deploy.CheckNames) {
		t.Errorf("%d lines, want one per check:\n%s", len(lines), out)
	}
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "✔ "):
		case strings.HasPrefix(l, "✘ ") && strings.Contains(l, "; to do: "):
			bad = append(bad, i+1)
		default:
			t.Errorf("line %q is neither ✔ nor ✘ with what to do", l)
		}
	}
	return bad
}

// TestDoctor: a healthy setup passes every check, reading only; each
// check has a setup that makes it fail, and doctor then exits 1.
func TestDoctor(t *testing.T) {
	for _, c := range []struct {
		name  string
		s     setup
		args  []string
		wantN []int
	}{
		{"healthy", setup{}, nil, nil},
		{"1 no trigger", setup{noTrigger: true}, []string{"--function-arn", fakeTrigger}, []int{1, 3}},
		{"1 another function", setup{}, []string{"--function-arn", fakeTrigger + ":live"}, []int{1, 2}},
		{"2 permission for another pool", setup{otherPool: true}, nil, []int{2}},
		{"3 V2_0 on Lite", setup{tier: "LITE"}, nil, []int{3}},
		{"4 a client writes a trusted attribute", setup{client: map[string]any{"ClientId": "6selfservice0000", "WriteAttributes": []string{"email", "custom:tenant_id"}}}, nil, []int{4}},
		{"5 a client is allowed a prefixed scope", setup{client: map[string]any{"ClientId": "7partner00000000", "AllowedOAuthScopes": []string{"openid", "orders-api/orders:write"}}}, nil, []int{5}},
		{"6 timeout", setup{timeout: 10}, nil, []int{6}},
		{"6 role denied", setup{denied: "dynamodb:Query"}, nil, []int{6}},
		{"6 role unknown to IAM", setup{noRole: true}, nil, []int{6}},
		{"6 another table", setup{tableEnv: "pretoken-dev"}, []string{"--table", "pretoken-prod"}, []int{4, 5, 6, 7}},
		{"8 no duration alarm", setup{skipAlarm: "Duration"}, nil, []int{8}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.s.start(t)
			if slices.Contains(c.args, "--table") {
				awsEnv(t) // DynamoDB Local: the table does not exist there
			} else {
				c.args = append(c.args, "--policy", examplePolicy)
			}
			code, out, errOut := runCLI(t, append([]string{"doctor", "--user-pool-id", fakePool}, c.args...)...)
			if c.s.noRole && !strings.Contains(out, "NoSuchEntity: The principal "+fakeRole+" does not exist") {
				t.Errorf("the service's error code and message are missing:\n%s", out)
			}
			if strings.Contains(out, "RequestID") || strings.Contains(out, "operation error") {
				t.Errorf("doctor shows the SDK's request details:\n%s", out)
			}
			if diff := cmp.Diff(c.wantN, failing(t, out)); diff != "" {
				t.Errorf("failing checks (-want +got):\n%s\n%s", diff, out)
			}
			wantCode := 0
			if len(c.wantN) > 0 {
				wantCode = 1
			}
			if code != wantCode {
				t.Errorf("exit %d, want %d; stderr %q", code, wantCode, errOut)
			}
			for _, a := range f.Actions() {
				if !slices.Contains(deploy.DoctorActions, a) {
					t.Errorf("doctor called %s, which deploy.DoctorActions does not list", a)
				}
			}
			if w := f.Writes(); len(w) != 0 {
				t.Errorf("doctor wrote: %v", w)
			}
		})
	}
}

// TestDoctorCallsEveryListedAction: a healthy run calls every action of
// deploy.DoctorActions, and --json gives the same checks.
func TestDoctorCallsEveryListedAction(t *testing.T) {
	f := setup{}.start(t)
	code, out, errOut := runCLI(t, "doctor", "--user-pool-id", fakePool, "--policy", examplePolicy, "--json")
	if code != 0 {
		t.Fatalf("exit %d, %s, %s", code, out, errOut)
	}
	var checks []deploy.Check
	if err := json.Unmarshal([]byte(out), &checks); err != nil || len(checks) != 8 || !checks[7].OK {
		t.Errorf("--json: %v\n%s", err, out)
	}
	called := f.Actions()
	for _, a := range deploy.DoctorActions {
		if !slices.Contains(called, a) {
			t.Errorf("deploy.DoctorActions lists %s, which doctor did not call", a)
		}
	}
	sim := f.Calls("iam:SimulatePrincipalPolicy")
	if len(sim) != 1 || sim[0].Input["PolicySourceArn"] != fakeRole ||
		!cmp.Equal(sim[0].Input["ResourceArns"], []string{"arn:aws:dynamodb:us-east-1:123456789012:table/pretoken-prod"}) ||
		!cmp.Equal(sim[0].Input["ActionNames"], deploy.Actions(deploy.Trigger)) {
		t.Errorf("SimulatePrincipalPolicy %v", sim)
	}
}

// TestDoctorTable: check 7 reads the table (DynamoDB Local): a table
// migrated with a live policy passes, and its policy is what checks 4 and
// 5 use; a table without migrations fails.
func TestDoctorTable(t *testing.T) {
	table := opsTable(t)
	setup{tableEnv: table, client: map[string]any{"ClientId": "6selfservice0000", "WriteAttributes": []string{"custom:tenant_id"}}}.start(t)
	code, out, _ := runCLI(t, "doctor", "--user-pool-id", fakePool)
	if diff := cmp.Diff([]int{4}, failing(t, out)); diff != "" || code != 1 {
		t.Errorf("exit %d, failing (-want +got):\n%s\n%s", code, diff, out)
	}
	if !strings.Contains(out, "✔ 7 ") || !strings.Contains(out, "custom:tenant_id") {
		t.Errorf("output:\n%s", out)
	}
	// The compiled policy, which the trigger serves, must load too: a
	// damaged one, or none (a table an older pretoken applied), fails
	// check 7 with what to do; apply repairs both.
	client := dynamotest.Client(t)
	for _, c := range []struct {
		name, want string
		edit       func()
	}{
		{"damaged", "cannot load the compiled policy", func() {
			key := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "SNAPSHOT"}, "SK": &types.AttributeValueMemberS{Value: "CURRENT"}}
			got, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &table, Key: key, ConsistentRead: aws.Bool(true)})
			if err != nil || got.Item == nil {
				t.Fatalf("read the copy: %v", err)
			}
			got.Item["data"].(*types.AttributeValueMemberB).Value[10] ^= 1
			if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: &table, Item: got.Item}); err != nil {
				t.Fatal(err)
			}
		}},
		{"missing", "holds no compiled policy", func() {
			_, err := client.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: &table,
				Key:              map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "META"}, "SK": &types.AttributeValueMemberS{Value: "VERSION"}},
				UpdateExpression: aws.String("REMOVE snapshotChunks, snapshotFormat")})
			if err != nil {
				t.Fatal(err)
			}
		}},
	} {
		c.edit()
		code, out, _ = runCLI(t, "doctor", "--user-pool-id", fakePool)
		if diff := cmp.Diff([]int{4, 7}, failing(t, out)); diff != "" || code != 1 || !strings.Contains(out, c.want) || !strings.Contains(out, "pretoken apply --table "+table) {
			t.Errorf("%s compiled policy: exit %d (-want +got):\n%s\n%s", c.name, code, diff, out)
		}
		if code, _, errOut := runCLI(t, "apply", "--table", table, "-f", examplePolicy); code != 0 {
			t.Fatalf("apply: %s", errOut)
		}
		if code, out, _ = runCLI(t, "doctor", "--user-pool-id", fakePool); slices.Contains(failing(t, out), 7) {
			t.Errorf("after apply, %s compiled policy: check 7 still fails:\n%s", c.name, out)
		}
	}

	fresh := dynamotest.NewName("pretoken-doctor")
	setup{tableEnv: fresh}.start(t)
	code, out, _ = runCLI(t, "doctor", "--user-pool-id", fakePool)
	if diff := cmp.Diff([]int{4, 5, 7}, failing(t, out)); diff != "" || code != 1 || !strings.Contains(out, "pretoken migrate --table "+fresh) {
		t.Errorf("unmigrated table: exit %d (-want +got):\n%s\n%s", code, diff, out)
	}
}
