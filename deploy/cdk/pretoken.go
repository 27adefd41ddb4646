// Package cdk is pretoken as an AWS CDK construct: the pre token generation
// trigger with its least-privilege role, its DynamoDB table (or an existing
// one), Cognito's invoke permission, the operators' managed policies, the
// alarms, and optionally a new user pool and the Lambda authorizer. It is
// the same stack serverless.yml and deploy/sam/template.yaml describe, and
// it takes its IAM lists from package deploy, the lists the recorded-call
// tests hold, never from a copy.
//
// It is a module of its own so that the CDK (a large module graph) never
// reaches the trigger's build.
package cdk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscognito"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/pretoken/pretoken/deploy"
	"github.com/pretoken/pretoken/permissions/dynamo"
	"github.com/pretoken/pretoken/trigger"
)

// Props configure a Pretoken. The zero value (with Dist set) is a
// production-like stack: a new retained table, the trigger, no pool of its
// own, fail closed.
type Props struct {
	// Dist is the folder `make build` writes (dist): the construct deploys
	// Dist/trigger (and Dist/authorizer). Required.
	Dist string
	// EventVersion is the pre token generation event version: V1_0 (ID
	// token, any plan), V2_0 (ID and access tokens; the default) or V3_0
	// (also client credentials).
	EventVersion string
	// NewUserPool creates a user pool with the trigger attached: the Lite
	// plan for V1_0, Essentials for V2_0 and V3_0 (access-token
	// customization needs it), plus a public web client.
	NewUserPool bool
	// ExistingUserPoolArn lets an existing pool invoke the trigger; attach
	// it afterwards with `pretoken attach` (CloudFormation cannot change a
	// pool it does not own).
	ExistingUserPoolArn string
	// ExistingTableName uses an existing policy table instead of creating
	// one; TableName names a new one (default: CloudFormation's choice).
	ExistingTableName, TableName string
	// PolicyFile is a policy to bundle with the trigger: a compiled snapshot
	// (`pretoken compile`, what `make build POLICY_FILE=file` bundles) or a
	// YAML file, which loads slower. The trigger serves it and reads no
	// table (PRETOKEN_POLICY_FILE), so no table is created or granted.
	PolicyFile string
	// Authorizer adds the pretoken Lambda authorizer (cmd/authorizer, built
	// with examples/authorizer.yaml) for an HTTP API; it needs a pool. Put
	// it on routes with HTTPAuthorizer.
	Authorizer bool
	// AuthorizerClientIDs are the app clients whose tokens the authorizer
	// accepts (default: the new pool's web client).
	AuthorizerClientIDs []string
	// NoAlarms leaves the alarms out; AlarmTopicArn sends them (and their
	// OK) to an SNS topic.
	NoAlarms      bool
	AlarmTopicArn string
	// Demo makes the new pool deletable with the stack (DeletionPolicy
	// Delete, deletion protection off). The table is retained, with
	// deletion protection, on every stage.
	Demo bool
	// FailureMode (closed, the default, or open), RefreshInterval (10s),
	// MaxStaleness (15m) and UserAssignments set the trigger's environment
	// (README, "Configuration").
	FailureMode, RefreshInterval, MaxStaleness string
	UserAssignments                            bool
}

// Pretoken is the deployed trigger and what it needs.
type Pretoken struct {
	constructs.Construct
	Function   awslambda.Function
	Role       awsiam.Role
	Table      awsdynamodb.ITable // nil with a bundled policy
	UserPool   awscognito.UserPool
	WebClient  awscognito.UserPoolClient
	Authorizer awslambda.Function
	// AdminPolicy and ReadOnlyPolicy are for people and CI jobs (the same
	// documents as `pretoken iam-policy`); nil with a bundled policy.
	AdminPolicy, ReadOnlyPolicy awsiam.ManagedPolicy
	Alarms                      []awscloudwatch.Alarm
}

