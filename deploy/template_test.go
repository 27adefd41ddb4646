package deploy

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

func getAtt(name, attr string) any { return map[string]any{"Fn::GetAtt": []any{name, attr}} }
func ref(name string) any          { return map[string]any{"Ref": name} }

// TestEveryConditionCombinationDeploys evaluates each packaged template the
// way CloudFormation does, for the stage's own parameters and for every
// combination of the switches, and fails when a created resource or output
// refers to one that a condition leaves out. Upstream Serverless v3 used to
// give the conditional example function an unconditional version and output,
// which CloudFormation rejects for every stage without the example API.
func TestEveryConditionCombinationDeploys(t *testing.T) {
	forEach(t, func(t *testing.T, s stack) {
		if problems := newEval(t, s.tpl, s.params).dangling(); len(problems) > 0 {
			t.Errorf("stage %s with %v: CloudFormation would reject the stack:\n%s", s.stage, s.params, strings.Join(problems, "\n"))
		}
		space := parameterSpace(s.tpl, s.params)
		bad := 0
		for _, params := range space {
			if problems := newEval(t, s.tpl, params).dangling(); len(problems) > 0 && bad < 3 {
				bad++
				t.Errorf("parameters %v: CloudFormation would reject the stack:\n%s", params, strings.Join(problems, "\n"))
			}
		}
		if len(space) < 24 {
			t.Errorf("only %d parameter combinations evaluated", len(space))
		}
	})
}

func TestStages(t *testing.T) {
	forEach(t, func(t *testing.T, s stack) {
		pool := s.get(t, "UserPool", "AWS::Cognito::UserPool")
		// A stack parameter in the SAM template, a literal in serverless.yml's.
		protection := newEval(t, s.tpl, s.params).scalar(pool.Properties["DeletionProtection"])
		switch s.stage {
		case "demo":
			for k, want := range map[string]string{"CreateUserPool": "true", "CreateExampleApi": "true", "TriggerVersion": "V2_0"} {
				if s.params[k] != want {
					t.Errorf("demo stage: %s = %q, want %q", k, s.params[k], want)
				}
			}
			if pool.DeletionPolicy != "Delete" || protection != "INACTIVE" {
				t.Errorf("demo pool: DeletionPolicy %q, DeletionProtection %v; the demo is meant to be removed", pool.DeletionPolicy, protection)
			}
		default:
			if s.params["CreateUserPool"] != "false" || s.params["CreateExampleApi"] != "false" || s.params["ExistingUserPoolArn"] == "" {
				t.Errorf("production-like stage %s: %v; want an existing pool, no new pool, no example API", s.stage, s.params)
			}
			if pool.DeletionPolicy != "Retain" || protection != "ACTIVE" {
				t.Errorf("stage %s pool: DeletionPolicy %q, DeletionProtection %v; want Retain and ACTIVE outside the demo",
					s.stage, pool.DeletionPolicy, protection)
			}
		}
		table := s.get(t, "PolicyTable", "AWS::DynamoDB::Table")
		if table.DeletionPolicy != "Retain" {
			t.Errorf("table DeletionPolicy %q, want Retain on every stage", table.DeletionPolicy)
		}
	})
}

func TestTriggerFunction(t *testing.T) {
	forEach(t, func(t *testing.T, s stack) {
		fn := s.get(t, "TriggerLambdaFunction", "AWS::Lambda::Function").Properties
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
		lg := s.get(t, "TriggerLogGroup", "AWS::Logs::LogGroup").Properties
		if lg["RetentionInDays"] == nil {
			t.Error("the trigger's log group keeps logs forever")
		}
	})
}

// policyStatements returns the statements of a role's inline policies or of
// a managed policy, as CloudFormation resolves them for e.
func policyStatements(e *eval, r resource) []map[string]any {
	var docs []any
	switch r.Type {
	case "AWS::IAM::Role":
		for _, p := range asList(r.Properties["Policies"]) {
			docs = append(docs, p.(map[string]any)["PolicyDocument"])
		}
	case "AWS::IAM::ManagedPolicy":
		docs = append(docs, r.Properties["PolicyDocument"])
	}
	var out []map[string]any
	for _, d := range docs {
		for _, st := range asList(e.resolve(d).(map[string]any)["Statement"]) {
			out = append(out, st.(map[string]any))
		}
	}
	return out
}

func strs(v any) []string {
	var out []string
	for _, x := range asList(v) {
		out = append(out, x.(string))
	}
	slices.Sort(out)
	return out
}

