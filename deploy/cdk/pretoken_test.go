package cdk

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/internal/testenv"
)

const existingPool = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Example"
const topic = "arn:aws:sns:us-east-1:123456789012:pretoken-alarms"

// dist is a stand-in for the folder make build writes: the assets are only
// staged, never deployed.
func dist(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"trigger/bootstrap", "authorizer/bootstrap", "authorizer/authorizer.yaml"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("stand-in for "+f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// synth adds a Pretoken with p to a new stack under the AwsSolutions pack
// and returns the template and the pack's findings.
func synth(t *testing.T, p Props) (template, []string) {
	t.Helper()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	stack := awscdk.NewStack(app, jsii.String("Test"), nil)
	c := New(stack, "Pretoken", p)
	if a := c.HTTPAuthorizer(); a != nil {
		// A route behind the authorizer, as an app would add one.
		api := awsapigatewayv2.NewHttpApi(stack, jsii.String("Api"), nil)
		api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{Path: jsii.String("/tenants/{tenant}/orders"),
			Methods: &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod_GET}, Authorizer: a,
			Integration: awsapigatewayv2integrations.NewHttpUrlIntegration(jsii.String("Backend"), jsii.String("https://example.com"), nil)})
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	tj := assertions.Template_FromStack(stack, nil).ToJSON()
	b, err := json.Marshal(tj)
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	var findings []string
	a := assertions.Annotations_FromStack(stack)
	// The construct's findings; the test's own API is not what ships.
	for _, m := range *a.FindError(jsii.String("/Test/Pretoken/*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))) {
		findings = append(findings, "error "+*m.Id+": "+jsonString(m.Entry.Data))
	}
	for _, m := range *a.FindWarning(jsii.String("/Test/Pretoken/*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))) {
		findings = append(findings, "warning "+*m.Id+": "+jsonString(m.Entry.Data))
	}
	return tpl, findings
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// variants are the props combinations the tests synthesize: every switch
// of the construct at least once.
func variants(t *testing.T) map[string]Props {
	d := dist(t)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte("version: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]Props{
		"production":     {Dist: d, ExistingUserPoolArn: existingPool, AlarmTopicArn: topic},
		"demo":           {Dist: d, NewUserPool: true, Demo: true, Authorizer: true},
		"v1-lite":        {Dist: d, NewUserPool: true, EventVersion: "V1_0", NoAlarms: true},
		"v3":             {Dist: d, NewUserPool: true, EventVersion: "V3_0", ExistingUserPoolArn: existingPool},
		"existing-table": {Dist: d, ExistingTableName: "pretoken-prod", ExistingUserPoolArn: existingPool, Authorizer: true, AuthorizerClientIDs: []string{"abc123"}},
		"bundled-policy": {Dist: d, PolicyFile: policy, ExistingUserPoolArn: existingPool},
	}
}

func report(t *testing.T, what string, problems []string) {
	t.Helper()
	if len(problems) > 0 {
		t.Errorf("%s:\n%s", what, strings.Join(problems, "\n"))
	}
}

func TestConstruct(t *testing.T) {
	for name, p := range variants(t) {
		t.Run(name, func(t *testing.T) {
			tpl, findings := synth(t, p)
			version := p.EventVersion
			if version == "" {
				version = "V2_0"
			}
			report(t, "trigger", checkTrigger(tpl))
			report(t, "invoke permissions", checkPermissions(tpl, version, p.ExistingUserPoolArn))
			report(t, "references", dangling(tpl))
			report(t, "cdk-nag AwsSolutions", findings)
			report(t, "least privilege", checkLeastPrivilege(tpl))
			if p.Authorizer {
				report(t, "authorizer", checkAuthorizer(tpl))
			}
			if p.PolicyFile == "" {
				report(t, "operator policies", checkOperatorPolicies(tpl, p.NewUserPool || p.ExistingUserPoolArn != ""))
			}
			if p.ExistingTableName == "" && p.PolicyFile == "" {
				report(t, "table", checkTable(tpl))
			}
			if !p.NoAlarms {
				tp := ""
				if p.AlarmTopicArn != "" {
					tp = topic
				}
				report(t, "alarms", checkAlarms(tpl, tp))
			}
		})
	}
}

// TestTriggerStatementsMustBeDeployActions: the check that holds the
// construct to deploy.Actions(trigger) fails when the role's statements
// differ from it, one action more or one less.
func TestTriggerStatementsMustBeDeployActions(t *testing.T) {
	tpl, _ := synth(t, Props{Dist: dist(t)})
	if p := checkTrigger(tpl); len(p) > 0 {
		t.Fatalf("the construct itself: %v", p)
	}
	f, _ := locate(tpl)
	for name, edit := range map[string]func([]any) []any{
		"one more": func(a []any) []any { return append(a, "dynamodb:Scan") },
		"one less": func(a []any) []any { return a[1:] },
	} {
		var copied template
		b, _ := json.Marshal(tpl)
		_ = json.Unmarshal(b, &copied)
		for _, st := range statements(copied, f.role) {
			if strings.HasPrefix(strs(st["Action"])[0], "dynamodb:") {
				st["Action"] = edit(asList(st["Action"]))
			}
		}
		if len(checkTrigger(copied)) == 0 {
			t.Errorf("%s DynamoDB action in the trigger role passed the check", name)
		}
	}
}

// TestExampleApp holds the templates of the example app, synthesized by
// make test (CDK_OUTDIR), to the same checks.
func TestExampleApp(t *testing.T) {
	dir := testenv.Need(t, "PRETOKEN_TEST_CDK_OUT", "the cloud assembly of examples/cdk (make cdk-synth)")
	tpls, err := templates(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(tpls) < 2 {
		t.Fatalf("%d stacks in %s, want the demo and the production-like one", len(tpls), dir)
	}
	for name, tpl := range tpls {
		t.Run(name, func(t *testing.T) {
			report(t, "trigger", checkTrigger(tpl))
			report(t, "table", checkTable(tpl))
			report(t, "alarms", checkAlarms(tpl, alarmTopic(tpl)))
			report(t, "least privilege", checkLeastPrivilege(tpl))
			report(t, "operator policies", checkOperatorPolicies(tpl, true))
			f, _ := locate(tpl)
			if f.pool == "" {
				report(t, "invoke permissions", checkPermissions(tpl, "", existingPool))
			} else {
				report(t, "invoke permissions", checkPermissions(tpl, "V2_0", ""))
			}
			report(t, "references", dangling(tpl))
		})
	}
}

func TestValidate(t *testing.T) {
	d := dist(t)
	for name, p := range map[string]Props{
		"no dist":        {},
		"no build":       {Dist: t.TempDir()},
		"version":        {Dist: d, EventVersion: "V4_0"},
		"pool arn":       {Dist: d, ExistingUserPoolArn: "arn:aws:s3:::bucket"},
		"policy + table": {Dist: d, PolicyFile: "p.yaml", ExistingTableName: "t"},
		"authorizer":     {Dist: d, Authorizer: true},
		"failure mode":   {Dist: d, FailureMode: "maybe"},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: %+v passed", name, p)
		}
	}
	if err := (Props{Dist: d}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// alarmTopic is the SNS topic of the first alarm with actions, if any: the
// example's production-like stack sends them to one.
func alarmTopic(tpl template) string {
	for _, r := range tpl.Resources {
		if r.Type == "AWS::CloudWatch::Alarm" {
			if a := asList(r.Properties["AlarmActions"]); len(a) == 1 {
				s, _ := a[0].(string)
				return s
			}
		}
	}
	return ""
}

// checkAuthorizer: the HTTP API authorizer that HTTPAuthorizer makes asks
// the pretoken authorizer with payload 2.0 and simple responses, caches
// nothing, and API Gateway may invoke the function from that API only.
func checkAuthorizer(tpl template) []string {
	var problems []string
	n := 0
	for name, r := range tpl.Resources {
		switch r.Type {
		case "AWS::ApiGatewayV2::Authorizer":
			n++
			for k, want := range map[string]any{"AuthorizerType": "REQUEST", "AuthorizerPayloadFormatVersion": "2.0", "EnableSimpleResponses": true,
				"IdentitySource": []any{"$request.header.Authorization"}, "AuthorizerResultTtlInSeconds": 0.0} {
				if diff := cmp.Diff(want, r.Properties[k]); diff != "" {
					problems = append(problems, fmt.Sprintf("%s %s (-want +got):\n%s", name, k, diff))
				}
			}
		case "AWS::Lambda::Permission":
			if r.Properties["Principal"] == "apigateway.amazonaws.com" && !strings.Contains(jsonString(r.Properties["SourceArn"]), "execute-api") {
				problems = append(problems, fmt.Sprintf("%s: SourceArn %v, want the API's", name, r.Properties["SourceArn"]))
			}
		}
	}
	if n != 1 {
		problems = append(problems, fmt.Sprintf("%d HTTP API authorizers, want 1", n))
	}
	return problems
}