// Versions are the event versions a Pretoken accepts.
var Versions = []string{"V1_0", "V2_0", "V3_0"}

// Tier is the user pool feature plan a new pool gets for an event version,
// as serverless.yml chooses it: ID-token customization (V1_0) works on every
// plan, so the cheap path must not create a paid pool.
func Tier(version string) awscognito.FeaturePlan {
	if version == "V1_0" {
		return awscognito.FeaturePlan_LITE
	}
	return awscognito.FeaturePlan_ESSENTIALS
}

// Placeholders stand for tokens while package deploy validates and builds a
// policy document; Statements swaps the tokens in afterwards.
const (
	tablePlaceholder = "arn:aws:dynamodb:us-east-1:123456789012:table/pretoken-placeholder"
	poolPlaceholder  = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_placeholder"
)

// Statements are deploy.Policy(who, ...)'s statements with the table's and
// the pool's ARNs (CDK tokens allowed). It is the construct's one call of
// deploy.Policy.
func Statements(who deploy.Who, tableArn, poolArn string) ([]awsiam.PolicyStatement, error) {
	// A literal pool ARN goes to deploy.Policy as it is, which checks its
	// shape; a token (a new pool's ARN) is swapped in afterwards.
	pool := poolArn
	if *awscdk.Token_IsUnresolved(poolArn) {
		pool = poolPlaceholder
	}
	doc, err := deploy.Policy(who, tablePlaceholder, pool, "")
	if err != nil {
		return nil, err
	}
	var out []awsiam.PolicyStatement
	for _, s := range doc.Statement {
		var res []*string
		for _, r := range s.Resource {
			r = strings.Replace(r, tablePlaceholder, tableArn, 1)
			r = strings.Replace(r, poolPlaceholder, poolArn, 1)
			res = append(res, jsii.String(r))
		}
		out = append(out, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String(s.Sid), Effect: awsiam.Effect_ALLOW, Actions: jsii.Strings(s.Action...), Resources: &res}))
	}
	return out, nil
}

