package cdk

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/deploy"
	"github.com/pretoken/pretoken/permissions/dynamo"
	"github.com/pretoken/pretoken/trigger"
)

// template is a synthesized CloudFormation template.
type template struct {
	Resources map[string]resource
	Outputs   map[string]struct{ Value any }
}

type resource struct {
	Type                string
	DependsOn           any
	DeletionPolicy      string
	UpdateReplacePolicy string
	Properties          map[string]any
}

func readTemplate(path string) (template, error) {
	var tpl template
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &tpl)
	}
	return tpl, err
}

// templates reads every stack template in a cloud assembly (cdk.out).
func templates(dir string) (map[string]template, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.template.json"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no templates in %s (%v)", dir, err)
	}
	out := map[string]template{}
	for _, p := range paths {
		tpl, err := readTemplate(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out[filepath.Base(p)] = tpl
	}
	return out, nil
}

func getAtt(name, attr string) any { return map[string]any{"Fn::GetAtt": []any{name, attr}} }
func ref(name string) any          { return map[string]any{"Ref": name} }

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func strs(v any) []string {
	var out []string
	for _, x := range asList(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// found is what the checks locate in a template by its shape, so the same
// checks read a stack synthesized here and the example app's cdk.out.
type found struct {
	trigger, role, table, pool string // logical ids; table and pool may be ""
}

// locate finds the trigger (the function whose environment has
// PRETOKEN_FAILURE_MODE), its role, the policy table and a new user pool.
func locate(tpl template) (found, []string) {
	var f found
	var problems []string
	for name, r := range tpl.Resources {
		switch r.Type {
		case "AWS::Lambda::Function":
			env, _ := r.Properties["Environment"].(map[string]any)
			vars, _ := env["Variables"].(map[string]any)
			if vars["PRETOKEN_FAILURE_MODE"] != nil {
				if f.trigger != "" {
					problems = append(problems, "two trigger functions: "+f.trigger+", "+name)
				}
				f.trigger = name
				if g, ok := r.Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any); ok {
					f.role = g[0].(string)
				}
			}
		case "AWS::DynamoDB::Table":
			f.table = name
		case "AWS::Cognito::UserPool":
			f.pool = name
		}
	}
	if f.trigger == "" || f.role == "" {
		problems = append(problems, "no trigger function with a role of the stack")
	}
	return f, problems
}

// statements are the statements of every IAM policy that applies to role:
// its inline policies and the AWS::IAM::Policy resources attached to it.
func statements(tpl template, role string) []map[string]any {
	var docs []any
	for name, r := range tpl.Resources {
		switch {
		case name == role && r.Type == "AWS::IAM::Role":
			for _, p := range asList(r.Properties["Policies"]) {
				docs = append(docs, p.(map[string]any)["PolicyDocument"])
			}
			if r.Properties["ManagedPolicyArns"] != nil {
				docs = append(docs, map[string]any{"Statement": []any{map[string]any{"Action": "managed policy", "Resource": r.Properties["ManagedPolicyArns"]}}})
			}
		case r.Type == "AWS::IAM::Policy" || r.Type == "AWS::IAM::ManagedPolicy":
			for _, x := range asList(r.Properties["Roles"]) {
				if cmp.Equal(x, ref(role)) {
					docs = append(docs, r.Properties["PolicyDocument"])
				}
			}
		}
	}
	var out []map[string]any
	for _, d := range docs {
		for _, st := range asList(d.(map[string]any)["Statement"]) {
			out = append(out, st.(map[string]any))
		}
	}
	return out
}

// checkTrigger holds a stack's trigger to what every pretoken stack
// promises: its role allows exactly deploy.Actions(trigger) on the table and
// nothing else but its own logs; provided.al2023 on arm64, under Cognito's
// 5 s; logs kept for a bounded time.
func checkTrigger(tpl template) []string {
	f, problems := locate(tpl)
	if len(problems) > 0 {
		return problems
	}
	fn := tpl.Resources[f.trigger].Properties
	for k, want := range map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": []any{"arm64"}, "MemorySize": 128.0} {
		if diff := cmp.Diff(want, fn[k]); diff != "" {
			problems = append(problems, fmt.Sprintf("trigger %s (-want +got):\n%s", k, diff))
		}
	}
	if timeout, _ := fn["Timeout"].(float64); timeout <= 0 || timeout >= 5 {
		problems = append(problems, fmt.Sprintf("trigger Timeout %v, want below Cognito's 5 s", fn["Timeout"]))
	}
	if code, _ := fn["Code"].(map[string]any); code["S3Key"] == nil {
		problems = append(problems, fmt.Sprintf("trigger code %v: want an asset", fn["Code"]))
	}
	vars := fn["Environment"].(map[string]any)["Variables"].(map[string]any)
	for _, v := range []string{"PRETOKEN_REFRESH_INTERVAL", "PRETOKEN_MAX_STALENESS", "PRETOKEN_FAILURE_MODE", "PRETOKEN_USER_ASSIGNMENTS", "PRETOKEN_LOG_LEVEL"} {
		if vars[v] == nil {
			problems = append(problems, "no "+v+" in the trigger's environment")
		}
	}
	if (vars["PRETOKEN_TABLE"] == nil) == (vars["PRETOKEN_POLICY_FILE"] == nil) {
		problems = append(problems, fmt.Sprintf("trigger environment %v: want PRETOKEN_TABLE or PRETOKEN_POLICY_FILE", vars))
	}
	if f.table != "" && !cmp.Equal(vars["PRETOKEN_TABLE"], ref(f.table)) {
		problems = append(problems, fmt.Sprintf("PRETOKEN_TABLE %v, want the stack's table %s", vars["PRETOKEN_TABLE"], f.table))
	}
	if lc, _ := fn["LoggingConfig"].(map[string]any); lc["LogGroup"] == nil {
		problems = append(problems, "the trigger logs to a log group the stack does not manage")
	} else if lg := tpl.Resources[refName(lc["LogGroup"])]; lg.Properties["RetentionInDays"] == nil {
		problems = append(problems, "the trigger's log group keeps logs forever")
	}

	var table []string
	for _, st := range statements(tpl, f.role) {
		if st["Effect"] != "Allow" {
			problems = append(problems, fmt.Sprintf("trigger role statement %v", st))
		}
		for _, a := range strs(st["Action"]) {
			switch {
			case strings.HasPrefix(a, "dynamodb:"):
				table = append(table, a)
				if res := asList(st["Resource"]); len(res) != 1 || (f.table != "" && !cmp.Equal(res[0], getAtt(f.table, "Arn"))) {
					problems = append(problems, fmt.Sprintf("trigger role: %s on %v, want the table alone (no index)", a, res))
				}
			case a == "logs:CreateLogStream" || a == "logs:PutLogEvents":
			default:
				problems = append(problems, fmt.Sprintf("trigger role allows %s", a))
			}
		}
	}
	slices.Sort(table)
	if vars["PRETOKEN_POLICY_FILE"] != nil {
		if len(table) > 0 {
			problems = append(problems, fmt.Sprintf("a bundled policy reads no table, yet the role allows %v", table))
		}
	} else if diff := cmp.Diff(deploy.Actions(deploy.Trigger), table); diff != "" {
		problems = append(problems, fmt.Sprintf("the trigger role allows other DynamoDB actions than deploy.Actions(trigger) (-want +got):\n%s", diff))
	}
	return problems
}

