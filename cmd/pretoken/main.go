// Command pretoken is the admin CLI for pretoken policies: validate a policy
// file, run the trigger on an event, preview what a user's tokens get, and
// manage the DynamoDB table (migrate, plan, apply, export, history, user
// assignments).
//
// Errors are one clear line per problem on stderr and a non-zero exit:
//
//	1   the command failed
//	2   plan: the table differs from the file
//	3   conflict: the table moved since the plan, or another apply won; nothing was applied
//	4   the table's live policy is damaged (items missing); pretoken apply -f FILE repairs it
//	5   the outcome is unknown: a write got no answer and nothing settled it (apply: run pretoken plan -f FILE;
//	    assign, unassign, tenant use: run pretoken user SUB to see where the table stands)
//	64  usage: a flag or argument is missing, unknown or malformed
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/mattn/go-isatty"

	"github.com/pretoken/pretoken/permissions/dynamo"
)

// Exit codes; see the package comment.
const (
	exitError    = 1
	exitChanges  = 2
	exitConflict = 3
	exitDamaged  = 4
	exitUnknown  = 5
	exitUsage    = 64 // sysexits' EX_USAGE
)

// cli is the command tree. Each command is a struct with a Run method.
type cli struct {
	Debug bool `help:"Show the AWS SDK's whole error chain and its log lines."`

	Validate  validateCmd  `cmd:"" help:"Check a policy file; list every problem with its line."`
	Compile   compileCmd   `cmd:"" help:"Write a policy file's compiled snapshot (pretoken compile FILE -o SNAPSHOT), to bundle with the function."`
	Simulate  simulateCmd  `cmd:"" help:"Run the trigger on event files and print each response event as the Lambda returns it."`
	Explain   explainCmd   `cmd:"" help:"Preview what a user's (or machine client's) tokens get from a policy."`
	Migrate   migrateCmd   `cmd:"" help:"Create or update the DynamoDB table (pretoken migrate [status])."`
	Plan      planCmd      `cmd:"" help:"Compare a policy file with the table; exit 0 no changes, 2 changes, 1 error."`
	Apply     applyCmd     `cmd:"" help:"Validate a policy file, print the plan, then make the table's policy equal to it."`
	Export    exportCmd    `cmd:"" help:"Write the table's policy as a policy file."`
	History   historyCmd   `cmd:"" help:"List the audit trail of changes, newest first."`
	Check     checkCmd     `cmd:"" help:"List items that abandoned or killed applies left in the table, and their size; changes nothing (one Scan)."`
	Assign    assignCmd    `cmd:"" help:"Assign roles to one user directly (needs PRETOKEN_USER_ASSIGNMENTS=true in the function)."`
	Unassign  unassignCmd  `cmd:"" help:"Take directly assigned roles from one user."`
	User      userCmd      `cmd:"" help:"Show one user's direct roles, roles in each tenant, and active tenant."`
	Tenant    tenantCmd    `cmd:"" help:"A tenant's members (tenant members T); a user's active tenant (tenant use SUB T)."`
	Console   consoleCmd   `cmd:"" help:"Serve a read-only console on loopback: who can do what, token previews, history, users and tenants."`
	SignOut   signOutCmd   `cmd:"" name:"signout" help:"Sign users out (revoke their refresh tokens): by sub, or every member of a group."`
	Attach    attachCmd    `cmd:"" help:"Put the trigger on an existing user pool with Cognito's invoke permission (or --detach both), keeping every other setting."`
	Doctor    doctorCmd    `cmd:"" help:"Check a deployed setup, reading only: trigger, invoke permission, plan, app clients, function, table, alarms. Exit 0 all pass, 1 any fails."`
	IAMPolicy iamPolicyCmd `cmd:"" name:"iam-policy" help:"Print the least-privilege IAM policy (JSON) for the trigger, an admin or a read-only operator."`
}

// env is what commands read from and write to, and what they learn on the
// way for the error message (where they looked).
type env struct {
	stdin          io.Reader
	terminal       bool // stdin and stdout are a terminal: a person may be asked
	stdout, stderr io.Writer
	debug          bool
	where          *target
}

// target is where a table command looks.
type target struct{ table, region, endpoint string }

// usageError is a flag or argument that is missing, unknown or malformed.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode is an error that carries the process exit code; its message, if
// any, has already been printed.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

type kongExit struct{ code int }

func main() {
	terminal := isatty.IsTerminal(os.Stdin.Fd()) && isatty.IsTerminal(os.Stdout.Fd())
	os.Exit(run(os.Args[1:], &env{stdin: os.Stdin, terminal: terminal, stdout: os.Stdout, stderr: os.Stderr}))
}

// version is the module version and commit the binary was built from.
func version() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
	}
	return "pretoken " + v
}

// run executes the CLI with args and returns the process exit code.
func run(args []string, e *env) (code int) {
	stdout, stderr := e.stdout, e.stderr
	// pretoken --version, by hand: attach and explain have a --version flag
	// of their own (the event version), which kong would take for this one.
	if len(args) == 1 && args[0] == "--version" {
		fmt.Fprintln(stdout, version())
		return 0
	}
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
		kong.Description("Authorization for Amazon Cognito tokens: roles and permissions as scopes and claims. pretoken --version prints the version."),
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
		return exitUsage
	}
	e.debug = c.Debug
	err = ctx.Run(e)
	var ec exitCode
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return int(ec)
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "pretoken %s: %v (see pretoken %s --help)\n", ctx.Command(), err, strings.Fields(ctx.Command())[0])
		return exitUsage
	}
	fmt.Fprintf(stderr, "pretoken %s: %s\n", ctx.Command(), describe(err, e))
	switch {
	case errors.Is(err, dynamo.ErrConflict):
		return exitConflict
	case errors.Is(err, dynamo.ErrDamaged):
		return exitDamaged
	case errors.Is(err, dynamo.ErrUnknownOutcome):
		return exitUnknown
	}
	return exitError
}

// describe turns an error into the one line a person needs: where the
// command looked and what to do, without the SDK's error chain (which
// --debug shows).
func describe(err error, e *env) string {
	msg := err.Error()
	w := e.where
	var notFound *types.ResourceNotFoundException
	var apiErr smithy.APIError
	switch {
	case w != nil && errors.As(err, &notFound):
		return fmt.Sprintf("table %s not found in region %s (endpoint %s); create it with pretoken migrate, or check --table, AWS_REGION and AWS_ENDPOINT_URL_DYNAMODB", w.table, w.region, w.endpoint) + debugTail(err, e)
	case strings.Contains(msg, "get credentials") || strings.Contains(msg, "failed to refresh cached credentials"):
		return "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (for DynamoDB Local any values do)" + debugTail(err, e)
	case w != nil && strings.Contains(msg, "request send failed"):
		return fmt.Sprintf("cannot reach DynamoDB at %s for table %s (region %s): is it running, and is AWS_ENDPOINT_URL_DYNAMODB right?", w.endpoint, w.table, w.region) + debugTail(err, e)
	case !e.debug && errors.As(err, &apiErr):
		ours, _, _ := strings.Cut(msg, "operation error ")
		return strings.TrimSuffix(strings.TrimSpace(ours), ":") + ": " + apiErr.ErrorCode() + ": " + apiErr.ErrorMessage() + " (--debug shows more)"
	}
	return msg
}

func debugTail(err error, e *env) string {
	if !e.debug {
		return ""
	}
	return " [" + err.Error() + "]"
}