// New adds pretoken to scope. It panics on props that cannot deploy, as
// CDK constructs do; Validate reports the same problems as an error.
func New(scope constructs.Construct, id string, p Props) *Pretoken {
	if err := p.Validate(); err != nil {
		panic(fmt.Sprintf("pretoken: %v", err))
	}
	if p.EventVersion == "" {
		p.EventVersion = "V2_0"
	}
	c := &Pretoken{Construct: constructs.NewConstruct(scope, &id)}
	s := c.Construct

	env := map[string]*string{
		"PRETOKEN_REFRESH_INTERVAL": jsii.String(or(p.RefreshInterval, "10s")),
		"PRETOKEN_MAX_STALENESS":    jsii.String(or(p.MaxStaleness, "15m")),
		"PRETOKEN_FAILURE_MODE":     jsii.String(or(p.FailureMode, "closed")),
		"PRETOKEN_USER_ASSIGNMENTS": jsii.String(fmt.Sprint(p.UserAssignments)),
		"PRETOKEN_LOG_LEVEL":        jsii.String("info"),
	}
	code := filepath.Join(p.Dist, "trigger")
	if p.PolicyFile != "" {
		code = bundle(code, p.PolicyFile)
		env["PRETOKEN_POLICY_FILE"] = jsii.String("/var/task/" + filepath.Base(p.PolicyFile))
	} else {
		c.Table = c.table(p)
		env["PRETOKEN_TABLE"] = c.Table.TableName()
	}

	logs := awslogs.NewLogGroup(s, jsii.String("TriggerLogs"), &awslogs.LogGroupProps{
		Retention: awslogs.RetentionDays_ONE_MONTH, RemovalPolicy: awscdk.RemovalPolicy_DESTROY})
	// The trigger reads the table and writes its own logs, nothing else:
	// deploy.Actions(trigger), the list the recorded-call tests hold.
	statements := []awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Effect: awsiam.Effect_ALLOW, Actions: jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: jsii.Strings(*logs.LogGroupArn())})}
	if c.Table != nil {
		st, err := Statements(deploy.Trigger, *c.Table.TableArn(), "")
		if err != nil {
			panic(fmt.Sprintf("pretoken: %v", err))
		}
		statements = append(st, statements...)
	}
	c.Role = awsiam.NewRole(s, jsii.String("TriggerRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		InlinePolicies: &map[string]awsiam.PolicyDocument{"pretoken-trigger": awsiam.NewPolicyDocument(
			&awsiam.PolicyDocumentProps{Statements: &statements})},
	})
	c.Function = awslambda.NewFunction(s, jsii.String("Trigger"), &awslambda.FunctionProps{
		Description:  jsii.String("pretoken pre token generation trigger"),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(code), nil),
		MemorySize:   jsii.Number(128),
		// Cognito waits 5 s per attempt; the function answers (or fails
		// safely) well before.
		Timeout:     awscdk.Duration_Seconds(jsii.Number(3)),
		Environment: &env,
		Role:        c.Role,
		LogGroup:    logs,
	})

	var poolArn string
	if p.NewUserPool {
		c.userPool(p)
		poolArn = *c.UserPool.UserPoolArn()
	}
	if p.ExistingUserPoolArn != "" {
		c.Function.AddPermission(jsii.String("InvokeFromExistingPool"), &awslambda.Permission{
			Principal: awsiam.NewServicePrincipal(jsii.String("cognito-idp.amazonaws.com"), nil),
			Action:    jsii.String("lambda:InvokeFunction"),
			SourceArn: jsii.String(p.ExistingUserPoolArn), SourceAccount: awscdk.Aws_ACCOUNT_ID()})
		poolArn = p.ExistingUserPoolArn
	}
	if c.Table != nil {
		c.AdminPolicy = c.managedPolicy("AdminPolicy", deploy.Admin, poolArn, "pretoken admin (migrate, apply, assign, and every read)")
		c.ReadOnlyPolicy = c.managedPolicy("ReadOnlyPolicy", deploy.Readonly, "", "pretoken read-only (plan, export, history, user, explain)")
	}
	if p.Authorizer {
		c.authorizer(p)
	}
	if !p.NoAlarms {
		c.alarms(p)
	}
	c.suppressNag()
	return c
}