func refName(v any) string {
	if m, ok := v.(map[string]any); ok {
		if s, ok := m["Ref"].(string); ok {
			return s
		}
	}
	return ""
}

// checkPermissions: every invoke permission names its source, and Cognito
// may invoke the trigger from the new pool (SourceArn its ARN) and from the
// existing pool, if any.
func checkPermissions(tpl template, version, existingPool string) []string {
	f, problems := locate(tpl)
	if len(problems) > 0 {
		return problems
	}
	var cognito []any
	for name, r := range tpl.Resources {
		if r.Type != "AWS::Lambda::Permission" {
			continue
		}
		if r.Properties["SourceArn"] == nil {
			problems = append(problems, name+" has no SourceArn: anyone of its principal could invoke")
		}
		if r.Properties["Principal"] == "cognito-idp.amazonaws.com" {
			if !cmp.Equal(r.Properties["FunctionName"], getAtt(f.trigger, "Arn")) || r.Properties["Action"] != "lambda:InvokeFunction" {
				problems = append(problems, fmt.Sprintf("%s: %v", name, r.Properties))
			}
			cognito = append(cognito, r.Properties["SourceArn"])
		}
	}
	var want []any
	if f.pool != "" {
		want = append(want, getAtt(f.pool, "Arn"))
		pool := tpl.Resources[f.pool].Properties
		lc := map[string]any{"PreTokenGenerationConfig": map[string]any{"LambdaArn": getAtt(f.trigger, "Arn"), "LambdaVersion": version}}
		if diff := cmp.Diff(lc, pool["LambdaConfig"]); diff != "" {
			problems = append(problems, fmt.Sprintf("pool LambdaConfig (-want +got):\n%s", diff))
		}
		if got, wantTier := pool["UserPoolTier"], string(Tier(version)); got != wantTier {
			problems = append(problems, fmt.Sprintf("%s: UserPoolTier %v, want %s", version, got, wantTier))
		}
	}
	if existingPool != "" {
		want = append(want, existingPool)
	}
	sortAny := func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) }
	slices.SortFunc(want, sortAny)
	slices.SortFunc(cognito, sortAny)
	if diff := cmp.Diff(want, cognito); diff != "" {
		problems = append(problems, fmt.Sprintf("Cognito's invoke permissions, by SourceArn (-want +got):\n%s", diff))
	}
	return problems
}

