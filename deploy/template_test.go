package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/permissions"
)

// TemplateVar names the variable holding the packaged template's path.
const TemplateVar = "PRETOKEN_TEST_TEMPLATE"

type template struct {
	Parameters map[string]struct {
		AllowedValues []string
		Default       string
	}
	Resources map[string]resource
}

type resource struct {
	Type       string
	Condition  string
	Properties map[string]any
}

func load(t *testing.T) (template, map[string]any) {
	t.Helper()
	path := dynamotest.Need(t, TemplateVar, "the CloudFormation template from make package")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	state, err := os.ReadFile(filepath.Join(filepath.Dir(path), "serverless-state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(state, &st); err != nil {
		t.Fatal(err)
	}
	return tpl, st
}

func (tp template) get(t *testing.T, name, typ string) resource {
	t.Helper()
	r, ok := tp.Resources[name]
	if !ok {
		t.Fatalf("no resource %s", name)
	}
	if r.Type != typ {
		t.Fatalf("%s is %s, want %s", name, r.Type, typ)
	}
	return r
}

func getAtt(name, attr string) any { return map[string]any{"Fn::GetAtt": []any{name, attr}} }
func ref(name string) any          { return map[string]any{"Ref": name} }

func TestTriggerFunction(t *testing.T) {
	tpl, _ := load(t)
	fn := tpl.get(t, "TriggerLambdaFunction", "AWS::Lambda::Function").Properties
	for k, want := range map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": []any{"arm64"},
		"MemorySize": 128.0, "Role": getAtt("TriggerRole", "Arn")} {
		if diff := cmp.Diff(want, fn[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	if timeout, _ := fn["Timeout"].(float64); timeout <= 0 || timeout >= 5 {
		t.Errorf("Timeout %v, want below Cognito's 5 s", fn["Timeout"])
	}
	key, _ := fn["Code"].(map[string]any)["S3Key"].(string)
	if !strings.HasSuffix(key, "/trigger.zip") {
		t.Errorf("artifact %q, want the zip from make build", key)
	}
	env := fn["Environment"].(map[string]any)["Variables"].(map[string]any)
	if diff := cmp.Diff(ref("PolicyTable"), env["PRETOKEN_TABLE"]); diff != "" {
		t.Errorf("PRETOKEN_TABLE (-want +got):\n%s", diff)
	}
	for _, v := range []string{"PRETOKEN_REFRESH_INTERVAL", "PRETOKEN_MAX_STALENESS", "PRETOKEN_FAILURE_MODE", "PRETOKEN_USER_ASSIGNMENTS", "PRETOKEN_LOG_LEVEL"} {
		if env[v] == nil {
			t.Errorf("no %s in the environment", v)
		}
	}
	lg := tpl.get(t, "TriggerLogGroup", "AWS::Logs::LogGroup").Properties
	if lg["RetentionInDays"] == nil {
		t.Error("the trigger's log group keeps logs forever")
	}
}

// TestLeastPrivilege checks every IAM policy in the stack: no wildcard
// action, DynamoDB only on the table, the trigger only reading it.
func TestLeastPrivilege(t *testing.T) {
	tpl, _ := load(t)
	roles := 0
	for name, r := range tpl.Resources {
		if r.Type != "AWS::IAM::Role" {
			continue
		}
		roles++
		for _, p := range r.Properties["Policies"].([]any) {
			for _, s := range p.(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
				st := s.(map[string]any)
				actions := asList(st["Action"])
				for _, a := range actions {
					if strings.Contains(a.(string), "*") {
						t.Errorf("%s allows wildcard action %q", name, a)
					}
				}
				for _, res := range asList(st["Resource"]) {
					if res == "*" {
						t.Errorf("%s allows %v on every resource", name, actions)
					}
				}
				for _, a := range actions {
					if !strings.HasPrefix(a.(string), "dynamodb:") {
						continue
					}
					if name != "TriggerRole" {
						t.Errorf("%s may use DynamoDB (%v)", name, a)
					}
					if !slices.Contains([]any{"dynamodb:GetItem", "dynamodb:Query"}, a) {
						t.Errorf("the trigger may %v; it only reads", a)
					}
					if diff := cmp.Diff([]any{getAtt("PolicyTable", "Arn")}, asList(st["Resource"])); diff != "" {
						t.Errorf("%s's DynamoDB resource (-want +got):\n%s", name, diff)
					}
				}
			}
		}
	}
	if roles == 0 {
		t.Fatal("no IAM roles in the template")
	}
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func TestPreTokenGenerationConfig(t *testing.T) {
	tpl, state := load(t)
	pool := tpl.get(t, "UserPool", "AWS::Cognito::UserPool")
	if pool.Condition != "CreateUserPool" || pool.Properties["UserPoolTier"] != "ESSENTIALS" {
		t.Errorf("user pool condition %q, tier %v", pool.Condition, pool.Properties["UserPoolTier"])
	}
	want := map[string]any{"PreTokenGenerationConfig": map[string]any{"LambdaArn": getAtt("TriggerLambdaFunction", "Arn"), "LambdaVersion": ref("TriggerVersion")}}
	if diff := cmp.Diff(want, pool.Properties["LambdaConfig"]); diff != "" {
		t.Errorf("LambdaConfig (-want +got):\n%s", diff)
	}
	v := tpl.Parameters["TriggerVersion"]
	if v.Default != "V2_0" || !slices.Equal(v.AllowedValues, []string{"V1_0", "V2_0", "V3_0"}) {
		t.Errorf("TriggerVersion parameter %+v", v)
	}
	// The demo stage turns the pool and the example API on.
	params := map[string]string{}
	for _, p := range state["service"].(map[string]any)["provider"].(map[string]any)["stackParameters"].([]any) {
		p := p.(map[string]any)
		params[p["ParameterKey"].(string)] = p["ParameterValue"].(string)
	}
	if params["CreateUserPool"] != "true" || params["CreateExampleApi"] != "true" || params["TriggerVersion"] != "V2_0" {
		t.Errorf("demo stage parameters %v", params)
	}

	perm := tpl.get(t, "TriggerInvokeFromUserPool", "AWS::Lambda::Permission").Properties
	for k, want := range map[string]any{"Principal": "cognito-idp.amazonaws.com", "SourceArn": getAtt("UserPool", "Arn"),
		"FunctionName": getAtt("TriggerLambdaFunction", "Arn"), "Action": "lambda:InvokeFunction"} {
		if diff := cmp.Diff(want, perm[k]); diff != "" {
			t.Errorf("invoke permission %s (-want +got):\n%s", k, diff)
		}
	}
	existing := tpl.get(t, "TriggerInvokeFromExistingPool", "AWS::Lambda::Permission")
	if existing.Condition != "AttachExistingPool" || cmp.Diff(ref("ExistingUserPoolArn"), existing.Properties["SourceArn"]) != "" {
		t.Errorf("existing-pool permission %+v", existing)
	}
	for name, r := range tpl.Resources {
		if r.Type == "AWS::Lambda::Permission" && r.Properties["SourceArn"] == nil {
			t.Errorf("%s has no SourceArn: anyone of its principal could invoke", name)
		}
	}
}

func TestTable(t *testing.T) {
	tpl, _ := load(t)
	p := tpl.get(t, "PolicyTable", "AWS::DynamoDB::Table").Properties
	checks := map[string]any{
		"BillingMode":                      "PAY_PER_REQUEST",
		"DeletionProtectionEnabled":        true,
		"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
		"SSESpecification":                 map[string]any{"SSEEnabled": true},
		"KeySchema": []any{map[string]any{"AttributeName": "PK", "KeyType": "HASH"},
			map[string]any{"AttributeName": "SK", "KeyType": "RANGE"}},
	}
	for k, want := range checks {
		if diff := cmp.Diff(want, p[k]); diff != "" {
			t.Errorf("table %s (-want +got):\n%s", k, diff)
		}
	}
}

func TestAlarms(t *testing.T) {
	tpl, _ := load(t)
	found := map[string]bool{}
	for _, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		dims := r.Properties["Dimensions"].([]any)
		if cmp.Diff([]any{map[string]any{"Name": "FunctionName", "Value": ref("TriggerLambdaFunction")}}, dims) != "" {
			continue
		}
		m := r.Properties["MetricName"].(string)
		if m == "Duration" && r.Properties["ExtendedStatistic"] != "p99" {
			t.Errorf("duration alarm on %v, want p99", r.Properties["ExtendedStatistic"])
		}
		found[m] = true
	}
	for _, m := range []string{"Errors", "Throttles", "Duration"} {
		if !found[m] {
			t.Errorf("no alarm on the trigger's %s", m)
		}
	}
}

// TestExampleAPIMatchesThePolicy checks that the example API's scope route
// asks for a scope the example policy really puts into a staff member's
// access token, and that it uses the JWT authorizer on the pool.
func TestExampleAPIMatchesThePolicy(t *testing.T) {
	tpl, _ := load(t)
	route := tpl.get(t, "ExampleOrdersRoute", "AWS::ApiGatewayV2::Route").Properties
	scopes := asList(route["AuthorizationScopes"])
	if route["AuthorizationType"] != "JWT" || len(scopes) != 1 {
		t.Fatalf("orders route %v", route)
	}
	snap, err := permissions.LoadFile("../examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := snap.Resolve(permissions.Subject{ClientID: "any-web-client", Groups: []string{"staff"}})
	if !slices.Contains(res.Access.ScopesToAdd, scopes[0].(string)) {
		t.Errorf("route needs %v; a staff member's token gets %v", scopes[0], res.Access.ScopesToAdd)
	}
	authz := tpl.get(t, "ExampleJwtAuthorizer", "AWS::ApiGatewayV2::Authorizer").Properties
	if authz["AuthorizerType"] != "JWT" {
		t.Errorf("authorizer %v", authz)
	}
	admin := tpl.get(t, "ExampleAdminRoute", "AWS::ApiGatewayV2::Route").Properties
	if admin["AuthorizationType"] != "JWT" || admin["AuthorizationScopes"] != nil {
		t.Errorf("admin route %v: want a JWT route that the handler checks by claim", admin)
	}
}
