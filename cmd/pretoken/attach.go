package main

import (
	"context"
	"fmt"

	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/pretoken/pretoken/deploy"
)

type attachCmd struct {
	UserPoolID  string       `name:"user-pool-id" required:"" env:"PRETOKEN_USER_POOL_ID" placeholder:"ID" help:"The user pool (REGION_ID)."`
	FunctionARN string       `name:"function-arn" placeholder:"ARN" help:"The trigger function's ARN (the stack's TriggerFunctionArn output), optionally with a version or alias. With --detach: the function whose invoke permission to remove (default: the pool's trigger)."`
	Version     eventVersion `placeholder:"V1_0|V2_0|V3_0" help:"Event version: V1_0 (ID token, every plan), V2_0 (both tokens, Essentials or Plus), V3_0 (V2_0 plus client credentials); 1 and v1 work too."`
	Detach      bool         `help:"Take the pre token generation trigger off the pool instead, and the invoke permission attach added for it; other triggers and statements stay."`
	UpgradePlan bool         `name:"upgrade-plan" help:"Let V2_0/V3_0 move a Lite pool to the Essentials plan (billed per monthly active user)."`
	DryRun      bool         `name:"dry-run" help:"Print the settings and the permission that would change; change nothing."`
}

func (c *attachCmd) Run(e *env) error {
	if !c.Detach && (c.FunctionARN == "" || c.Version == "") {
		return usagef("attach needs --function-arn and --version (or --detach)")
	}
	ctx := context.Background()
	cfg, err := poolFlag{c.UserPoolID}.config(ctx, e)
	if err != nil {
		return err
	}
	res, err := deploy.Attach(ctx, cip.NewFromConfig(cfg), lambda.NewFromConfig(cfg), deploy.AttachOptions{
		UserPoolID: c.UserPoolID, FunctionARN: c.FunctionARN, Version: c.Version.Name(),
		Detach: c.Detach, UpgradePlan: c.UpgradePlan, DryRun: c.DryRun})
	for _, ch := range res.Changes {
		fmt.Fprintln(e.stdout, "~ "+ch)
	}
	if res.Permission != "" {
		fmt.Fprintln(e.stdout, "~ "+res.Permission)
	}
	if err != nil {
		return err
	}
	what := "attached the trigger to"
	if c.Detach {
		what = "detached the trigger from"
	}
	switch {
	case c.DryRun:
		fmt.Fprintf(e.stdout, "dry run: %d setting(s) would change on user pool %s; nothing was written\n", len(res.Changes), c.UserPoolID)
	case len(res.Changes) == 0:
		fmt.Fprintf(e.stdout, "no changes: user pool %s already has this setting\n", c.UserPoolID)
	default:
		fmt.Fprintf(e.stdout, "%s user pool %s; read again, it differs only in the trigger\n", what, c.UserPoolID)
	}
	if !c.Detach && !c.DryRun {
		fmt.Fprintf(e.stdout, "check the whole setup with: pretoken doctor --user-pool-id %s --function-arn %s --table NAME\n", c.UserPoolID, c.FunctionARN)
	}
	return nil
}
