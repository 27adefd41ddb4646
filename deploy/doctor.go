package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"

	"github.com/pretoken/pretoken/permissions"
)

// DoctorPools is the part of the Cognito API doctor reads.
type DoctorPools interface {
	DescribeUserPool(context.Context, *cip.DescribeUserPoolInput, ...func(*cip.Options)) (*cip.DescribeUserPoolOutput, error)
	ListUserPoolClients(context.Context, *cip.ListUserPoolClientsInput, ...func(*cip.Options)) (*cip.ListUserPoolClientsOutput, error)
	DescribeUserPoolClient(context.Context, *cip.DescribeUserPoolClientInput, ...func(*cip.Options)) (*cip.DescribeUserPoolClientOutput, error)
}

// DoctorFunctions is the part of the Lambda API doctor reads.
type DoctorFunctions interface {
	GetPolicy(context.Context, *lambda.GetPolicyInput, ...func(*lambda.Options)) (*lambda.GetPolicyOutput, error)
	GetFunctionConfiguration(context.Context, *lambda.GetFunctionConfigurationInput, ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error)
}

// Simulator evaluates a role's policies (iam:SimulatePrincipalPolicy).
type Simulator interface {
	SimulatePrincipalPolicy(context.Context, *iam.SimulatePrincipalPolicyInput, ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error)
}

