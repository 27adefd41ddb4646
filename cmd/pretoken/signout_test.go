package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/internal/awsfake"
	"github.com/pretoken/pretoken/internal/cognitotest"
	"github.com/pretoken/pretoken/permissions"
)

// fakeIdP records the Cognito requests it gets (target and body), serves
// ListUsersInGroup in pages of pageSize over members, and fails the
// AdminUserGlobalSignOut numbered failAt (1-based; 0: never). Other
// targets go to backend when set (cognito-local).
type fakeIdP struct {
	mu       sync.Mutex
	requests []string // "Target body"
	members  []string
	pageSize int
	failAt   int
	signouts int
	backend  *httputil.ReverseProxy
}

func (f *fakeIdP) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AWSCognitoIdentityProviderService.")
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		switch {
		case target == "AdminUserGlobalSignOut":
			f.requests = append(f.requests, target+" "+string(body))
			f.signouts++
			if f.signouts == f.failAt {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"__type":"NotAuthorizedException","message":"Access to the pool was revoked"}`)
				return
			}
			io.WriteString(w, "{}")
		case target == "ListUsersInGroup" && f.backend == nil:
			f.requests = append(f.requests, target+" "+string(body))
			var in struct{ NextToken string }
			json.Unmarshal(body, &in)
			start, _ := strconv.Atoi(in.NextToken)
			end := min(start+f.pageSize, len(f.members))
			var users []map[string]string
			for _, m := range f.members[start:end] {
				users = append(users, map[string]string{"Username": m})
			}
			out := map[string]any{"Users": users}
			if end < len(f.members) {
				out["NextToken"] = strconv.Itoa(end)
			}
			json.NewEncoder(w).Encode(out)
		default:
			f.requests = append(f.requests, target+" "+string(body))
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			f.backend.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *fakeIdP) signedOut() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.requests {
		if body, ok := strings.CutPrefix(r, "AdminUserGlobalSignOut "); ok {
			var in struct{ Username string }
			json.Unmarshal([]byte(body), &in)
			out = append(out, in.Username)
		}
	}
	return out
}

func cognitoEnv(t *testing.T, endpoint string) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestSignOutBySub: a sub is looked up (ListUsers, filter sub = "..."),
// and the username found is signed out: a federated user's is
// <provider>_<id>, which AdminUserGlobalSignOut needs (the strict fake, as
// Cognito, refuses a federated user's sub). An unknown sub is "no such
// user"; a username still works.
func TestSignOutBySub(t *testing.T) {
	const local, federated, unknown = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"
	f := strictAWS(t, nil)
	f.AddUser(fakePool, awsfake.User{Username: local, Sub: local})
	f.AddUser(fakePool, awsfake.User{Username: "Okta_00u1abcd", Sub: federated, Provider: "Okta"})
	f.AddUser(fakePool, awsfake.User{Username: "alice", Sub: "44444444-4444-4444-8444-444444444444"})
	code, out, errOut := runCLI(t, "signout", "--user-pool-id", fakePool, local, federated, "alice")
	if code != 0 || strings.Count(out, "signed out") != 3 || !strings.Contains(out, "managed-login session") {
		t.Fatalf("exit %d, %q, %q", code, out, errOut)
	}
	var got []any
	for _, c := range f.Calls("cognito-idp:AdminUserGlobalSignOut") {
		got = append(got, c.Input)
	}
	want := []any{
		map[string]any{"UserPoolId": fakePool, "Username": local},
		map[string]any{"UserPoolId": fakePool, "Username": "Okta_00u1abcd"},
		map[string]any{"UserPoolId": fakePool, "Username": "alice"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AdminUserGlobalSignOut requests (-want +got):\n%s", diff)
	}
	lookups := f.Calls("cognito-idp:ListUsers")
	if len(lookups) != 3 || lookups[1].Input["Filter"] != `sub = "`+federated+`"` {
		t.Errorf("ListUsers requests %v", lookups)
	}
	for _, who := range []string{unknown, "bob"} {
		code, out, errOut = runCLI(t, "signout", "--user-pool-id", fakePool, who)
		if code != 1 || out != "" || !strings.Contains(errOut, "no such user") {
			t.Errorf("%s: exit %d, %q, %q; want no such user", who, code, out, errOut)
		}
	}
	if code, _, _ := runCLI(t, "signout", "sub-1"); code != exitUsage {
		t.Errorf("no pool: exit %d, want usage", code)
	}
}

// TestSignOutGroupPagesAndResumes: a group of 130 in pages of 60; a
// failure at the 70th sign-out keeps the progress, and the same command
// then signs out the rest, nobody twice.
func TestSignOutGroupPagesAndResumes(t *testing.T) {
	f := &fakeIdP{pageSize: 60, failAt: 70}
	for i := range 130 {
		f.members = append(f.members, fmt.Sprintf("user-%03d", i))
	}
	cognitoEnv(t, f.start(t))
	resume := filepath.Join(t.TempDir(), "progress.json")
	args := []string{"signout", "--user-pool-id", "us-east-1_Pool1", "--group", "staff", "--rate", "10000", "--resume", resume}
	code, _, errOut := runCLI(t, args...)
	if code != 1 || !strings.Contains(errOut, "run the same command to continue") {
		t.Fatalf("interrupted run: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(resume); err != nil {
		t.Fatalf("no progress file: %v", err)
	}
	code, out, errOut := runCLI(t, args...)
	if code != 0 || !strings.Contains(out, "resuming") || !strings.Contains(out, "signed out 130 member(s) of group staff") {
		t.Fatalf("resumed run: exit %d, %q, %q", code, out, errOut)
	}
	got := f.signedOut()
	seen := map[string]int{}
	for _, u := range got {
		seen[u]++
	}
	for _, m := range f.members {
		if seen[m] == 0 {
			t.Errorf("%s never signed out", m)
		}
	}
	if len(got) != 131 { // 130, and the one whose sign-out failed, tried again
		t.Errorf("%d sign-out requests for 130 members and one failure, want 131", len(got))
	}
	pages := 0
	for _, r := range f.requests {
		if strings.HasPrefix(r, "ListUsersInGroup ") {
			pages++
			if !strings.Contains(r, `"GroupName":"staff"`) || !strings.Contains(r, `"UserPoolId":"us-east-1_Pool1"`) || !strings.Contains(r, `"Limit":60`) {
				t.Errorf("request %s", r)
			}
		}
	}
	if pages != 4 { // pages 1 and 2 in the first run, 2 and 3 in the second
		t.Errorf("%d ListUsersInGroup requests, want 4", pages)
	}
	if _, err := os.Stat(resume); !os.IsNotExist(err) {
		t.Errorf("the progress file stays after a finished run: %v", err)
	}
}

// TestSignOutGroupAgainstCognitoLocal lists a real group's members from
// cognito-local (which has no AdminUserGlobalSignOut: those requests are
// recorded here instead).
func TestSignOutGroupAgainstCognitoLocal(t *testing.T) {
	base := cognitotest.Start(t, "")
	u, _ := url.Parse(base)
	f := &fakeIdP{backend: httputil.NewSingleHostReverseProxy(u)}
	endpoint := f.start(t)
	pool := cognitotest.Field(t, cognitotest.Call(t, base, "CreateUserPool", map[string]any{"PoolName": "signout"}), "UserPool", "Id")
	cognitotest.Call(t, base, "CreateGroup", map[string]any{"UserPoolId": pool, "GroupName": "staff"})
	var want []string
	for i := range 3 {
		name := fmt.Sprintf("member-%d@example.com", i)
		cognitotest.Call(t, base, "AdminCreateUser", map[string]any{"UserPoolId": pool, "Username": name, "MessageAction": "SUPPRESS"})
		cognitotest.Call(t, base, "AdminAddUserToGroup", map[string]any{"UserPoolId": pool, "Username": name, "GroupName": "staff"})
		// The pool signs users in by email; their username is an id it made.
		want = append(want, cognitotest.Field(t, cognitotest.Call(t, base, "AdminGetUser", map[string]any{"UserPoolId": pool, "Username": name}), "Username"))
	}
	cognitoEnv(t, endpoint)
	code, out, errOut := runCLI(t, "signout", "--user-pool-id", pool, "--group", "staff", "--rate", "1000", "--resume", filepath.Join(t.TempDir(), "p.json"))
	if code != 0 || !strings.Contains(out, "signed out 3 member(s)") {
		t.Fatalf("exit %d, %q, %q", code, out, errOut)
	}
	if diff := cmp.Diff(want, f.signedOut()); diff != "" {
		t.Errorf("signed out (-want +got):\n%s", diff)
	}
}

// TestUnassignSignsOutAndPlanSaysWhoLoses: unassign --sign-out signs the
// user out after the change; plan names the groups whose members lose a
// permission.
func TestUnassignSignsOutAndPlanSaysWhoLoses(t *testing.T) {
	table := opsTable(t)
	f := awsfake.New(t)
	f.AddPool(map[string]any{"Id": fakePool})
	f.AddUser(fakePool, awsfake.User{Username: "Okta_u9", Sub: "00000000-0000-4000-8000-000000000009", Provider: "Okta"})
	t.Setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", f.CognitoURL)
	if code, _, errOut := runCLI(t, "assign", "--table", table, "00000000-0000-4000-8000-000000000009", "refunder"); code != 0 {
		t.Fatal(errOut)
	}
	code, out, errOut := runCLI(t, "unassign", "--table", table, "00000000-0000-4000-8000-000000000009", "refunder", "--sign-out", "--user-pool-id", fakePool)
	so := f.Calls("cognito-idp:AdminUserGlobalSignOut")
	if code != 0 || !strings.Contains(out, "signed out 00000000-0000-4000-8000-000000000009") || len(so) != 1 || so[0].Input["Username"] != "Okta_u9" {
		t.Errorf("unassign --sign-out: exit %d, %q, %q, sign-outs %v", code, out, errOut, so)
	}
	if code, _, errOut := runCLI(t, "unassign", "--table", table, "00000000-0000-4000-8000-000000000009", "refunder", "--sign-out"); code != exitUsage || !strings.Contains(errOut, "--user-pool-id") {
		t.Errorf("--sign-out without a pool: exit %d, %q", code, errOut)
	}
	less := policyFile(t, func(p *permissions.Policy) { p.Groups["staff"] = []string{"viewer"} })
	_, _, errOut = runCLI(t, "plan", "--table", table, "-f", less)
	if !strings.Contains(errOut, "note: members of group staff lose orders:write") || !strings.Contains(errOut, "pretoken signout --group staff") {
		t.Errorf("plan's note: %q", errOut)
	}
}
