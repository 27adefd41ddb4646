package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

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

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