// checkTable: the settings that keep the policy: PITR, deletion protection,
// retained with the stack, encrypted, the store's keys and index.
func checkTable(tpl template) []string {
	f, problems := locate(tpl)
	if f.table == "" {
		return append(problems, "no table")
	}
	r := tpl.Resources[f.table]
	if r.DeletionPolicy != "Retain" || r.UpdateReplacePolicy != "Retain" {
		problems = append(problems, fmt.Sprintf("table DeletionPolicy %q, UpdateReplacePolicy %q, want Retain", r.DeletionPolicy, r.UpdateReplacePolicy))
	}
	gsi, _ := dynamo.TenantIndexDefinition()
	for k, want := range map[string]any{
		"BillingMode":                      "PAY_PER_REQUEST",
		"DeletionProtectionEnabled":        true,
		"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
		"SSESpecification":                 map[string]any{"SSEEnabled": true},
		"KeySchema": []any{map[string]any{"AttributeName": "PK", "KeyType": "HASH"},
			map[string]any{"AttributeName": "SK", "KeyType": "RANGE"}},
		"GlobalSecondaryIndexes": []any{map[string]any{"IndexName": *gsi.IndexName,
			"KeySchema":  []any{map[string]any{"AttributeName": "TPK", "KeyType": "HASH"}, map[string]any{"AttributeName": "TSK", "KeyType": "RANGE"}},
			"Projection": map[string]any{"ProjectionType": "INCLUDE", "NonKeyAttributes": []any{"roles"}}}},
	} {
		if diff := cmp.Diff(want, r.Properties[k]); diff != "" {
			problems = append(problems, fmt.Sprintf("table %s (-want +got):\n%s", k, diff))
		}
	}
	return problems
}

// checkAlarms: the trigger's six alarms; those on its own metrics name a
// metric its Embedded Metric Format line carries, with the line's
// dimensions (FunctionName, Outcome) and a real outcome.
func checkAlarms(tpl template, topic string) []string {
	f, problems := locate(tpl)
	metrics := trigger.Metrics()
	found := map[string]bool{}
	for name, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		p := r.Properties
		if topic != "" && (!cmp.Equal(p["AlarmActions"], []any{topic}) || !cmp.Equal(p["OKActions"], []any{topic})) {
			problems = append(problems, fmt.Sprintf("%s: actions %v / %v, want the topic", name, p["AlarmActions"], p["OKActions"]))
		}
		dims := map[string]any{}
		for _, d := range asList(p["Dimensions"]) {
			dims[d.(map[string]any)["Name"].(string)] = d.(map[string]any)["Value"]
		}
		if !cmp.Equal(dims["FunctionName"], ref(f.trigger)) {
			continue
		}
		m, _ := p["MetricName"].(string)
		switch p["Namespace"] {
		case "pretoken":
			outcome, _ := dims["Outcome"].(string)
			if !slices.Contains(metrics, m) || !slices.Contains(trigger.Outcomes, trigger.Outcome(outcome)) || len(dims) != 2 {
				problems = append(problems, fmt.Sprintf("%s: metric %s with %v is not in the trigger's log line (metrics %v, outcomes %v)", name, m, dims, metrics, trigger.Outcomes))
			}
			found[m+"/"+outcome] = true
		case "AWS/Lambda":
			if m == "Duration" && p["ExtendedStatistic"] != "p99" {
				problems = append(problems, fmt.Sprintf("duration alarm on %v, want p99", p["ExtendedStatistic"]))
			}
			found[m] = true
		}
	}
	for _, m := range []string{"Errors", "Throttles", "Duration", "Tokens/unavailable", "Tokens/too_large", "CacheStale/issued"} {
		if !found[m] {
			problems = append(problems, "no alarm on the trigger's "+m)
		}
	}
	return problems
}

