// Command pretoken is the admin CLI for pretoken policies: validate a policy
// file, run the trigger on an event, preview what a user's tokens get, and
// manage the DynamoDB table (migrate, plan, apply, export, history, user
// assignments).
//
// Errors are one clear line per problem on stderr and a non-zero exit.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"
)

// cli is the command tree. Each command is a struct with a Run method.
type cli struct {
	Validate  validateCmd  `cmd:"" help:"Check a policy file; list every problem with its line."`
	Simulate  simulateCmd  `cmd:"" help:"Run the trigger on event files and print each response event as the Lambda returns it."`
	Explain   explainCmd   `cmd:"" help:"Preview what a user's (or machine client's) tokens get from a policy."`
	Migrate   migrateCmd   `cmd:"" help:"Create or update the DynamoDB table (pretoken migrate [status])."`
	Plan      planCmd      `cmd:"" help:"Compare a policy file with the table; exit 0 no changes, 2 changes, 1 error."`
	Apply     applyCmd     `cmd:"" help:"Validate a policy file, print the plan, then make the table's policy equal to it."`
	Export    exportCmd    `cmd:"" help:"Write the table's policy as a policy file."`
	History   historyCmd   `cmd:"" help:"List the audit trail of changes, newest first."`
	Assign    assignCmd    `cmd:"" help:"Assign roles to one user directly (needs PRETOKEN_USER_ASSIGNMENTS=true in the function)."`
	Unassign  unassignCmd  `cmd:"" help:"Take directly assigned roles from one user."`
	User      userCmd      `cmd:"" help:"Show one user's directly assigned roles and the permissions they expand to."`
	Attach    attachCmd    `cmd:"" help:"Put the trigger on an existing user pool (or --detach it), keeping every other setting."`
	IAMPolicy iamPolicyCmd `cmd:"" name:"iam-policy" help:"Print the least-privilege IAM policy (JSON) for the trigger, an admin or a read-only operator."`
}

// env is what commands write to.
type env struct {
	stdout, stderr io.Writer
}

// exitCode is an error that carries the process exit code; its message, if
// any, has already been printed.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

type kongExit struct{ code int }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI with args and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) (code int) {
	var c cli
	defer func() {
		if r := recover(); r != nil {
			ke, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			code = ke.code
		}
	}()
	parser, err := kong.New(&c,
		kong.Name("pretoken"),
		kong.Description("Authorization for Amazon Cognito tokens: roles and permissions as scopes and claims."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(kongExit{code}) }),
	)
	if err != nil {
		fmt.Fprintln(stderr, "pretoken:", err)
		return 1
	}
	ctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "pretoken: %v (see pretoken --help)\n", err)
		return 1
	}
	err = ctx.Run(&env{stdout: stdout, stderr: stderr})
	var ec exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return int(ec)
	default:
		fmt.Fprintf(stderr, "pretoken %s: %v\n", ctx.Command(), err)
		return 1
	}
}