// TestIAMMatchesTheEvidence checks that the trigger's role allows exactly
// deploy.Actions(Trigger) on the table, and the shipped managed policies
// exactly the admin and readonly lists: the lists that the end-to-end tests
// check against the calls the trigger binary and the CLI really make.
func TestIAMMatchesTheEvidence(t *testing.T) {
	forEach(t, func(t *testing.T, s stack) {
		for _, c := range []struct {
			resource string
			who      Who
		}{{"TriggerRole", Trigger}, {"PolicyAdminPolicy", Admin}, {"PolicyReadOnlyPolicy", Readonly}} {
			for _, existing := range []string{"", "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Example"} {
				params := map[string]string{}
				for k, v := range s.params {
					params[k] = v
				}
				params["ExistingUserPoolArn"] = existing
				e := newEval(t, s.tpl, params)
				r := s.tpl.Resources[c.resource]
				var table, index, cognito, lambdaActions []string
				for _, st := range policyStatements(e, r) {
					for _, a := range strs(st["Action"]) {
						switch {
						case strings.HasPrefix(a, "dynamodb:"):
							switch res := asList(st["Resource"]); {
							case cmp.Equal(res, []any{getAtt("PolicyTable", "Arn")}):
								table = append(table, a)
							case cmp.Equal(res, []any{map[string]any{"Fn::Sub": "${PolicyTable.Arn}/index/*"}}):
								index = append(index, a)
							default:
								t.Errorf("%s: DynamoDB %s on %v, not the table alone or its indexes alone", c.resource, a, res)
							}
						case strings.HasPrefix(a, "cognito-idp:"):
							cognito = append(cognito, a)
							res := asList(st["Resource"])
							own := e.conds["CreateUserPool"] && cmp.Equal(res, []any{getAtt("UserPool", "Arn")})
							given := existing != "" && cmp.Equal(res, []any{ref("ExistingUserPoolArn")})
							if !own && !given {
								t.Errorf("%s: Cognito %s on %v, not the stack's pool or the existing pool", c.resource, a, res)
							}
						case strings.HasPrefix(a, "lambda:"):
							lambdaActions = append(lambdaActions, a)
							want := []any{getAtt("TriggerLambdaFunction", "Arn"), map[string]any{"Fn::Sub": "${TriggerLambdaFunction.Arn}:*"}}
							if diff := cmp.Diff(want, asList(st["Resource"])); diff != "" {
								t.Errorf("%s: Lambda on something other than the trigger (-want +got):\n%s", c.resource, diff)
							}
						}
					}
				}
				slices.Sort(table)
				if diff := cmp.Diff(Actions(c.who), table); diff != "" {
					t.Errorf("%s allows other DynamoDB actions than deploy.Actions(%s) (-want +got):\n%s", c.resource, c.who, diff)
				}
				if diff := cmp.Diff(IndexActions(c.who), index); diff != "" {
					t.Errorf("%s allows other actions on the indexes than deploy.IndexActions(%s) (-want +got):\n%s", c.resource, c.who, diff)
				}
				var wantCognito, wantLambda []string
				if c.who == Admin {
					wantLambda = LambdaActions
					if e.conds["CreateUserPool"] {
						wantCognito = append(wantCognito, CognitoActions...)
					}
					if existing != "" {
						wantCognito = append(wantCognito, CognitoActions...)
					}
				}
				if diff := cmp.Diff(wantCognito, cognito); diff != "" {
					t.Errorf("%s with ExistingUserPoolArn %q: Cognito actions (-want +got):\n%s", c.resource, existing, diff)
				}
				if diff := cmp.Diff(wantLambda, lambdaActions); diff != "" {
					t.Errorf("%s: Lambda actions (-want +got):\n%s", c.resource, diff)
				}
			}
		}
	})
}