// Alarms lists CloudWatch alarms.
type Alarms interface {
	DescribeAlarms(context.Context, *cloudwatch.DescribeAlarmsInput, ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

// DoctorAPI is every client doctor reads through. It makes only Describe,
// Get, List and Simulate calls (the tests record them).
type DoctorAPI struct {
	Pools     DoctorPools
	Functions DoctorFunctions
	IAM       Simulator
	Alarms    Alarms
}

// DoctorActions are the IAM actions pretoken doctor calls outside
// DynamoDB (where it needs what Readonly allows). Sorted.
var DoctorActions = []string{
	"cloudwatch:DescribeAlarms",
	"cognito-idp:DescribeUserPool", "cognito-idp:DescribeUserPoolClient", "cognito-idp:ListUserPoolClients",
	"iam:SimulatePrincipalPolicy",
	"lambda:GetFunctionConfiguration", "lambda:GetPolicy",
}

// DoctorOptions says what to check.
type DoctorOptions struct {
	UserPoolID string
	// FunctionARN is the trigger to check; "" takes the pool's.
	FunctionARN string
	// Table is the policy table's name; "" takes the function's
	// PRETOKEN_TABLE.
	Table string
	// Policy is the policy to check app clients against (from a file);
	// nil reads it from the table with Store.
	Policy *permissions.Policy
	// Store checks the table (check 7) and returns its live policy; the
	// caller owns the DynamoDB wiring. With Policy set, Store may be nil.
	Store func(ctx context.Context, table string) (*permissions.Policy, Check)
}

// Check is the outcome of one doctor check: what was found, and, when it
// fails, what to do.
type Check struct {
	N      int    `json:"n"`
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

func pass(detail string) Check { return Check{OK: true, Detail: detail} }
func fail(detail, fix string) Check {
	return Check{Detail: detail, Fix: fix}
}

// CheckNames are the doctor's checks, in order.
var CheckNames = []string{
	"trigger", "invoke permission", "feature plan", "writable trusted attributes",
	"scopes under the policy's prefix", "function configuration", "table and policy", "alarms",
}

// Doctor checks a deployed setup, reading only, and returns one Check per
// entry of CheckNames. A call that fails fails its check, with the error;
// the others still run.
func Doctor(ctx context.Context, api DoctorAPI, o DoctorOptions) []Check {
	checks := make([]Check, len(CheckNames))
	set := func(n int, c Check) {
		c.N, c.Name = n, CheckNames[n-1]
		checks[n-1] = c
	}
	pool, perr := describe(ctx, api.Pools, o.UserPoolID)
	poolARN := ""
	if perr == nil {
		poolARN = aws.ToString(pool.Arn)
	}

	// 1. The trigger and its version.
	fnARN, version := o.FunctionARN, ""
	switch {
	case perr != nil:
		set(1, fail(short(perr), "check --user-pool-id and that your credentials may call cognito-idp:DescribeUserPool"))
	default:
		current := TriggerARN(pool.LambdaConfig)
		if c := pool.LambdaConfig; c != nil && c.PreTokenGenerationConfig != nil {
			version = string(c.PreTokenGenerationConfig.LambdaVersion)
		}
		if current != "" && version == "" {
			version = "V1_0"
		}
		switch {
		case current == "":
			set(1, fail("the pool has no pre token generation trigger", fmt.Sprintf("pretoken attach --user-pool-id %s --function-arn ARN --version V1_0|V2_0|V3_0", o.UserPoolID)))
		case fnARN != "" && current != fnARN:
			set(1, fail(fmt.Sprintf("the pool calls %s (%s), not %s", current, version, fnARN), fmt.Sprintf("pretoken attach --user-pool-id %s --function-arn %s --version %s", o.UserPoolID, fnARN, version)))
		default:
			set(1, pass(fmt.Sprintf("the pool calls %s, event version %s", current, version)))
		}
		if fnARN == "" {
			fnARN = current
		}
	}
	fn, fnErr := ParseFunctionARN(fnARN)
	if fnARN == "" {
		fnErr = fmt.Errorf("no function to check: the pool has no trigger and no --function-arn was given")
	}

	// 2. Cognito may invoke the function for this pool.
	switch {
	case fnErr != nil:
		set(2, fail(fnErr.Error(), "give --function-arn"))
	case perr != nil:
		set(2, fail("the pool could not be read", "see check 1"))
	default:
		doc, _, err := GetPolicy(ctx, api.Functions, fn)
		am := arnAccount.FindStringSubmatch(poolARN)
		var sid string
		for _, st := range doc.Statement {
			if am != nil && st.LetsCognitoInvoke(poolARN, am[1]) {
				sid = st.Sid
				break
			}
		}
		switch {
		case err != nil:
			set(2, fail(short(err), "check that your credentials may call lambda:GetPolicy on the function"))
		case sid == "":
			set(2, fail(fmt.Sprintf("no statement of %s's resource policy lets %s invoke it for %s: every sign-in and refresh fails", fnARN, CognitoPrincipal, poolARN),
				fmt.Sprintf("pretoken attach --user-pool-id %s --function-arn %s --version %s (it adds statement %s)", o.UserPoolID, fnARN, orV1(version), PermissionID(o.UserPoolID))))
		default:
			set(2, pass(fmt.Sprintf("statement %s lets %s invoke %s for this pool", sid, CognitoPrincipal, fnARN)))
		}
	}

	// 3. The feature plan supports the event version.
	switch {
	case perr != nil:
		set(3, fail("the pool could not be read", "see check 1"))
	case version == "":
		set(3, fail("no trigger attached, so no event version to check", "see check 1"))
	default:
		tier := string(pool.UserPoolTier)
		if version != "V1_0" && tier != string(types.UserPoolTierTypeEssentials) && tier != string(types.UserPoolTierTypePlus) {
			set(3, fail(fmt.Sprintf("event version %s needs the Essentials or Plus plan; the pool's plan is %s", version, orUnknown(tier)),
				fmt.Sprintf("pretoken attach --user-pool-id %s --function-arn %s --version V1_0 (ID-token claims), or add --upgrade-plan", o.UserPoolID, fnARN)))
		} else {
			set(3, pass(fmt.Sprintf("plan %s supports %s", orUnknown(tier), version)))
		}
	}

	// 6. The function's configuration.
	table := o.Table
	if fnErr != nil {
		set(6, fail(fnErr.Error(), "give --function-arn"))
	} else {
		var c Check
		c, table = checkFunction(ctx, api, fn, o.Table)
		set(6, c)
	}

	// 7. The table and its live policy (or the policy file).
	policy := o.Policy
	switch {
	case o.Policy != nil:
		set(7, pass("the policy file validates; the table was not read (--policy)"))
	case table == "" || o.Store == nil:
		set(7, fail("no table to check: the function names none", "give --table NAME (or --policy FILE)"))
	default:
		var c Check
		policy, c = o.Store(ctx, table)
		set(7, c)
	}

	// 4 and 5: the app clients, against the policy.
	clients, cerr := appClients(ctx, api.Pools, o.UserPoolID)
	switch {
	case perr != nil:
		set(4, fail("the pool could not be read", "see check 1"))
		set(5, fail("the pool could not be read", "see check 1"))
	case cerr != nil:
		set(4, fail(short(cerr), "check that your credentials may call cognito-idp:ListUserPoolClients and DescribeUserPoolClient"))
		set(5, fail(short(cerr), "see check 4"))
	case policy == nil:
		set(4, fail("no policy to check the app clients against", "see check 7"))
		set(5, fail("no policy to check the app clients against", "see check 7"))
	default:
		set(4, checkWritable(clients, policy))
		set(5, checkScopes(clients, policy))
	}

	// 8. The alarms.
	if fnErr != nil {
		set(8, fail(fnErr.Error(), "give --function-arn"))
	} else {
		set(8, checkAlarms(ctx, api.Alarms, fn))
	}
	return checks
}

// short is an error as one line: what failed, and the service's error code
// and message, without the SDK's operation and request details.
func short(err error) string {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return err.Error()
	}
	ours, _, _ := strings.Cut(err.Error(), "operation error ")
	ours = strings.TrimSuffix(strings.TrimSpace(ours), ":")
	if ours != "" {
		ours += ": "
	}
	return ours + apiErr.ErrorCode() + ": " + apiErr.ErrorMessage()
}

func orV1(v string) string {
	if v == "" {
		return "V1_0"
	}
	return v
}

func orUnknown(tier string) string {
	if tier == "" {
		return "not reported (Lite?)"
	}
	return tier
}

func appClients(ctx context.Context, pools DoctorPools, id string) ([]*types.UserPoolClientType, error) {
	var out []*types.UserPoolClientType
	p := cip.NewListUserPoolClientsPaginator(pools, &cip.ListUserPoolClientsInput{UserPoolId: &id, MaxResults: aws.Int32(60)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the app clients of %s: %w", id, err)
		}
		for _, c := range page.UserPoolClients {
			d, err := pools.DescribeUserPoolClient(ctx, &cip.DescribeUserPoolClientInput{UserPoolId: &id, ClientId: c.ClientId})
			if err != nil {
				return nil, fmt.Errorf("describe app client %s: %w", aws.ToString(c.ClientId), err)
			}
			if d.UserPoolClient != nil {
				out = append(out, d.UserPoolClient)
			}
		}
	}
	return out, nil
}

func clientName(c *types.UserPoolClientType) string {
	if n := aws.ToString(c.ClientName); n != "" {
		return fmt.Sprintf("%s (%s)", n, aws.ToString(c.ClientId))
	}
	return aws.ToString(c.ClientId)
}

// writable reports whether users of client c can write attribute name.
// Without WriteAttributes, an app client writes the pool's standard
// attributes, not custom ones (API reference, UserPoolClientType).
func writable(c *types.UserPoolClientType, name string) bool {
	if len(c.WriteAttributes) > 0 {
		return slices.Contains(c.WriteAttributes, name)
	}
	return !strings.HasPrefix(name, "custom:") && !strings.HasPrefix(name, "dev:")
}

func checkWritable(clients []*types.UserPoolClientType, p *permissions.Policy) Check {
	trusted := permissions.TrustedAttributes(p)
	var bad []string
	for _, c := range clients {
		seen := map[string]bool{}
		for _, a := range trusted {
			if !seen[a.Name] && writable(c, a.Name) {
				seen[a.Name] = true
				bad = append(bad, fmt.Sprintf("client %s can write %s (%s)", clientName(c), a.Name, a.Why))
			}
		}
	}
	if len(bad) > 0 {
		return fail(strings.Join(bad, "; ")+": a user can give themselves what the policy reads from it",
			"remove these attributes from each client's WriteAttributes (aws cognito-idp update-user-pool-client, sending every setting back), or take the claim from groups or the table; an attribute mapped from an identity provider stays writable, so do not trust one")
	}
	var names []string
	for _, a := range trusted {
		if !slices.Contains(names, a.Name) {
			names = append(names, a.Name)
		}
	}
	if len(names) == 0 {
		return pass(fmt.Sprintf("the policy trusts no user attribute (%d app clients)", len(clients)))
	}
	return pass(fmt.Sprintf("no app client of %d can write %s", len(clients), strings.Join(names, ", ")))
}

// prefixes are the scope prefixes the policy's access tokens use.
func prefixes(p *permissions.Policy) []string {
	var out []string
	for _, prof := range p.Clients {
		if pre := prof.AccessToken.ScopePrefix; pre != "" && !slices.Contains(out, pre) {
			out = append(out, pre)
		}
	}
	slices.Sort(out)
	return out
}

func checkScopes(clients []*types.UserPoolClientType, p *permissions.Policy) Check {
	pres := prefixes(p)
	var bad []string
	for _, c := range clients {
		for _, s := range c.AllowedOAuthScopes {
			for _, pre := range pres {
				if strings.HasPrefix(s, pre) {
					bad = append(bad, fmt.Sprintf("client %s is allowed %s", clientName(c), s))
					break
				}
			}
		}
	}
	if len(bad) > 0 {
		return fail(strings.Join(bad, "; ")+fmt.Sprintf(" (under the policy's scope prefix %s): Cognito puts such a scope into the access token when the client asks for it, without the trigger; the trigger suppresses those it does not grant", strings.Join(pres, ", ")),
			"remove these scopes from the clients' AllowedOAuthScopes, so a grant comes from the policy alone")
	}
	if len(pres) == 0 {
		return pass("the policy adds no prefixed scopes")
	}
	return pass(fmt.Sprintf("no app client is allowed a scope under %s", strings.Join(pres, ", ")))
}

// TableARN is the ARN of the table named name, in fn's partition, region
// and account.
func TableARN(fn Function, name string) string {
	return fmt.Sprintf("arn:%s:dynamodb:%s:%s:table/%s", fn.Partition, fn.Region, fn.Account, name)
}

// checkFunction checks timeout, PRETOKEN_TABLE and the role; it returns
// the table the function names (or table, when given).
func checkFunction(ctx context.Context, api DoctorAPI, fn Function, table string) (Check, string) {
	name := fn.Unqualified()
	cfg, err := api.Functions.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: &name, Qualifier: fn.qualifier()})
	if err != nil {
		return fail(fmt.Sprintf("read the configuration of %s: %s", name, short(err)), "check --function-arn and that your credentials may call lambda:GetFunctionConfiguration"), table
	}
	var problems, fixes []string
	timeout := aws.ToInt32(cfg.Timeout)
	if cfg.Timeout == nil || timeout > 5 {
		problems = append(problems, fmt.Sprintf("timeout %d s (Cognito waits 5 s)", timeout))
		fixes = append(fixes, "set the timeout to 5 s or less (serverless.yml does)")
	}
	named := ""
	if cfg.Environment != nil {
		named = cfg.Environment.Variables["PRETOKEN_TABLE"]
	}
	switch {
	case named == "":
		problems = append(problems, "PRETOKEN_TABLE is not set")
		fixes = append(fixes, "set PRETOKEN_TABLE to the policy table")
	case table != "" && named != table:
		problems = append(problems, fmt.Sprintf("PRETOKEN_TABLE is %s, not %s", named, table))
		fixes = append(fixes, "point PRETOKEN_TABLE at the policy table")
	}
	if table == "" {
		table = named
	}
	role := aws.ToString(cfg.Role)
	if table != "" {
		arn := TableARN(fn, table)
		actions := Actions(Trigger)
		out, err := api.IAM.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{PolicySourceArn: &role, ActionNames: actions, ResourceArns: []string{arn}})
		if err != nil {
			problems = append(problems, fmt.Sprintf("could not simulate role %s: %s", role, short(err)))
			fixes = append(fixes, "allow yourself iam:SimulatePrincipalPolicy on the role")
		} else {
			allowed := map[string]bool{}
			for _, r := range out.EvaluationResults {
				if r.EvalDecision == "allowed" {
					allowed[aws.ToString(r.EvalActionName)] = true
				}
			}
			var denied []string
			for _, a := range actions {
				if !allowed[a] {
					denied = append(denied, a)
				}
			}
			if len(denied) > 0 {
				problems = append(problems, fmt.Sprintf("role %s may not call %s on %s", role, strings.Join(denied, ", "), arn))
				fixes = append(fixes, "allow the role what pretoken iam-policy --for trigger prints")
			}
		}
	}
	if len(problems) > 0 {
		return fail(strings.Join(problems, "; "), strings.Join(fixes, "; ")), table
	}
	return pass(fmt.Sprintf("timeout %d s, PRETOKEN_TABLE %s, role %s may call %s", timeout, table, role, strings.Join(Actions(Trigger), ", "))), table
}