// Validate reports props that cannot deploy.
func (p Props) Validate() error {
	var problems []string
	if p.Dist == "" {
		problems = append(problems, "Dist (the folder make build writes) is required")
	} else if _, err := os.Stat(filepath.Join(p.Dist, "trigger", "bootstrap")); err != nil {
		problems = append(problems, fmt.Sprintf("no %s: run make build first", filepath.Join(p.Dist, "trigger", "bootstrap")))
	}
	if p.EventVersion != "" && !contains(Versions, p.EventVersion) {
		problems = append(problems, fmt.Sprintf("EventVersion %q: want V1_0, V2_0 or V3_0", p.EventVersion))
	}
	if p.ExistingUserPoolArn != "" {
		// deploy.Policy checks the ARN's shape, as the CLI does.
		if _, err := Statements(deploy.Admin, tablePlaceholder, p.ExistingUserPoolArn); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if p.PolicyFile != "" && (p.ExistingTableName != "" || p.TableName != "") {
		problems = append(problems, "a bundled PolicyFile replaces the table: set it or a table, not both")
	}
	if p.Authorizer && !p.NewUserPool && len(p.AuthorizerClientIDs) == 0 {
		problems = append(problems, "the Authorizer needs AuthorizerClientIDs, or NewUserPool for its web client")
	}
	if p.Authorizer && !p.NewUserPool && p.ExistingUserPoolArn == "" {
		problems = append(problems, "the Authorizer needs a pool: NewUserPool or ExistingUserPoolArn")
	}
	switch p.FailureMode {
	case "", "closed", "open":
	default:
		problems = append(problems, fmt.Sprintf("FailureMode %q: want closed or open", p.FailureMode))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

func (c *Pretoken) table(p Props) awsdynamodb.ITable {
	if p.ExistingTableName != "" {
		return awsdynamodb.Table_FromTableName(c.Construct, jsii.String("PolicyTable"), jsii.String(p.ExistingTableName))
	}
	var name *string
	if p.TableName != "" {
		name = jsii.String(p.TableName)
	}
	t := awsdynamodb.NewTable(c.Construct, jsii.String("PolicyTable"), &awsdynamodb.TableProps{
		TableName:    name,
		PartitionKey: &awsdynamodb.Attribute{Name: jsii.String("PK"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:      &awsdynamodb.Attribute{Name: jsii.String("SK"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true)},
		DeletionProtection: jsii.Bool(true),
		Encryption:         awsdynamodb.TableEncryption_AWS_MANAGED,
		// The policy and the users' roles outlive the stack, on every stage.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	// The index the store defines (pretoken tenant members), so migration
	// 0003 finds it there.
	gsi, _ := dynamo.TenantIndexDefinition()
	t.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:        gsi.IndexName,
		PartitionKey:     &awsdynamodb.Attribute{Name: gsi.KeySchema[0].AttributeName, Type: awsdynamodb.AttributeType_STRING},
		SortKey:          &awsdynamodb.Attribute{Name: gsi.KeySchema[1].AttributeName, Type: awsdynamodb.AttributeType_STRING},
		ProjectionType:   awsdynamodb.ProjectionType(gsi.Projection.ProjectionType),
		NonKeyAttributes: jsii.Strings(gsi.Projection.NonKeyAttributes...),
	})
	return t
}

func (c *Pretoken) userPool(p Props) {
	removal, protect := awscdk.RemovalPolicy_RETAIN, true
	if p.Demo {
		removal, protect = awscdk.RemovalPolicy_DESTROY, false
	}
	c.UserPool = awscognito.NewUserPool(c.Construct, jsii.String("UserPool"), &awscognito.UserPoolProps{
		// Access-token customization (V2_0, V3_0) needs Essentials or Plus.
		FeaturePlan:        Tier(p.EventVersion),
		SignInAliases:      &awscognito.SignInAliases{Email: jsii.Bool(true)},
		AutoVerify:         &awscognito.AutoVerifiedAttrs{Email: jsii.Bool(true)},
		DeletionProtection: jsii.Bool(protect),
		RemovalPolicy:      removal,
		PasswordPolicy: &awscognito.PasswordPolicy{MinLength: jsii.Number(12), RequireDigits: jsii.Bool(true),
			RequireLowercase: jsii.Bool(true), RequireUppercase: jsii.Bool(true), RequireSymbols: jsii.Bool(true)},
		// tenant_id is copied into tokens: the web client below cannot write it.
		CustomAttributes: &map[string]awscognito.ICustomAttribute{
			"tenant_id": awscognito.NewStringAttribute(&awscognito.StringAttributeProps{Mutable: jsii.Bool(true)})},
	})
	// AddTrigger sets PreTokenGenerationConfig {LambdaArn, LambdaVersion}
	// and the invoke permission for cognito-idp.amazonaws.com with the
	// pool's ARN as SourceArn.
	c.UserPool.AddTrigger(awscognito.UserPoolOperation_PRE_TOKEN_GENERATION_CONFIG(), c.Function,
		awscognito.LambdaVersion(p.EventVersion))
	c.WebClient = c.UserPool.AddClient(jsii.String("WebClient"), &awscognito.UserPoolClientOptions{
		AuthFlows: &awscognito.AuthFlow{UserSrp: jsii.Bool(true)},
		ReadAttributes: awscognito.NewClientAttributes().WithStandardAttributes(&awscognito.StandardAttributesMask{
			Email: jsii.Bool(true), EmailVerified: jsii.Bool(true)}).WithCustomAttributes(jsii.String("tenant_id")),
		WriteAttributes: awscognito.NewClientAttributes().WithStandardAttributes(&awscognito.StandardAttributesMask{Email: jsii.Bool(true)}),
		// An issued token stays valid at APIs until it expires: 15 minutes
		// bounds how long a removed permission can still be used.
		AccessTokenValidity: awscdk.Duration_Minutes(jsii.Number(15)),
		IdTokenValidity:     awscdk.Duration_Minutes(jsii.Number(15)),
	})
}

func (c *Pretoken) managedPolicy(id string, who deploy.Who, poolArn, description string) awsiam.ManagedPolicy {
	st, err := Statements(who, *c.Table.TableArn(), poolArn)
	if err != nil {
		panic(fmt.Sprintf("pretoken: %v", err))
	}
	return awsiam.NewManagedPolicy(c.Construct, jsii.String(id), &awsiam.ManagedPolicyProps{
		Description: jsii.String(description), Statements: &st})
}

func (c *Pretoken) authorizer(p Props) {
	var issuer *string
	if c.UserPool != nil {
		issuer = c.UserPool.UserPoolProviderUrl()
	} else {
		parts := awscdk.Arn_Split(jsii.String(p.ExistingUserPoolArn), awscdk.ArnFormat_SLASH_RESOURCE_NAME)
		issuer = jsii.String(fmt.Sprintf("https://cognito-idp.%s.amazonaws.com/%s", *parts.Region, *parts.ResourceName))
	}
	clients := p.AuthorizerClientIDs
	if len(clients) == 0 {
		clients = []string{*c.WebClient.UserPoolClientId()}
	}
	logs := awslogs.NewLogGroup(c.Construct, jsii.String("AuthorizerLogs"), &awslogs.LogGroupProps{
		Retention: awslogs.RetentionDays_ONE_MONTH, RemovalPolicy: awscdk.RemovalPolicy_DESTROY})
	role := awsiam.NewRole(c.Construct, jsii.String("AuthorizerRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		InlinePolicies: &map[string]awsiam.PolicyDocument{"pretoken-authorizer": awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{
			Statements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Effect: awsiam.Effect_ALLOW, Actions: jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
				Resources: jsii.Strings(*logs.LogGroupArn())})}})},
	})
	c.Authorizer = awslambda.NewFunction(c.Construct, jsii.String("Authorizer"), &awslambda.FunctionProps{
		Description:  jsii.String("pretoken Lambda authorizer (roles, tenants, ID-token claims)"),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(filepath.Join(p.Dist, "authorizer")), nil),
		MemorySize:   jsii.Number(128),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(5)),
		Role:         role,
		LogGroup:     logs,
		Environment: &map[string]*string{
			"PRETOKEN_AUTHORIZER_CONFIG": jsii.String("/var/task/authorizer.yaml"),
			"POOL_ISSUER":                issuer,
			"WEB_CLIENT_ID":              awscdk.Fn_Join(jsii.String(","), jsii.Strings(clients...)),
		},
	})
}

