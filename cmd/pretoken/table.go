package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pretoken/pretoken/migrations"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// tableFlag is the DynamoDB table every table command works on. AWS settings
// (region, credentials, AWS_ENDPOINT_URL_DYNAMODB) come from the SDK's chain.
type tableFlag struct {
	Table string `env:"PRETOKEN_TABLE" required:"" placeholder:"NAME" help:"DynamoDB table holding the policy (or set PRETOKEN_TABLE)."`
}

func (f tableFlag) config(ctx context.Context) (aws.Config, error) {
	if f.Table == "" {
		return aws.Config{}, errors.New("name the table with --table or PRETOKEN_TABLE")
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	return cfg, nil
}

func (f tableFlag) client(ctx context.Context) (*dynamodb.Client, error) {
	cfg, err := f.config(ctx)
	if err != nil {
		return nil, err
	}
	return dynamo.NewClient(cfg), nil
}

func (f tableFlag) store(ctx context.Context) (*dynamo.Store, error) {
	c, err := f.client(ctx)
	if err != nil {
		return nil, err
	}
	s := dynamo.New(c, f.Table)
	s.CallTimeout = 30 * time.Second // an operator waits; a token does not
	return s, nil
}

type migrateCmd struct {
	Up     migrateUpCmd     `cmd:"" default:"withargs" help:"Apply pending migrations (the default)."`
	Status migrateStatusCmd `cmd:"" help:"List applied and pending migrations."`
}

type migrateUpCmd struct{ tableFlag }

func (c *migrateUpCmd) Run(e *env) error {
	ctx := context.Background()
	client, err := c.client(ctx)
	if err != nil {
		return err
	}
	ran, err := migrations.NewRunner(client, c.Table, migrations.All).Up(ctx)
	for _, id := range ran {
		fmt.Fprintf(e.stdout, "applied %s\n", id)
	}
	if err != nil {
		return err
	}
	if len(ran) == 0 {
		fmt.Fprintf(e.stdout, "table %s is up to date\n", c.Table)
	}
	return nil
}

type migrateStatusCmd struct{ tableFlag }

func (c *migrateStatusCmd) Run(e *env) error {
	ctx := context.Background()
	client, err := c.client(ctx)
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
