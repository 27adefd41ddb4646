package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// awsEnv points the SDK's standard chain at DynamoDB Local, as a user would.
func awsEnv(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamotest.Endpoint(t))
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func TestMigrateCommand(t *testing.T) {
	awsEnv(t)
	table := dynamotest.NewName("pretoken-cli")
	code, out, errOut := runCLI(t, "migrate", "status", "--table", table)
	if code != 0 || !strings.Contains(out, "0001  pending") {
		t.Errorf("status before: code %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "migrate", "--table", table)
	if code != 0 || out != "applied 0001 to table "+table+" in us-east-1\napplied 0002 to table "+table+" in us-east-1\napplied 0003 to table "+table+" in us-east-1\n" {
		t.Errorf("migrate: code %d, %q, %q", code, out, errOut)
	}
	t.Setenv("PRETOKEN_TABLE", table)
	code, out, _ = runCLI(t, "migrate")
	if code != 0 || out != "table "+table+" in us-east-1 is up to date\n" {
		t.Errorf("migrate again: code %d, %q", code, out)
	}
	code, out, _ = runCLI(t, "migrate", "status")
	if code != 0 || strings.Contains(out, "pending") || strings.Count(out, "applied") != 3 {
		t.Errorf("status after: code %d, %q", code, out)
	}
}

func TestApplyCommand(t *testing.T) {
	awsEnv(t)
	client := dynamotest.Client(t)
	table := dynamotest.Table(t, client)
	store := dynamo.New(client, table)
	version := func() string {
		v, err := store.Version(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	code, out, errOut := runCLI(t, "apply", "--table", table, "-f", examplePolicy)
	if code != 0 || errOut != "" || !strings.Contains(out, "+ role viewer\n") || !strings.Contains(out, "plan: 14 change(s) to table "+table+" at version 0\n") ||
		!strings.HasSuffix(out, "applied: table "+table+" policy version 0 -> 1\n") {
		t.Fatalf("first apply: code %d\nstdout:\n%s\nstderr: %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "apply", "--table", table, "-f", examplePolicy)
	if code != 0 || !strings.HasPrefix(out, "no changes") || version() != "1" {
		t.Errorf("second apply: code %d, %q, version %s", code, out, version())
	}

	bad := writeFile(t, "bad.yaml", "roles:\n  a: {inherits: [ghost]}\n")
	code, out, errOut = runCLI(t, "apply", "--table", table, "-f", bad)
	if code != 1 || out != "" || !strings.Contains(errOut, `unknown role "ghost"`) || !strings.Contains(errOut, "nothing was applied") || version() != "1" {
		t.Errorf("invalid file: code %d, stdout %q, stderr %q, version %s", code, out, errOut, version())
	}

	changed := writeFile(t, "p.yaml", "roles:\n  viewer: {permissions: [orders:read]}\ndefaults:\n  roles: [viewer]\n")
	code, _, errOut = runCLI(t, "apply", "--table", table, "-f", changed, "--expect-version", "0")
	if code != exitConflict || !strings.Contains(errOut, "conflict") || !strings.Contains(errOut, "at version 1, not the expected 0") || version() != "1" {
		t.Errorf("wrong expected version: code %d, stderr %q, version %s", code, errOut, version())
	}
	code, out, errOut = runCLI(t, "apply", "--table", table, "-f", changed, "--expect-version", "1")
	if code != 0 || !strings.Contains(out, "- role admin\n") || version() != "2" {
		t.Errorf("expected version: code %d, %q, %q, version %s", code, out, errOut, version())
	}

	none := dynamotest.NewName("pretoken-none")
	code, _, errOut = runCLI(t, "apply", "--table", none, "-f", changed)
	want := "pretoken apply: table " + none + " not found in region us-east-1 (endpoint " + dynamotest.Endpoint(t) + "); create it with pretoken migrate"
	if code != 1 || !strings.HasPrefix(errOut, want) || strings.Contains(errOut, "operation error") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("missing table: code %d, %q; want one line that says where it looked", code, errOut)
	}
	code, _, errOut = runCLI(t, "apply", "-f", changed)
	if code != exitUsage || !strings.Contains(errOut, "--table") {
		t.Errorf("no table: code %d, %q", code, errOut)
	}
	t.Setenv("PRETOKEN_TABLE", "")
	code, _, errOut = runCLI(t, "apply", "-f", changed)
	if code != exitUsage || !strings.Contains(errOut, "name the table with --table or PRETOKEN_TABLE") {
		t.Errorf("empty PRETOKEN_TABLE: code %d, %q", code, errOut)
	}
}
