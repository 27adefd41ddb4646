// Command cdk is a CDK app with pretoken in it: a demo stack (a new pool,
// the Lambda authorizer) and a production-like one (an existing pool and
// table). From this folder, after `make build`:
//
//	CDK_OUTDIR=out go run .
//
// synthesizes both without AWS credentials; `cdk deploy --app 'go run .'`
// deploys them. It runs cdk-nag's AwsSolutions pack and exits non-zero on a
// finding. PRETOKEN_DIST names the folder make build writes (../../dist).
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	pretoken "github.com/pretoken/pretoken/deploy/cdk"
)

func main() {
	defer jsii.Close()
	dist := os.Getenv("PRETOKEN_DIST")
	if dist == "" {
		dist = "../../dist"
	}
	app := awscdk.NewApp(nil)

	demo := awscdk.NewStack(app, jsii.String("pretoken-demo"), nil)
	pretoken.New(demo, "Pretoken", pretoken.Props{Dist: dist, NewUserPool: true, EventVersion: "V2_0", Demo: true, Authorizer: true})

	prod := awscdk.NewStack(app, jsii.String("pretoken-prod"), nil)
	pretoken.New(prod, "Pretoken", pretoken.Props{
		Dist:                dist,
		ExistingUserPoolArn: "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Example",
		TableName:           "pretoken-prod",
		AlarmTopicArn:       "arn:aws:sns:us-east-1:123456789012:pretoken-alarms",
	})

	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	asm := app.Synth(nil)
	findings := 0
	for _, s := range *asm.Stacks() {
		for _, m := range *s.Messages() {
			if m.Level == "error" || m.Level == "warning" {
				findings++
				fmt.Fprintf(os.Stderr, "%s %s %s: %v\n", *s.StackName(), m.Level, *m.Id, m.Entry.Data)
			}
		}
	}
	if findings > 0 {
		fmt.Fprintf(os.Stderr, "%d cdk-nag findings\n", findings)
		os.Exit(1)
	}
	fmt.Printf("synthesized %d stacks into %s\n", len(*asm.Stacks()), *asm.Directory())
}
