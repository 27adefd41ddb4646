package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/google/go-cmp/cmp"
)

const trigger = "arn:aws:lambda:us-east-1:123456789012:function:pretoken-prod-trigger"

// fakeCognito answers DescribeUserPool with a fixed response body and
// records the body of every UpdateUserPool request, as the SDK sends them
// on the wire.
type fakeCognito struct {
	mu       sync.Mutex
	describe []byte
	calls    []string
	updates  []map[string]any
}

func newFakeCognito(t *testing.T, describe []byte) (*fakeCognito, *cip.Client) {
	t.Helper()
	f := &fakeCognito{describe: describe}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AWSCognitoIdentityProviderService.")
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, op)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		switch op {
		case "DescribeUserPool":
			w.Write(f.describe)
		case "UpdateUserPool":
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Errorf("UpdateUserPool body: %v", err)
			}
			f.updates = append(f.updates, m)
			w.Write([]byte("{}"))
		default:
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"__type":"InvalidParameterException","message":"unexpected operation"}`))
		}
	}))
	t.Cleanup(srv.Close)
	client := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	return f, client
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

// TestAttachCarriesEverySettingOver: the UpdateUserPool request that attach
// sends holds every updatable setting exactly as DescribeUserPool gave it,
// field by field and on the wire, except the pre token generation trigger.
func TestAttachCarriesEverySettingOver(t *testing.T) {
	describe, pool := describeFixture(t, nil)
	fake, client := newFakeCognito(t, describe)
	res, err := Attach(context.Background(), client, AttachOptions{UserPoolID: "us-east-1_EXAMPLE", FunctionARN: trigger, Version: "V2_0"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Applied || len(fake.updates) != 1 {
		t.Fatalf("applied %v, %d UpdateUserPool calls; want one", res.Applied, len(fake.updates))
	}
	sent := fake.updates[0]
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
		if field == "LambdaConfig" {
			lc := map[string]any{}
			for k, v := range described.(map[string]any) {
				lc[k] = v
			}
			lc["PreTokenGenerationConfig"] = map[string]any{"LambdaArn": trigger, "LambdaVersion": "V2_0"}
			lc["PreTokenGeneration"] = trigger
			want = lc
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
}

func TestAttachRefusals(t *testing.T) {
	lite, _ := describeFixture(t, func(p map[string]any) { p["UserPoolTier"] = "LITE" })
	for _, c := range []struct {
		name    string
		opts    AttachOptions
		want    error
		wantOps []string
	}{
		{"V2_0 on Lite", AttachOptions{UserPoolID: "us-east-1_EXAMPLE", FunctionARN: trigger, Version: "V2_0"}, ErrNeedsPaidPlan, []string{"DescribeUserPool"}},
		{"V3_0 on Lite", AttachOptions{UserPoolID: "us-east-1_EXAMPLE", FunctionARN: trigger, Version: "V3_0"}, ErrNeedsPaidPlan, []string{"DescribeUserPool"}},
		{"another region", AttachOptions{UserPoolID: "eu-west-1_EXAMPLE", FunctionARN: trigger, Version: "V1_0"}, ErrRegion, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			fake, client := newFakeCognito(t, lite)
			_, err := Attach(context.Background(), client, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if diff := cmp.Diff(c.wantOps, fake.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("V1_0 on Lite", func(t *testing.T) {
		fake, client := newFakeCognito(t, lite)
		if _, err := Attach(context.Background(), client, AttachOptions{UserPoolID: "us-east-1_EXAMPLE", FunctionARN: trigger, Version: "V1_0"}); err != nil {
			t.Fatal(err)
		}
		if len(fake.updates) != 1 || fake.updates[0]["UserPoolTier"] != "LITE" {
			t.Errorf("V1_0 must leave a Lite pool on Lite: %v", fake.updates)
		}
	})
	t.Run("upgrade plan", func(t *testing.T) {
		fake, client := newFakeCognito(t, lite)
		res, err := Attach(context.Background(), client, AttachOptions{UserPoolID: "us-east-1_EXAMPLE", FunctionARN: trigger, Version: "V2_0", UpgradePlan: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(fake.updates) != 1 || fake.updates[0]["UserPoolTier"] != "ESSENTIALS" || !slices.Contains(res.Changes, `UserPoolTier: "LITE" -> "ESSENTIALS"`) {
			t.Errorf("changes %v, updates %v", res.Changes, fake.updates)
		}
	})
}

func TestAttachDryRunAndDetach(t *testing.T) {
	attached, pool := describeFixture(t, func(p map[string]any) {
		lc := p["LambdaConfig"].(map[string]any)
		lc["PreTokenGenerationConfig"] = map[string]any{"LambdaArn": trigger, "LambdaVersion": "V1_0"}
		lc["PreTokenGeneration"] = trigger
	})
	fake, client := newFakeCognito(t, attached)
	res, err := Attach(context.Background(), client, AttachOptions{UserPoolID: "us-east-1_EXAMPLE", FunctionARN: trigger, Version: "V2_0", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied || len(fake.updates) != 0 {
		t.Errorf("dry run wrote: %v", fake.updates)
	}
	if diff := cmp.Diff([]string{`LambdaConfig.PreTokenGenerationConfig.LambdaVersion: "V1_0" -> "V2_0"`}, res.Changes); diff != "" {
		t.Errorf("dry run changes (-want +got):\n%s", diff)
	}

	res, err = Attach(context.Background(), client, AttachOptions{UserPoolID: "us-east-1_EXAMPLE", Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(fake.updates) != 1 {
		t.Fatalf("detach: %d updates", len(fake.updates))
	}
	lc := fake.updates[0]["LambdaConfig"].(map[string]any)
	if lc["PreTokenGenerationConfig"] != nil || lc["PreTokenGeneration"] != nil {
		t.Errorf("detach left the trigger: %v", lc)
	}
	if lc["PreSignUp"] != pool["LambdaConfig"].(map[string]any)["PreSignUp"] || len(lc) != len(pool["LambdaConfig"].(map[string]any))-2 {
		t.Errorf("detach changed other triggers: %v", lc)
	}
	if len(res.Changes) != 3 {
		t.Errorf("detach changes %v", res.Changes)
	}
}
