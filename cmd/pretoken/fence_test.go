package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/permissions"
)

// shortDeadline makes every DynamoDB call of the CLI give up after d, as
// the operator's 30 s do against a network that holds requests longer.
func shortDeadline(t *testing.T, d time.Duration) {
	old := callTimeout
	callTimeout = d
	t.Cleanup(func() { callTimeout = old })
}

// TestHeldSwitchLeavesTableServable: the fault proxy holds apply's switch
// (TransactWriteItems) past the CLI's deadline and lets it land after apply
// gave up. Every time, the table serves one whole policy, the one apply's
// exit code says: the old one after a failure, the new one after success,
// and after exit 5 (unknown) whichever plan then reports. Before the fence
// the late switch made the new policy live after apply exited 1 (and, for
// a policy too large to inline, left the table damaged).
func TestHeldSwitchLeavesTableServable(t *testing.T) {
	awsEnv(t)
	direct := dynamotest.Endpoint(t)
	proxy := dynamotest.NewProxy(t, direct)
	table := dynamotest.NewName("pretoken-fence")
	t.Setenv("PRETOKEN_TABLE", table)
	t.Setenv("PRETOKEN_ACTOR", "fence-test")
	if code, _, errOut := runCLI(t, "migrate"); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, errOut := runCLI(t, "apply", "-f", examplePolicy); code != 0 {
		t.Fatal(errOut)
	}
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.URL)
	shortDeadline(t, time.Second)
	cases := []struct {
		name  string
		fault func() (release func())
		want  []int // acceptable exit codes
	}{
		{"held switch", func() func() { return proxy.Hold("TransactWriteItems", 1) }, []int{1}},
		{"held switch and abandon", func() func() { return proxy.Hold("TransactWriteItems", 2) }, []int{5}},
		{"lost answer", func() func() { proxy.LoseAnswers("TransactWriteItems", 1); return func() {} }, []int{0}},
	}
	for round := range 2 {
		for i, c := range cases {
			file := policyFile(t, func(p *permissions.Policy) {
				r := p.Roles["editor"]
				r.Permissions = append(r.Permissions, fmt.Sprintf("orders:r%dc%d", round, i))
				p.Roles["editor"] = r
			})
			_, before, _ := runCLI(t, "export")
			release := c.fault()
			code, _, errOut := runCLI(t, "apply", "-f", file)
			release() // whatever was held lands now
			if !contains(c.want, code) {
				t.Errorf("%s: apply exit %d (%s); want %v", c.name, code, strings.TrimSpace(errOut), c.want)
			}
			if code == 5 && !strings.Contains(errOut, "pretoken plan -f FILE") {
				t.Errorf("%s: exit 5 without the way out: %s", c.name, errOut)
			}
			ecode, after, eerr := runCLI(t, "export")
			if ecode != 0 {
				t.Fatalf("%s: the table is not servable after the late write: %s", c.name, eerr)
			}
			pcode, _, _ := runCLI(t, "plan", "-f", file)
			switch {
			case code == 0 && pcode != 0:
				t.Errorf("%s: apply succeeded, but the table does not hold the new policy", c.name)
			case code == 1 && (pcode != 2 || after != before):
				t.Errorf("%s: apply failed, but the table changed (the late switch landed)", c.name)
			}
		}
	}
}

// TestCheckListsLeftovers: pretoken check changes nothing and says what
// is left, with sizes.
func TestCheckListsLeftovers(t *testing.T) {
	table := opsTable(t)
	t.Setenv("PRETOKEN_TABLE", table)
	code, out, errOut := runCLI(t, "check")
	if code != 0 || out != "no leftovers in table "+table+"\n" {
		t.Errorf("check of a clean table: exit %d, %q, %q", code, out, errOut)
	}
	client := dynamotest.Client(t)
	late := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "POLICY#9-000000000000"},
		"SK": &types.AttributeValueMemberS{Value: "ROLE#late"}, "name": &types.AttributeValueMemberS{Value: "late"}}
	if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: &table, Item: late}); err != nil {
		t.Fatal(err)
	}
	before := export(t, table)
	code, out, _ = runCLI(t, "check")
	if code != 0 || !strings.Contains(out, "POLICY#9-000000000000  ROLE#late  ") || !strings.Contains(out, "1 leftover item(s)") {
		t.Errorf("check with a late item: exit %d, %q", code, out)
	}
	if export(t, table) != before {
		t.Error("check changed the policy")
	}
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// TestAssignUnknownOutcomeExits5: assign, unassign and tenant use whose
// answers are lost (the request sent again, same token, lost too) exit 5
// and say how to see where the table stands; with one answer lost they
// succeed, the write done once.
func TestAssignUnknownOutcomeExits5(t *testing.T) {
	table := opsTable(t)
	proxy := dynamotest.NewProxy(t, dynamotest.Endpoint(t))
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.URL)
	t.Setenv("PRETOKEN_TABLE", table)
	t.Setenv("PRETOKEN_ACTOR", "fence-test")
	shortDeadline(t, time.Second)
	const sub = "22222222-2222-4222-8222-222222222222"
	steps := [][]string{
		{"assign", sub, "viewer", "--tenant", "acme"},
		{"tenant", "use", sub, "acme"},
		{"unassign", sub, "viewer", "--tenant", "acme"},
	}
	for _, args := range steps {
		proxy.LoseAnswers("TransactWriteItems", 1)
		if code, _, errOut := runCLI(t, args...); code != 0 {
			t.Errorf("pretoken %s with a lost answer: exit %d (%s); want 0: the write landed", strings.Join(args, " "), code, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "assign", sub, "viewer", "--tenant", "other"); code != 0 {
		t.Fatal(errOut)
	}
	for _, args := range [][]string{steps[0], {"tenant", "use", sub, "other"}} {
		proxy.LoseAnswers("TransactWriteItems", 2)
		code, _, errOut := runCLI(t, args...)
		if code != 5 || !strings.Contains(errOut, "pretoken user "+sub) {
			t.Errorf("pretoken %s with every answer lost: exit %d (%s); want 5 and the way to look", strings.Join(args, " "), code, errOut)
		}
	}
}