// TestLeastPrivilege checks every IAM policy in the stack: no wildcard
// action or resource, DynamoDB only on the table and only for the trigger
// and the operator policies.
func TestLeastPrivilege(t *testing.T) {
	forEach(t, func(t *testing.T, s stack) {
		e := newEval(t, s.tpl, s.params)
		n := 0
		for name, r := range s.tpl.Resources {
			for _, st := range policyStatements(e, r) {
				n++
				for _, a := range strs(st["Action"]) {
					if strings.Contains(a, "*") {
						t.Errorf("%s allows wildcard action %q", name, a)
					}
					if strings.HasPrefix(a, "dynamodb:") && !slices.Contains([]string{"TriggerRole", "PolicyAdminPolicy", "PolicyReadOnlyPolicy"}, name) {
						t.Errorf("%s may use DynamoDB (%v)", name, a)
					}
				}
				for _, res := range asList(st["Resource"]) {
					if res == "*" {
						t.Errorf("%s allows %v on every resource", name, st["Action"])
					}
				}
			}
		}
		if n == 0 {
			t.Fatal("no IAM policy statements in the template")
		}
	})
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// TestPoolFollowsTheEventVersion: the plan that each event version needs,
// and no more; the machine client only where client credentials reach the
// trigger (V3_0).
func TestPoolFollowsTheEventVersion(t *testing.T) {
	forEach(t, func(t *testing.T, s stack) {
		pool := s.get(t, "UserPool", "AWS::Cognito::UserPool")
		if pool.Condition != "CreateUserPool" {
			t.Errorf("user pool condition %q", pool.Condition)
		}
		want := map[string]any{"PreTokenGenerationConfig": map[string]any{"LambdaArn": getAtt("TriggerLambdaFunction", "Arn"), "LambdaVersion": ref("TriggerVersion")}}
		if diff := cmp.Diff(want, pool.Properties["LambdaConfig"]); diff != "" {
			t.Errorf("LambdaConfig (-want +got):\n%s", diff)
		}
		v := s.tpl.Parameters["TriggerVersion"]
		if v.Default != "V2_0" || !slices.Equal(v.AllowedValues, []string{"V1_0", "V2_0", "V3_0"}) {
			t.Errorf("TriggerVersion parameter %+v", v)
		}
		for _, c := range []struct{ version, tier, machine string }{
			{"V1_0", "LITE", "false"}, {"V2_0", "ESSENTIALS", "false"}, {"V3_0", "ESSENTIALS", "true"},
		} {
			params := map[string]string{}
			for k, v := range s.params {
				params[k] = v
			}
			params["TriggerVersion"], params["CreateUserPool"], params["CreateMachineClient"] = c.version, "true", "true"
			e := newEval(t, s.tpl, params)
			if got := e.resolve(pool.Properties).(map[string]any)["UserPoolTier"]; got != c.tier {
				t.Errorf("%s: UserPoolTier %v, want %s", c.version, got, c.tier)
			}
			mc := s.get(t, "MachineClient", "AWS::Cognito::UserPoolClient")
			if got := e.exists(mc.Condition); got != (c.machine == "true") {
				t.Errorf("%s: machine client created: %v", c.version, got)
			}
			params["CreateMachineClient"] = "false"
			if newEval(t, s.tpl, params).exists(mc.Condition) {
				t.Errorf("%s: machine client created although machineClient is false", c.version)
			}
		}
		mc := s.get(t, "MachineClient", "AWS::Cognito::UserPoolClient").Properties
		if mc["GenerateSecret"] != true || cmp.Diff([]any{"client_credentials"}, mc["AllowedOAuthFlows"]) != "" {
			t.Errorf("machine client %v: want a confidential client_credentials client", mc)
		}
		scopes := asList(mc["AllowedOAuthScopes"])
		if len(scopes) == 0 || !strings.HasPrefix(scopes[0].(string), "orders-api/") {
			t.Errorf("machine client scopes %v: want a custom scope of the resource server", scopes)
		}

		perm := s.get(t, "TriggerInvokeFromUserPool", "AWS::Lambda::Permission").Properties
		for k, want := range map[string]any{"Principal": "cognito-idp.amazonaws.com", "SourceArn": getAtt("UserPool", "Arn"),
			"FunctionName": getAtt("TriggerLambdaFunction", "Arn"), "Action": "lambda:InvokeFunction"} {
			if diff := cmp.Diff(want, perm[k]); diff != "" {
				t.Errorf("invoke permission %s (-want +got):\n%s", k, diff)
			}
		}
		existing := s.get(t, "TriggerInvokeFromExistingPool", "AWS::Lambda::Permission")
		if existing.Condition != "AttachExistingPool" || cmp.Diff(ref("ExistingUserPoolArn"), existing.Properties["SourceArn"]) != "" {
			t.Errorf("existing-pool permission %+v", existing)
		}
		for name, r := range s.tpl.Resources {
			if r.Type == "AWS::Lambda::Permission" && r.Properties["SourceArn"] == nil {
				t.Errorf("%s has no SourceArn: anyone of its principal could invoke", name)
			}
		}
	})
}

func TestTable(t *testing.T) {
	forEach(t, func(t *testing.T, s stack) {
		p := s.get(t, "PolicyTable", "AWS::DynamoDB::Table").Properties
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
		// The index the store defines, so migration 0003 finds it there.
		gsi, _ := dynamo.TenantIndexDefinition()
		want := []any{map[string]any{"IndexName": *gsi.IndexName,
			"KeySchema":  []any{map[string]any{"AttributeName": "TPK", "KeyType": "HASH"}, map[string]any{"AttributeName": "TSK", "KeyType": "RANGE"}},
			"Projection": map[string]any{"ProjectionType": "INCLUDE", "NonKeyAttributes": []any{"roles"}}}}
		if diff := cmp.Diff(want, p["GlobalSecondaryIndexes"]); diff != "" {
			t.Errorf("table indexes (-want +got):\n%s", diff)
		}
	})
}

func TestAlarms(t *testing.T) {
	forEach(t, func(t *testing.T, s stack) {
		found := map[string]bool{}
		for name, r := range s.tpl.Resources {
			if r.Type != "AWS::CloudWatch::Alarm" {
				continue
			}
			if r.Properties["OKActions"] == nil || r.Properties["AlarmActions"] == nil {
				t.Errorf("%s lacks alarm or OK actions", name)
			}
			if r.Properties["Namespace"] == "pretoken" {
				dims := map[string]any{}
				for _, d := range asList(r.Properties["Dimensions"]) {
					dims[d.(map[string]any)["Name"].(string)] = d.(map[string]any)["Value"]
				}
				if cmp.Diff(ref("TriggerLambdaFunction"), dims["FunctionName"]) != "" || dims["Outcome"] == nil {
					t.Errorf("%s dimensions %v: want FunctionName and Outcome, as the log line's", name, dims)
				}
				found[r.Properties["MetricName"].(string)+"/"+dims["Outcome"].(string)] = true
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
		for _, m := range []string{"Errors", "Throttles", "Duration", "Tokens/unavailable", "Tokens/too_large", "CacheStale/issued"} {
			if !found[m] {
				t.Errorf("no alarm on the trigger's %s", m)
			}
		}
	})
}

// TestExampleAPIMatchesThePolicy checks that the example API's scope route
// asks for a scope the example policy really puts into a staff member's
// access token, and that it uses the JWT authorizer on the pool.
func TestExampleAPIMatchesThePolicy(t *testing.T) {
	snap, err := permissions.LoadFile("../examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	forEach(t, func(t *testing.T, s stack) {
		route := s.get(t, "ExampleOrdersRoute", "AWS::ApiGatewayV2::Route").Properties
		scopes := asList(route["AuthorizationScopes"])
		if route["AuthorizationType"] != "JWT" || len(scopes) != 1 {
			t.Fatalf("orders route %v", route)
		}
		res := snap.Resolve(permissions.Subject{ClientID: "any-web-client", Groups: []string{"staff"}})
		if !slices.Contains(res.Access.ScopesToAdd, scopes[0].(string)) {
			t.Errorf("route needs %v; a staff member's token gets %v", scopes[0], res.Access.ScopesToAdd)
		}
		authz := s.get(t, "ExampleJwtAuthorizer", "AWS::ApiGatewayV2::Authorizer").Properties
		if authz["AuthorizerType"] != "JWT" {
			t.Errorf("authorizer %v", authz)
		}
		admin := s.get(t, "ExampleAdminRoute", "AWS::ApiGatewayV2::Route").Properties
		if admin["AuthorizationType"] != "JWT" || admin["AuthorizationScopes"] != nil {
			t.Errorf("admin route %v: want a JWT route that the handler checks by claim", admin)
		}
	})
}

// TestLambdaAuthorizer: the pretoken authorizer in front of the example
// API's tenant route, with caching from the stage parameter.
func TestLambdaAuthorizer(t *testing.T) {
	forEach(t, func(t *testing.T, s stack) {
		a := s.get(t, "ExampleLambdaAuthorizer", "AWS::ApiGatewayV2::Authorizer")
		for k, want := range map[string]any{"AuthorizerType": "REQUEST", "AuthorizerPayloadFormatVersion": "2.0", "EnableSimpleResponses": true,
			"IdentitySource": []any{"$request.header.Authorization"}, "AuthorizerResultTtlInSeconds": ref("AuthorizerCacheTtl")} {
			if diff := cmp.Diff(want, a.Properties[k]); diff != "" {
				t.Errorf("authorizer %s (-want +got):\n%s", k, diff)
			}
		}
		route := s.get(t, "ExampleTenantRoute", "AWS::ApiGatewayV2::Route")
		if route.Properties["AuthorizationType"] != "CUSTOM" || cmp.Diff(ref("ExampleLambdaAuthorizer"), route.Properties["AuthorizerId"]) != "" {
			t.Errorf("tenant route %v", route.Properties)
		}
		fn := s.get(t, "AuthorizerLambdaFunction", "AWS::Lambda::Function")
		env := fn.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
		if fn.Condition != "CreateAuthorizer" || env["PRETOKEN_AUTHORIZER_CONFIG"] != "/var/task/authorizer.yaml" {
			t.Errorf("authorizer function: condition %q, environment %v", fn.Condition, env)
		}
		perm := s.get(t, "AuthorizerInvokePermission", "AWS::Lambda::Permission").Properties
		if perm["Principal"] != "apigateway.amazonaws.com" || perm["SourceArn"] == nil {
			t.Errorf("authorizer invoke permission %v", perm)
		}
		want := map[string]string{"demo": "true", "prod": "false"}[s.stage]
		if s.params["CreateAuthorizer"] != want {
			t.Errorf("stage %s: CreateAuthorizer %q, want %q", s.stage, s.params["CreateAuthorizer"], want)
		}
	})
}