// HTTPAuthorizer is the Lambda authorizer for an HTTP API route
// (payload 2.0, simple responses, the Authorization header), or nil
// without Props.Authorizer. Binding it to a route adds API Gateway's invoke
// permission with the API's ARN as SourceArn. Caching stays off: the answer
// depends on the path (the tenant in it) and API Gateway keys the cache by
// the token alone (README, "Downstream").
func (c *Pretoken) HTTPAuthorizer() awsapigatewayv2authorizers.HttpLambdaAuthorizer {
	if c.Authorizer == nil {
		return nil
	}
	return awsapigatewayv2authorizers.NewHttpLambdaAuthorizer(jsii.String("pretoken"), c.Authorizer,
		&awsapigatewayv2authorizers.HttpLambdaAuthorizerProps{
			ResponseTypes:   &[]awsapigatewayv2authorizers.HttpLambdaResponseType{awsapigatewayv2authorizers.HttpLambdaResponseType_SIMPLE},
			IdentitySource:  jsii.Strings("$request.header.Authorization"),
			ResultsCacheTtl: awscdk.Duration_Seconds(jsii.Number(0)),
		})
}

// alarm is one of the trigger's alarms: on the Lambda service's metrics, or
// (namespace pretoken) on the Embedded Metric Format metrics of the
// trigger's own log line, whose dimensions are FunctionName and Outcome.
type alarm struct {
	id, description, namespace, metric, outcome, statistic string
	period, evaluations, datapoints, threshold             float64
	op                                                     awscloudwatch.ComparisonOperator
}