// dangling lists references to resources the template lacks.
func dangling(tpl template) []string {
	var problems []string
	var walk func(from string, v any)
	walk = func(from string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				var target string
				switch k {
				case "Ref":
					target, _ = c.(string)
				case "Fn::GetAtt":
					if l, ok := c.([]any); ok {
						target, _ = l[0].(string)
					}
				}
				if target != "" && !strings.HasPrefix(target, "AWS::") {
					if _, ok := tpl.Resources[target]; !ok && target != "BootstrapVersion" {
						problems = append(problems, from+" refers to "+target+", which the template lacks")
					}
				}
				walk(from, c)
			}
		case []any:
			for _, c := range x {
				walk(from, c)
			}
		}
	}
	for name, r := range tpl.Resources {
		walk(name, r.Properties)
		for _, d := range asList(r.DependsOn) {
			if _, ok := tpl.Resources[d.(string)]; !ok {
				problems = append(problems, name+" depends on "+d.(string)+", which the template lacks")
			}
		}
	}
	for name, o := range tpl.Outputs {
		walk("output "+name, o.Value)
	}
	slices.Sort(problems)
	return problems
}

// checkOperatorPolicies: the managed policies for people and CI allow
// exactly deploy.Actions(admin) and deploy.Actions(readonly) on the table
// and its indexes, and the admin one deploy.CognitoActions on the pool
// when there is one.
func checkOperatorPolicies(tpl template, withPool bool) []string {
	var problems []string
	seen := map[deploy.Who]bool{}
	for name, r := range tpl.Resources {
		if r.Type != "AWS::IAM::ManagedPolicy" {
			continue
		}
		desc, _ := r.Properties["Description"].(string)
		var who deploy.Who
		switch {
		case strings.HasPrefix(desc, "pretoken admin"):
			who = deploy.Admin
		case strings.HasPrefix(desc, "pretoken read-only"):
			who = deploy.Readonly
		default:
			continue
		}
		seen[who] = true
		var table, cognito []string
		for _, st := range asList(r.Properties["PolicyDocument"].(map[string]any)["Statement"]) {
			for _, a := range strs(st.(map[string]any)["Action"]) {
				switch {
				case strings.HasPrefix(a, "dynamodb:"):
					table = append(table, a)
				case strings.HasPrefix(a, "cognito-idp:"):
					cognito = append(cognito, a)
				default:
					problems = append(problems, fmt.Sprintf("%s allows %s", name, a))
				}
			}
		}
		// The same action may come twice: once on the table, once on its
		// indexes (the tenant members' Query).
		slices.Sort(table)
		table = slices.Compact(table)
		slices.Sort(cognito)
		if diff := cmp.Diff(deploy.Actions(who), table); diff != "" {
			problems = append(problems, fmt.Sprintf("%s: DynamoDB actions other than deploy.Actions(%s) (-want +got):\n%s", name, who, diff))
		}
		var want []string
		if who == deploy.Admin && withPool {
			want = deploy.CognitoActions
		}
		if diff := cmp.Diff(want, cognito); diff != "" {
			problems = append(problems, fmt.Sprintf("%s: Cognito actions (-want +got):\n%s", name, diff))
		}
	}
	if !seen[deploy.Admin] || !seen[deploy.Readonly] {
		problems = append(problems, fmt.Sprintf("operator policies found: %v, want admin and readonly", seen))
	}
	return problems
}

// checkLeastPrivilege: no IAM statement in the stack allows a wildcard
// action or every resource.
func checkLeastPrivilege(tpl template) []string {
	var problems []string
	for name, r := range tpl.Resources {
		var docs []any
		switch r.Type {
		case "AWS::IAM::Role":
			for _, p := range asList(r.Properties["Policies"]) {
				docs = append(docs, p.(map[string]any)["PolicyDocument"])
			}
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy":
			docs = append(docs, r.Properties["PolicyDocument"])
		}
		for _, d := range docs {
			for _, st := range asList(d.(map[string]any)["Statement"]) {
				for _, a := range strs(st.(map[string]any)["Action"]) {
					if strings.Contains(a, "*") {
						problems = append(problems, fmt.Sprintf("%s allows wildcard action %s", name, a))
					}
				}
				for _, res := range asList(st.(map[string]any)["Resource"]) {
					if res == "*" {
						problems = append(problems, fmt.Sprintf("%s allows %v on every resource", name, st.(map[string]any)["Action"]))
					}
				}
			}
		}
	}
	return problems
}