// alarmMetrics are the AWS/Lambda metrics of the function that the stack
// alarms on (serverless.yml).
var alarmMetrics = []string{"Errors", "Throttles", "Duration"}

func checkAlarms(ctx context.Context, api Alarms, fn Function) Check {
	found := map[string]string{}
	p := cloudwatch.NewDescribeAlarmsPaginator(api, &cloudwatch.DescribeAlarmsInput{AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fail(fmt.Sprintf("list alarms: %s", short(err)), "check that your credentials may call cloudwatch:DescribeAlarms")
		}
		for _, a := range page.MetricAlarms {
			if aws.ToString(a.Namespace) != "AWS/Lambda" {
				continue
			}
			for _, d := range a.Dimensions {
				if aws.ToString(d.Name) == "FunctionName" && aws.ToString(d.Value) == fn.Name {
					found[aws.ToString(a.MetricName)] = aws.ToString(a.AlarmName)
				}
			}
		}
	}
	var missing []string
	for _, m := range alarmMetrics {
		if found[m] == "" {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return fail(fmt.Sprintf("no alarm on the %s metric(s) of %s", strings.Join(missing, ", "), fn.Name),
			"deploy the stack (serverless.yml creates them), or create them for this function")
	}
	return pass(fmt.Sprintf("alarms on Errors, Throttles and Duration of %s", fn.Name))
}
