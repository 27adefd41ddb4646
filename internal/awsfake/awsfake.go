// Package awsfake serves strict fakes of the AWS APIs that pretoken's attach,
// signout and doctor commands call (Cognito user pools, Lambda resource
// policies and configuration, IAM SimulatePrincipalPolicy, CloudWatch
// DescribeAlarms) on loopback, speaking each service's own wire protocol so
// the real SDK clients talk to them.
//
// The fakes refuse what the real APIs are known to refuse, with the real
// error codes and, where known, messages:
//   - UpdateUserPool refuses AdminCreateUserConfig.UnusedAccountValidityDays
//     ("Please use TemporaryPasswordValidityDays in PasswordPolicy instead of
//     UnusedAccountValidityDays", as terraform-provider-aws's user_pool.go
//     handles it), resets every updatable setting it is not sent (Cognito
//     guide, "Updating user pool and app client configuration"), refuses a
//     V2_0/V3_0 pre token generation trigger on the Lite plan
//     (FeatureUnavailableInTierException), refuses a PreTokenGeneration that
//     differs from PreTokenGenerationConfig.LambdaArn, and moves
//     LastModifiedDate.
//   - AdminUserGlobalSignOut takes a username, or a local user's sub; a
//     federated user's sub is UserNotFoundException (API reference,
//     "Username").
//   - ListUsers takes only the documented filter grammar (attribute,
//     = or ^=, a quoted value); ListUserPoolClients needs MaxResults 1..60.
//   - Lambda GetPolicy is ResourceNotFoundException when the function (or
//     that qualifier) has no policy; AddPermission refuses a statement id
//     already there (ResourceConflictException) and a stale RevisionId
//     (PreconditionFailedException); RemovePermission of an unknown statement
//     is ResourceNotFoundException. Policies are kept per qualifier.
//
// Every request is recorded as the IAM action it needs ("lambda:GetPolicy"),
// so tests can compare what a command called with the policies pretoken
// ships.
package awsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

// Fake holds the state of every faked service. Set its fields before the
// first request, or through its methods while it serves.
type Fake struct {
	mu sync.Mutex
	// Account and Region are where the faked resources live.
	Account, Region string

	pools     map[string]*pool
	functions map[string]*function // by unqualified ARN
	roles     map[string][]string  // role ARN -> actions it allows on any resource
	alarms    []Alarm
	actions   []string
	calls     []Call
	seen      map[string]bool // SDK invocation ids recorded
	// Hook, when set, runs after each request is answered, with the IAM
	// action it needed (outside the fake's lock: it may change the fake).
	Hook func(action string)

	// URLs of the services, for AWS_ENDPOINT_URL_<SERVICE>.
	CognitoURL, LambdaURL, IAMURL, CloudWatchURL string
}

// Call is one recorded request: its IAM action and its decoded body (or,
// for Lambda, its path, query and body).
type Call struct {
	Action string
	Input  map[string]any
}

// New starts the fakes for the test; they stop when it ends.
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{Account: "123456789012", Region: "us-east-1",
		pools: map[string]*pool{}, functions: map[string]*function{}, roles: map[string][]string{}, seen: map[string]bool{}}
	for _, s := range []struct {
		url *string
		h   http.HandlerFunc
	}{{&f.CognitoURL, f.serveCognito}, {&f.LambdaURL, f.serveLambda}, {&f.IAMURL, f.serveIAM}, {&f.CloudWatchURL, f.serveCloudWatch}} {
		srv := httptest.NewServer(s.h)
		t.Cleanup(srv.Close)
		*s.url = srv.URL
	}
	return f
}

// Env points the AWS SDK's default configuration at the fakes, with
// credentials that reach nothing else.
func (f *Fake) Env(t testing.TB) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", f.CognitoURL)
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", f.LambdaURL)
	t.Setenv("AWS_ENDPOINT_URL_IAM", f.IAMURL)
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH", f.CloudWatchURL)
	t.Setenv("AWS_REGION", f.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "fake")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// Actions returns the IAM actions of every request so far, in order.
func (f *Fake) Actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.actions)
}

// Calls returns every request so far whose action is action ("" for all).
func (f *Fake) Calls(action string) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		if action == "" || c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

// Writes returns the actions so far that change something.
func (f *Fake) Writes() []string {
	var out []string
	for _, a := range f.Actions() {
		switch a {
		case "cognito-idp:UpdateUserPool", "cognito-idp:AdminUserGlobalSignOut", "lambda:AddPermission", "lambda:RemovePermission":
			out = append(out, a)
		}
	}
	return out
}

// record notes a request; f.mu is held. An SDK retry of a call (the same
// amz-sdk-invocation-id, as after a connection error on a loaded machine)
// is served but not recorded again: what the tests count is the calls the
// code makes, each an action IAM must allow.
func (f *Fake) record(r *http.Request, action string, in map[string]any) {
	if id := r.Header.Get("Amz-Sdk-Invocation-Id"); id != "" {
		if f.seen[id] {
			return
		}
		f.seen[id] = true
	}
	f.actions = append(f.actions, action)
	f.calls = append(f.calls, Call{Action: action, Input: in})
}

func (f *Fake) hook(action string) {
	if f.Hook != nil {
		f.Hook(action)
	}
}

// apiError is an error answer: HTTP status, AWS error code, message.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status, code, fmt.Sprintf(format, args...)}
}

func clone(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
