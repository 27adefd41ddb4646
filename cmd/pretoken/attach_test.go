package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/internal/cognitotest"
)

// TestAttachAgainstCognitoLocal creates a pool with other triggers and
// settings in cognito-local (whose UpdateUserPool, like Cognito's, resets
// what it is not given), then attaches: the dry run shows exactly the
// trigger's settings and changes nothing, the real run changes only them.
func TestAttachAgainstCognitoLocal(t *testing.T) {
	base := cognitotest.Start(t, "")
	t.Setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", base)
	t.Setenv("AWS_REGION", "local")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	created := cognitotest.Call(t, base, "CreateUserPool", map[string]any{
		"PoolName":                 "customers",
		"AutoVerifiedAttributes":   []string{"email"},
		"EmailVerificationMessage": "Your code is {####}.",
		"EmailVerificationSubject": "Your code",
		"SmsAuthenticationMessage": "Your sign-in code is {####}.",
		"MfaConfiguration":         "OFF",
		"UserPoolTags":             map[string]string{"team": "identity"},
		"AdminCreateUserConfig":    map[string]any{"AllowAdminCreateUserOnly": true},
		"DeviceConfiguration":      map[string]any{"ChallengeRequiredOnNewDevice": true},
		"AccountRecoverySetting":   map[string]any{"RecoveryMechanisms": []map[string]any{{"Name": "verified_email", "Priority": 1}}},
		"Policies":                 map[string]any{"PasswordPolicy": map[string]any{"MinimumLength": 12, "RequireNumbers": true}},
		"LambdaConfig": map[string]any{
			"PreSignUp":          "arn:aws:lambda:local:123456789012:function:pre-signup",
			"PostConfirmation":   "arn:aws:lambda:local:123456789012:function:post-confirm",
			"PreAuthentication":  "arn:aws:lambda:local:123456789012:function:pre-auth",
			"PostAuthentication": "arn:aws:lambda:local:123456789012:function:post-auth",
		},
	})
	pool := cognitotest.Field(t, created, "UserPool", "Id")
	describe := func() map[string]any {
		t.Helper()
		p := cognitotest.Call(t, base, "DescribeUserPool", map[string]any{"UserPoolId": pool})["UserPool"].(map[string]any)
		delete(p, "LastModifiedDate")
		return p
	}
	before := describe()
	const fn = "arn:aws:lambda:local:123456789012:function:pretoken-prod-trigger"

	code, out, errOut := runCLI(t, "attach", "--user-pool-id", pool, "--function-arn", fn, "--version", "V1_0", "--dry-run")
	wantLines := []string{
		`~ LambdaConfig.PreTokenGeneration: (not set) -> "` + fn + `"`,
		`~ LambdaConfig.PreTokenGenerationConfig.LambdaArn: (not set) -> "` + fn + `"`,
		`~ LambdaConfig.PreTokenGenerationConfig.LambdaVersion: (not set) -> "V1_0"`,
		`dry run: 3 setting(s) would change on user pool ` + pool + `; nothing was written`,
	}
	if diff := cmp.Diff(strings.Join(wantLines, "\n")+"\n", out); code != 0 || diff != "" {
		t.Errorf("dry run: exit %d, stderr %q (-want +got):\n%s", code, errOut, diff)
	}
	if diff := cmp.Diff(before, describe()); diff != "" {
		t.Errorf("the dry run changed the pool (-before +after):\n%s", diff)
	}

	code, out, errOut = runCLI(t, "attach", "--user-pool-id", pool, "--function-arn", fn, "--version", "V2_0")
	if code != 1 || out != "" || !strings.Contains(errOut, "Essentials") || !strings.Contains(errOut, "--upgrade-plan") {
		t.Errorf("V2_0 on a pool without a paid plan: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	code, out, errOut = runCLI(t, "attach", "--user-pool-id", pool, "--function-arn", fn, "--version", "V1_0")
	if code != 0 || !strings.Contains(out, "attached the trigger to user pool "+pool) {
		t.Fatalf("attach: exit %d, %q, %q", code, out, errOut)
	}
	after := describe()
	want := clone(t, before)
	lc := want["LambdaConfig"].(map[string]any)
	lc["PreTokenGenerationConfig"] = map[string]any{"LambdaArn": fn, "LambdaVersion": "V1_0"}
	lc["PreTokenGeneration"] = fn
	if diff := cmp.Diff(want, after); diff != "" {
		t.Errorf("attach changed more than the trigger (-want +got):\n%s", diff)
	}

	if code, out, _ := runCLI(t, "attach", "--user-pool-id", pool, "--detach"); code != 0 || !strings.Contains(out, "detached") {
		t.Fatalf("detach: exit %d, %q", code, out)
	}
	if diff := cmp.Diff(before, describe()); diff != "" {
		t.Errorf("detach did not give back the pool as it was (-before +after):\n%s", diff)
	}
}

func clone(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(m)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
