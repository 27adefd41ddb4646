package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/internal/awsfake"
)

const trigger = "arn:aws:lambda:us-east-1:123456789012:function:pretoken-prod-trigger"

// newFake serves the pool in describe (a DescribeUserPool answer) and the
// trigger function from a strict fake of Cognito and Lambda, and returns SDK
// clients that talk to it.
func newFake(t *testing.T, describe []byte) (*awsfake.Fake, *cip.Client, *lambda.Client) {
	t.Helper()
	f := awsfake.New(t)
	var d struct{ UserPool map[string]any }
	if err := json.Unmarshal(describe, &d); err != nil {
		t.Fatal(err)
	}
	f.AddPool(d.UserPool)
	f.AddFunction(awsfake.Function{ARN: trigger, Timeout: 5})
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	pools := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.CognitoURL), Credentials: creds})
	fns := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.LambdaURL), Credentials: creds})
	return f, pools, fns
}

// updates returns the bodies of the UpdateUserPool requests f received.
func updates(f *awsfake.Fake) []map[string]any {
	var out []map[string]any
	for _, c := range f.Calls("cognito-idp:UpdateUserPool") {
		out = append(out, c.Input)
	}
	return out
}

func describeFixture(t *testing.T, mutate func(pool map[string]any)) ([]byte, map[string]any) {
	t.Helper()
	b, err := os.ReadFile("testdata/describe-user-pool.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	pool := m["UserPool"].(map[string]any)
	if mutate != nil {
		mutate(pool)
		b, _ = json.Marshal(m)
	}
	return b, pool
}

// updatableFields are the members of UpdateUserPool's request, from the SDK.
func updatableFields() []string {
	var out []string
	rt := reflect.TypeOf(cip.UpdateUserPoolInput{})
	for i := range rt.NumField() {
		if f := rt.Field(i); f.IsExported() && f.Name != "UserPoolId" {
			out = append(out, f.Name)
		}
	}
	return out
}

// describedName is the DescribeUserPool member that an update field carries.
func describedName(field string) string {
	if field == "PoolName" {
		return "Name"
	}
	return field
}

const examplePoolARN = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_EXAMPLE"

func attach(t *testing.T, pools *cip.Client, fns *lambda.Client, o AttachOptions) (AttachResult, error) {
	t.Helper()
	if o.UserPoolID == "" {
		o.UserPoolID = "us-east-1_EXAMPLE"
	}
	return Attach(context.Background(), pools, fns, o)
}

// TestAttachCarriesEverySettingOver: the UpdateUserPool request that attach
// sends holds every updatable setting exactly as DescribeUserPool gave it,
// field by field and on the wire, except the pre token generation trigger
// and the legacy UnusedAccountValidityDays, which UpdateUserPool refuses.
// Read again, the pool differs in the trigger only.
func TestAttachCarriesEverySettingOver(t *testing.T) {
	describe, pool := describeFixture(t, nil)
	fake, pools, fns := newFake(t, describe)
	res, err := attach(t, pools, fns, AttachOptions{FunctionARN: trigger, Version: "V2_0"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Applied || len(updates(fake)) != 1 {
		t.Fatalf("applied %v, %d UpdateUserPool calls; want one", res.Applied, len(updates(fake)))
	}
	sent := updates(fake)[0]
	if sent["UserPoolId"] != "us-east-1_EXAMPLE" {
		t.Errorf("UserPoolId %v", sent["UserPoolId"])
	}
	for _, field := range updatableFields() {
		described, ok := pool[describedName(field)]
		if !ok {
			t.Errorf("testdata lacks UserPool.%s, which UpdateUserPool takes: add it, so the test can check that attach carries it over", describedName(field))
			continue
		}
		want := described
		switch field {
		case "LambdaConfig":
			lc := maps.Clone(described.(map[string]any))
			lc["PreTokenGenerationConfig"] = map[string]any{"LambdaArn": trigger, "LambdaVersion": "V2_0"}
			lc["PreTokenGeneration"] = trigger
			want = lc
		case "AdminCreateUserConfig":
			acu := maps.Clone(described.(map[string]any))
			delete(acu, "UnusedAccountValidityDays")
			want = acu
		}
		if diff := cmp.Diff(want, sent[field]); diff != "" {
			t.Errorf("UpdateUserPool.%s is not what DescribeUserPool gave (-described +sent):\n%s", field, diff)
		}
	}
	for k := range sent {
		if k != "UserPoolId" && !slices.Contains(updatableFields(), k) {
			t.Errorf("sent %s, which UpdateUserPool does not take", k)
		}
	}
	want := []string{`LambdaConfig.PreTokenGeneration: (not set) -> "` + trigger + `"`,
		`LambdaConfig.PreTokenGenerationConfig.LambdaArn: (not set) -> "` + trigger + `"`,
		`LambdaConfig.PreTokenGenerationConfig.LambdaVersion: (not set) -> "V2_0"`}
	if diff := cmp.Diff(want, res.Changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	// What the fake holds now: the pool as it was, with the trigger.
	now := fake.Pool("us-east-1_EXAMPLE")
	wantPool := maps.Clone(pool)
	wantPool["LambdaConfig"] = sent["LambdaConfig"]
	delete(wantPool["AdminCreateUserConfig"].(map[string]any), "UnusedAccountValidityDays")
	delete(wantPool, "LastModifiedDate")
	delete(now, "LastModifiedDate")
	if diff := cmp.Diff(wantPool, now); diff != "" {
		t.Errorf("the pool changed in more than the trigger (-want +got):\n%s", diff)
	}
}

// TestStrictFakeRefusesWhatCognitoRefuses: the update that attach sent
// before (every described member back, UnusedAccountValidityDays
// included) fails with Cognito's own message; a partial update resets what
// it leaves out; V2_0 on Lite is refused by the service itself.
func TestStrictFakeRefusesWhatCognitoRefuses(t *testing.T) {
	describe, _ := describeFixture(t, nil)
	fake, pools, _ := newFake(t, describe)
	ctx := context.Background()
	d, err := pools.DescribeUserPool(ctx, &cip.DescribeUserPoolInput{UserPoolId: aws.String("us-east-1_EXAMPLE")})
	if err != nil {
		t.Fatal(err)
	}
	old := UpdateInput(d.UserPool)
	old.AdminCreateUserConfig = d.UserPool.AdminCreateUserConfig // as attach sent it before
	_, err = pools.UpdateUserPool(ctx, old)
	var bad *types.InvalidParameterException
	if !errors.As(err, &bad) || bad.ErrorMessage() != awsfake.MsgUnusedAccountValidityDays {
		t.Errorf("UpdateUserPool with UnusedAccountValidityDays: %v; want InvalidParameterException %q", err, awsfake.MsgUnusedAccountValidityDays)
	}

	partial := &cip.UpdateUserPoolInput{UserPoolId: aws.String("us-east-1_EXAMPLE"), UserPoolTier: types.UserPoolTierTypeLite,
		LambdaConfig: &types.LambdaConfigType{PreTokenGenerationConfig: &types.PreTokenGenerationVersionConfigType{
			LambdaArn: aws.String(trigger), LambdaVersion: types.PreTokenGenerationLambdaVersionTypeV20}}}
	var tier *types.FeatureUnavailableInTierException
	if _, err := pools.UpdateUserPool(ctx, partial); !errors.As(err, &tier) {
		t.Errorf("V2_0 on Lite: %v; want FeatureUnavailableInTierException", err)
	}
	partial.UserPoolTier = types.UserPoolTierTypeEssentials
	if _, err := pools.UpdateUserPool(ctx, partial); err != nil {
		t.Fatal(err)
	}
	now := fake.Pool("us-east-1_EXAMPLE")
	if _, ok := now["EmailConfiguration"]; ok {
		t.Errorf("a partial update kept EmailConfiguration; Cognito resets what it is not sent")
	}
	if _, ok := now["LambdaConfig"].(map[string]any)["PreSignUp"]; ok {
		t.Errorf("a partial update kept the other triggers")
	}
}

func TestAttachRefusals(t *testing.T) {
	lite, _ := describeFixture(t, func(p map[string]any) { p["UserPoolTier"] = "LITE" })
	for _, c := range []struct {
		name    string
		opts    AttachOptions
		want    error
		wantOps []string
	}{
		{"V2_0 on Lite", AttachOptions{FunctionARN: trigger, Version: "V2_0"}, ErrNeedsPaidPlan, []string{"cognito-idp:DescribeUserPool"}},
		{"V3_0 on Lite", AttachOptions{FunctionARN: trigger, Version: "V3_0"}, ErrNeedsPaidPlan, []string{"cognito-idp:DescribeUserPool"}},
		{"another region", AttachOptions{UserPoolID: "eu-west-1_EXAMPLE", FunctionARN: trigger, Version: "V1_0"}, ErrRegion, nil},
		{"another account", AttachOptions{FunctionARN: "arn:aws:lambda:us-east-1:210987654321:function:pretoken-prod-trigger", Version: "V1_0"}, ErrAccount, []string{"cognito-idp:DescribeUserPool"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fake, pools, fns := newFake(t, lite)
			_, err := attach(t, pools, fns, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if diff := cmp.Diff(c.wantOps, fake.Actions()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"arn:aws:lambda:us-east-1:123456789012:function:f:1:2", "arn:aws:lambda:us-east-1:123:function:f", "pretoken-prod-trigger"} {
		if _, err := ParseFunctionARN(bad); err == nil {
			t.Errorf("ParseFunctionARN(%q) took it", bad)
		}
	}

	t.Run("V1_0 on Lite", func(t *testing.T) {
		fake, pools, fns := newFake(t, lite)
		if _, err := attach(t, pools, fns, AttachOptions{FunctionARN: trigger, Version: "V1_0"}); err != nil {
			t.Fatal(err)
		}
		if u := updates(fake); len(u) != 1 || u[0]["UserPoolTier"] != "LITE" {
			t.Errorf("V1_0 must leave a Lite pool on Lite: %v", u)
		}
	})
	t.Run("upgrade plan", func(t *testing.T) {
		fake, pools, fns := newFake(t, lite)
		res, err := attach(t, pools, fns, AttachOptions{FunctionARN: trigger, Version: "V2_0", UpgradePlan: true})
		if err != nil {
			t.Fatal(err)
		}
		if u := updates(fake); len(u) != 1 || u[0]["UserPoolTier"] != "ESSENTIALS" || !slices.Contains(res.Changes, `UserPoolTier: "LITE" -> "ESSENTIALS"`) {
			t.Errorf("changes %v, updates %v", res.Changes, u)
		}
	})
}

// TestAttachLegacyValidity: a pool that only has the legacy
// UnusedAccountValidityDays keeps its value, as TemporaryPasswordValidityDays.
func TestAttachLegacyValidity(t *testing.T) {
	legacy, _ := describeFixture(t, func(p map[string]any) {
		p["AdminCreateUserConfig"].(map[string]any)["UnusedAccountValidityDays"] = 3
		delete(p["Policies"].(map[string]any)["PasswordPolicy"].(map[string]any), "TemporaryPasswordValidityDays")
	})
	fake, pools, fns := newFake(t, legacy)
	if _, err := attach(t, pools, fns, AttachOptions{FunctionARN: trigger, Version: "V1_0"}); err != nil {
		t.Fatal(err)
	}
	pp := fake.Pool("us-east-1_EXAMPLE")["Policies"].(map[string]any)["PasswordPolicy"].(map[string]any)
	if pp["TemporaryPasswordValidityDays"] != 3.0 {
		t.Errorf("TemporaryPasswordValidityDays %v, want the legacy 3", pp["TemporaryPasswordValidityDays"])
	}
}

// TestAttachOwnsTheInvokePermission: attach adds one statement of its own
// for the pool (once, however often it runs), next to the stack's;
// --detach removes the trigger and that statement, and leaves the rest.
func TestAttachOwnsTheInvokePermission(t *testing.T) {
	describe, pool := describeFixture(t, nil)
	fake, pools, fns := newFake(t, describe)
	stack := map[string]any{"Sid": "pretoken-stack", "Effect": "Allow", "Principal": map[string]any{"Service": "cognito-idp.amazonaws.com"},
		"Action": "lambda:InvokeFunction", "Resource": trigger, "Condition": map[string]any{"ArnLike": map[string]any{"AWS:SourceArn": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_OTHER"}}}
	fake.AddStatement(trigger, "", stack)

	res, err := attach(t, pools, fns, AttachOptions{FunctionARN: trigger, Version: "V2_0", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if w := fake.Writes(); len(w) != 0 || res.Applied || !strings.Contains(res.Permission, "would be added") {
		t.Errorf("dry run: writes %v, applied %v, permission %q", w, res.Applied, res.Permission)
	}

	for range 2 {
		if _, err := attach(t, pools, fns, AttachOptions{FunctionARN: trigger, Version: "V2_0"}); err != nil {
			t.Fatal(err)
		}
	}
	ours := map[string]any{"Sid": PermissionID("us-east-1_EXAMPLE"), "Effect": "Allow", "Principal": map[string]any{"Service": "cognito-idp.amazonaws.com"},
		"Action": "lambda:InvokeFunction", "Resource": trigger, "Condition": map[string]any{
			"ArnLike": map[string]any{"AWS:SourceArn": examplePoolARN}, "StringEquals": map[string]any{"AWS:SourceAccount": "123456789012"}}}
	if diff := cmp.Diff([]map[string]any{stack, ours}, fake.Statements(trigger, "")); diff != "" {
		t.Errorf("statements after two attaches (-want +got):\n%s", diff)
	}
	if n := len(fake.Calls("lambda:AddPermission")); n != 1 {
		t.Errorf("%d AddPermission calls for two attaches, want 1", n)
	}
	if add := fake.Calls("lambda:AddPermission")[0].Input; add["RevisionId"] == nil {
		t.Errorf("AddPermission without the RevisionId GetPolicy gave: %v", add)
	}

	res, err = attach(t, pools, fns, AttachOptions{Detach: true, DryRun: true})
	if err != nil || !strings.Contains(res.Permission, "would be removed") || len(res.Changes) != 3 {
		t.Fatalf("detach dry run: %v, %+v", err, res)
	}
	before := len(fake.Writes())
	if _, err := attach(t, pools, fns, AttachOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	if w := fake.Writes()[before:]; !slices.Equal(w, []string{"cognito-idp:UpdateUserPool", "lambda:RemovePermission"}) {
		t.Errorf("detach wrote %v; want the update, then the statement's removal", w)
	}
	if diff := cmp.Diff([]map[string]any{stack}, fake.Statements(trigger, "")); diff != "" {
		t.Errorf("statements after detach (-want +got):\n%s", diff)
	}
	now := fake.Pool("us-east-1_EXAMPLE")
	lc := now["LambdaConfig"].(map[string]any)
	if lc["PreTokenGenerationConfig"] != nil || lc["PreTokenGeneration"] != nil {
		t.Errorf("detach left the trigger: %v", lc)
	}
	if diff := cmp.Diff(pool["LambdaConfig"], lc); diff != "" {
		t.Errorf("detach changed other triggers (-before +after):\n%s", diff)
	}
}

// TestAttachQualified: a version or alias gets the permission on that
// qualifier, and the trigger names the qualified ARN.
func TestAttachQualified(t *testing.T) {
	describe, _ := describeFixture(t, nil)
	fake, pools, fns := newFake(t, describe)
	if _, err := attach(t, pools, fns, AttachOptions{FunctionARN: trigger + ":live", Version: "V1_0"}); err != nil {
		t.Fatal(err)
	}
	if st := fake.Statements(trigger, "live"); len(st) != 1 || st[0]["Resource"] != trigger+":live" {
		t.Errorf("statements on the alias: %v", st)
	}
	if st := fake.Statements(trigger, ""); len(st) != 0 {
		t.Errorf("statements on the unqualified function: %v", st)
	}
	if lc := fake.Pool("us-east-1_EXAMPLE")["LambdaConfig"].(map[string]any); lc["PreTokenGeneration"] != trigger+":live" {
		t.Errorf("trigger %v", lc["PreTokenGeneration"])
	}
	if _, err := attach(t, pools, fns, AttachOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	if st := fake.Statements(trigger, "live"); len(st) != 0 {
		t.Errorf("detach left %v on the alias", st)
	}
}

// TestAttachStopsWhenThePoolMoves: someone changes the pool between
// attach's read and its update: attach stops and writes nothing to it.
func TestAttachStopsWhenThePoolMoves(t *testing.T) {
	describe, _ := describeFixture(t, nil)
	fake, pools, fns := newFake(t, describe)
	fake.Hook = func(action string) {
		if action == "lambda:AddPermission" {
			fake.TouchPool("us-east-1_EXAMPLE")
		}
	}
	_, err := attach(t, pools, fns, AttachOptions{FunctionARN: trigger, Version: "V1_0"})
	if !errors.Is(err, ErrPoolChanged) {
		t.Fatalf("error %v, want ErrPoolChanged", err)
	}
	if u := updates(fake); len(u) != 0 {
		t.Errorf("attach updated a pool that moved: %v", u)
	}
}

// TestAttachReadsTheResultBack: when the pool, read after the update,
// differs in more than the trigger, attach says so and fails.
func TestAttachReadsTheResultBack(t *testing.T) {
	describe, _ := describeFixture(t, nil)
	fake, pools, fns := newFake(t, describe)
	fake.Hook = func(action string) {
		if action == "cognito-idp:UpdateUserPool" {
			fake.EditPool("us-east-1_EXAMPLE", func(p map[string]any) { delete(p, "EmailConfiguration") })
		}
	}
	res, err := attach(t, pools, fns, AttachOptions{FunctionARN: trigger, Version: "V1_0"})
	if !errors.Is(err, ErrUnexpected) || !strings.Contains(err.Error(), "EmailConfiguration.From") || !res.Applied {
		t.Fatalf("error %v, applied %v; want ErrUnexpected naming EmailConfiguration", err, res.Applied)
	}
}
