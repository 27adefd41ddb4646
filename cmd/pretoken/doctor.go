package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/pretoken/pretoken/deploy"
	"github.com/pretoken/pretoken/migrations"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

type doctorCmd struct {
	UserPoolID  string `name:"user-pool-id" required:"" env:"PRETOKEN_USER_POOL_ID" placeholder:"ID" help:"The user pool (REGION_ID)."`
	FunctionARN string `name:"function-arn" placeholder:"ARN" help:"The trigger function (default: the one the pool calls)."`
	Policy      string `placeholder:"FILE" xor:"source" help:"Check the app clients against this policy file; the table is not read."`
	Table       string `placeholder:"NAME" xor:"source" help:"The policy table (default: the function's PRETOKEN_TABLE)."`
	JSON        bool   `name:"json" help:"Print the checks as a JSON array."`
}

func (c *doctorCmd) Run(e *env) error {
	ctx := context.Background()
	if c.Table != "" && !tableName.MatchString(c.Table) {
		return usagef("table name %q: DynamoDB table names are 3 to 255 letters, digits, '_', '-' and '.'", c.Table)
	}
	cfg, err := poolFlag{c.UserPoolID}.config(ctx, e)
	if err != nil {
		return err
	}
	o := deploy.DoctorOptions{UserPoolID: c.UserPoolID, FunctionARN: c.FunctionARN, Table: c.Table}
	if c.Policy != "" {
		p, err := permissions.ReadFile(c.Policy)
		if err == nil {
			err = permissions.Validate(p)
		}
		if err != nil {
			return fmt.Errorf("policy file %s: %w", c.Policy, err)
		}
		o.Policy = p
	}
	db := dynamo.NewClient(cfg)
	o.Store = func(ctx context.Context, table string) (*permissions.Policy, deploy.Check) {
		return checkTable(ctx, db, table)
	}
	checks := deploy.Doctor(ctx, deploy.DoctorAPI{Pools: cip.NewFromConfig(cfg), Functions: lambda.NewFromConfig(cfg),
		IAM: iam.NewFromConfig(cfg), Alarms: cloudwatch.NewFromConfig(cfg)}, o)
	failed := 0
	for _, ch := range checks {
		if !ch.OK {
			failed++
		}
	}
	if c.JSON {
		b, _ := json.MarshalIndent(checks, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		for _, ch := range checks {
			if ch.OK {
				fmt.Fprintf(e.stdout, "✔ %d %s: %s\n", ch.N, ch.Name, ch.Detail)
			} else {
				fmt.Fprintf(e.stdout, "✘ %d %s: %s; to do: %s\n", ch.N, ch.Name, ch.Detail, ch.Fix)
			}
		}
	}
	if failed > 0 {
		if !c.JSON {
			fmt.Fprintf(e.stderr, "pretoken doctor: %d of %d checks failed\n", failed, len(checks))
		}
		return exitCode(exitError)
	}
	return nil
}

// checkTable is doctor's check 7: the table has every migration, its live
// policy loads and validates, and its compiled policy (what the trigger
// serves) loads. It reads only.
func checkTable(ctx context.Context, db *dynamodb.Client, table string) (*permissions.Policy, deploy.Check) {
	fail := func(detail, fix string) (*permissions.Policy, deploy.Check) {
		return nil, deploy.Check{Detail: detail, Fix: fix}
	}
	status, err := migrations.NewRunner(db, table, migrations.All).Status(ctx)
	if err != nil {
		return fail(fmt.Sprintf("read the migrations of table %s: %v", table, err), "check the table name and that your credentials may read it (pretoken iam-policy --for readonly)")
	}
	var pending []string
	for _, s := range status {
		if s.AppliedAt == "" {
			pending = append(pending, s.ID)
		}
	}
	if len(pending) > 0 {
		return fail(fmt.Sprintf("table %s lacks migration(s) %s", table, strings.Join(pending, ", ")), "pretoken migrate --table "+table)
	}
	store := dynamo.New(db, table)
	store.CallTimeout = 30 * time.Second
	p, version, err := store.Load(ctx)
	if err != nil {
		return fail(fmt.Sprintf("load the live policy of table %s: %v", table, err), "pretoken apply --table "+table+" -f FILE")
	}
	if err := permissions.Validate(p); err != nil {
		return fail(fmt.Sprintf("the live policy of table %s (version %s) does not validate: %v", table, version, err), "pretoken apply --table "+table+" -f FILE with a valid policy")
	}
	// What the trigger serves is the compiled policy: it must load too.
	apply := "pretoken apply --table " + table + " -f FILE (the policy file; it writes the compiled policy again)"
	switch snap, err := store.LoadSnapshot(ctx); {
	case err != nil:
		return p, deploy.Check{Detail: fmt.Sprintf("the trigger cannot load the compiled policy of table %s: %v", table, err), Fix: apply}
	case snap.Policy() != nil:
		return p, deploy.Check{Detail: fmt.Sprintf("table %s holds no compiled policy (an older pretoken applied version %s): the trigger compiles it at every cold start", table, version), Fix: apply}
	}
	last := status[len(status)-1].ID
	return p, deploy.Check{OK: true, Detail: fmt.Sprintf("table %s has every migration (up to %s); its live policy (version %s) validates, and its compiled policy loads", table, last, version)}
}
