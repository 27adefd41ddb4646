package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"

	"github.com/pretoken/pretoken/migrations"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// tableFlag is the DynamoDB table every table command works on. AWS settings
// (region, credentials, AWS_ENDPOINT_URL_DYNAMODB) come from the SDK's chain.
type tableFlag struct {
	Table string `env:"PRETOKEN_TABLE" required:"" placeholder:"NAME" help:"DynamoDB table holding the policy."`
}

// config loads the AWS configuration for the table and notes on e where
// the command looks (table, region, endpoint), for its error messages.
func (f tableFlag) config(ctx context.Context, e *env) (aws.Config, error) {
	if f.Table == "" {
		return aws.Config{}, usagef("name the table with --table or PRETOKEN_TABLE")
	}
	if !tableName.MatchString(f.Table) {
		return aws.Config{}, usagef("table name %q: DynamoDB table names are 3 to 255 letters, digits, '_', '-' and '.'", f.Table)
	}
	cfg, err := awsConfig(ctx, e)
	if err != nil {
		return aws.Config{}, err
	}
	e.where = &target{table: f.Table, region: cfg.Region, endpoint: dynamoEndpoint(cfg.Region)}
	return cfg, nil
}

var tableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// awsConfig is the SDK's standard chain, with its own log lines (such as
// the IMDS fallback warning) shown only under --debug, and a region required.
func awsConfig(ctx context.Context, e *env) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, sdkQuiet(e)...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set AWS_REGION (for example export AWS_REGION=us-east-1) or a region in your AWS profile")
	}
	return cfg, nil
}

// sdkQuiet are the SDK options of every command: its log lines (such as
// the IMDS fallback warning) only under --debug.
func sdkQuiet(e *env) []func(*awsconfig.LoadOptions) error {
	if e.debug {
		return nil
	}
	return []func(*awsconfig.LoadOptions) error{awsconfig.WithLogger(logging.Nop{})}
}

// dynamoEndpoint is where DynamoDB requests go: the override the SDK reads
// from the environment, or the regional endpoint.
func dynamoEndpoint(region string) string {
	for _, v := range []string{"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"} {
		if u := os.Getenv(v); u != "" {
			return u
		}
	}
	return "https://dynamodb." + region + ".amazonaws.com"
}

func (f tableFlag) client(ctx context.Context, e *env) (*dynamodb.Client, error) {
	cfg, err := f.config(ctx, e)
	if err != nil {
		return nil, err
	}
	return dynamo.NewClient(cfg), nil
}

func (f tableFlag) store(ctx context.Context, e *env) (*dynamo.Store, error) {
	c, err := f.client(ctx, e)
	if err != nil {
		return nil, err
	}
	s := dynamo.New(c, f.Table)
	s.CallTimeout = callTimeout
	return s, nil
}

// callTimeout bounds each DynamoDB call of a table command: an operator
// waits; a token does not. Tests shorten it.
var callTimeout = 30 * time.Second

type migrateCmd struct {
	Up     migrateUpCmd     `cmd:"" default:"withargs" help:"Apply pending migrations (the default)."`
	Status migrateStatusCmd `cmd:"" help:"List applied and pending migrations."`
}

type migrateUpCmd struct{ tableFlag }

func (c *migrateUpCmd) Run(e *env) error {
	ctx := context.Background()
	client, err := c.client(ctx, e)
	if err != nil {
		return err
	}
	ran, err := migrations.NewRunner(client, c.Table, migrations.All).Up(ctx)
	for _, id := range ran {
		fmt.Fprintf(e.stdout, "applied %s to table %s in %s\n", id, c.Table, e.where.region)
	}
	if err != nil {
		return err
	}
	if len(ran) == 0 {
		fmt.Fprintf(e.stdout, "table %s in %s is up to date\n", c.Table, e.where.region)
	}
	return nil
}

type migrateStatusCmd struct{ tableFlag }

func (c *migrateStatusCmd) Run(e *env) error {
	ctx := context.Background()
	client, err := c.client(ctx, e)
	if err != nil {
		return err
	}
	list, err := migrations.NewRunner(client, c.Table, migrations.All).Status(ctx)
	if err != nil {
		return err
	}
	for _, s := range list {
		state := "pending"
		if s.AppliedAt != "" {
			state = "applied " + s.AppliedAt
		}
		fmt.Fprintf(e.stdout, "%s  %-28s %s\n", s.ID, state, s.Description)
	}
	return nil
}