// Alarms are the trigger's alarms, the same as serverless.yml's.
var alarms = []alarm{
	{"ErrorsAlarm", "pretoken trigger errors (users cannot sign in or refresh)", "AWS/Lambda", "Errors", "", "Sum", 60, 5, 2, 1, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD},
	{"ThrottlesAlarm", "pretoken trigger throttled", "AWS/Lambda", "Throttles", "", "Sum", 60, 5, 1, 1, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD},
	{"DurationAlarm", "pretoken trigger p99 duration above 1 s (Cognito gives up at 5 s)", "AWS/Lambda", "Duration", "", "p99", 300, 3, 2, 1000, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD},
	{"RefusedUnavailableAlarm", "pretoken refused tokens because no policy could be read (users cannot sign in)", "pretoken", "Tokens", string(trigger.OutcomeUnavailable), "Sum", 60, 5, 2, 1, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD},
	{"RefusedTooLargeAlarm", "pretoken refused tokens over the size budget (limits.maxTokenBytes)", "pretoken", "Tokens", string(trigger.OutcomeTooLarge), "Sum", 300, 1, 1, 1, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD},
	{"StaleAlarm", "pretoken serves a stale policy (DynamoDB unreachable; tokens are refused after the maximum staleness)", "pretoken", "CacheStale", string(trigger.OutcomeIssued), "Sum", 60, 3, 2, 1, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD},
}

func (c *Pretoken) alarms(p Props) {
	var topic awssns.ITopic
	if p.AlarmTopicArn != "" {
		topic = awssns.Topic_FromTopicArn(c.Construct, jsii.String("AlarmTopic"), jsii.String(p.AlarmTopicArn))
	}
	for _, a := range alarms {
		dims := map[string]*string{"FunctionName": c.Function.FunctionName()}
		if a.outcome != "" {
			dims["Outcome"] = jsii.String(a.outcome)
		}
		metric := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(a.namespace), MetricName: jsii.String(a.metric), DimensionsMap: &dims,
			Statistic: jsii.String(a.statistic), Period: awscdk.Duration_Seconds(jsii.Number(a.period))})
		al := awscloudwatch.NewAlarm(c.Construct, jsii.String(a.id), &awscloudwatch.AlarmProps{
			AlarmDescription: jsii.String(a.description), Metric: metric,
			EvaluationPeriods: jsii.Number(a.evaluations), DatapointsToAlarm: jsii.Number(a.datapoints),
			Threshold: jsii.Number(a.threshold), ComparisonOperator: a.op,
			TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		if topic != nil {
			al.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))
			al.AddOkAction(awscloudwatchactions.NewSnsAction(topic))
		}
		c.Alarms = append(c.Alarms, al)
	}
}

// bundle stages the trigger's folder with a policy file beside the
// bootstrap, as `make build POLICY_FILE=file` bundles it, for the asset.
func bundle(dir, policy string) string {
	stage, err := os.MkdirTemp("", "pretoken-trigger-")
	if err == nil {
		err = copyFile(filepath.Join(dir, "bootstrap"), filepath.Join(stage, "bootstrap"), 0o755)
	}
	if err == nil {
		err = copyFile(policy, filepath.Join(stage, filepath.Base(policy)), 0o644)
	}
	if err != nil {
		panic(fmt.Sprintf("pretoken: bundle the policy: %v", err))
	}
	return stage
}

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, mode)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
