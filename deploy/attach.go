package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// PoolAPI is the part of the Cognito user pool API that attaching needs.
type PoolAPI interface {
	DescribeUserPool(context.Context, *cip.DescribeUserPoolInput, ...func(*cip.Options)) (*cip.DescribeUserPoolOutput, error)
	UpdateUserPool(context.Context, *cip.UpdateUserPoolInput, ...func(*cip.Options)) (*cip.UpdateUserPoolOutput, error)
}

// AttachOptions says what to attach to which pool.
type AttachOptions struct {
	UserPoolID string
	// FunctionARN and Version name the trigger; both are ignored by Detach.
	FunctionARN string
	Version     string // V1_0, V2_0 or V3_0
	// Detach removes the pre token generation trigger instead.
	Detach bool
	// UpgradePlan lets a V2_0/V3_0 attach move a Lite pool to Essentials.
	UpgradePlan bool
	// DryRun works out the change and writes nothing.
	DryRun bool
}

// AttachResult is what an attach changed, or would change.
type AttachResult struct {
	// Changes lists each changed setting as "path: old -> new".
	Changes []string
	// Applied is true when UpdateUserPool was called.
	Applied bool
}

// Errors that refuse an attach before anything is written.
var (
	ErrNeedsPaidPlan = errors.New("needs the Essentials or Plus feature plan")
	ErrRegion        = errors.New("the function and the user pool are in different regions")
)

var (
	functionARN = regexp.MustCompile(`^arn:aws[a-z-]*:lambda:([a-z0-9-]+):[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?$`)
	userPoolID  = regexp.MustCompile(`^([a-z0-9-]+)_[0-9a-zA-Z]+$`)
)

// Attach puts the pre token generation trigger on a user pool that already
// exists (or takes it off), changing nothing else. Cognito's UpdateUserPool
// resets every setting it is not given, so Attach describes the pool and
// sends every updatable setting back as it was, with only
// LambdaConfig.PreTokenGenerationConfig (and, with UpgradePlan, the feature
// plan) changed. Other Lambda triggers stay.
func Attach(ctx context.Context, api PoolAPI, o AttachOptions) (AttachResult, error) {
	m := userPoolID.FindStringSubmatch(o.UserPoolID)
	if m == nil {
		return AttachResult{}, fmt.Errorf("%q is not a user pool id (REGION_ID)", o.UserPoolID)
	}
	if !o.Detach {
		f := functionARN.FindStringSubmatch(o.FunctionARN)
		if f == nil {
			return AttachResult{}, fmt.Errorf("%q is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)", o.FunctionARN)
		}
		if f[1] != m[1] {
			return AttachResult{}, fmt.Errorf("%w: function in %s, pool in %s; Cognito can only call a function in the pool's region", ErrRegion, f[1], m[1])
		}
		if !slices.Contains([]string{"V1_0", "V2_0", "V3_0"}, o.Version) {
			return AttachResult{}, fmt.Errorf("event version %q: want V1_0, V2_0 or V3_0", o.Version)
		}
	}
	out, err := api.DescribeUserPool(ctx, &cip.DescribeUserPoolInput{UserPoolId: &o.UserPoolID})
	if err != nil {
		return AttachResult{}, fmt.Errorf("describe user pool %s: %w", o.UserPoolID, err)
	}
	if out.UserPool == nil {
		return AttachResult{}, fmt.Errorf("describe user pool %s: no pool in the answer", o.UserPoolID)
	}
	before := UpdateInput(out.UserPool)
	after := UpdateInput(out.UserPool)
	if after.LambdaConfig == nil {
		after.LambdaConfig = &types.LambdaConfigType{}
	}
	if o.Detach {
		after.LambdaConfig.PreTokenGenerationConfig = nil
		after.LambdaConfig.PreTokenGeneration = nil
	} else {
		arn := o.FunctionARN
		after.LambdaConfig.PreTokenGenerationConfig = &types.PreTokenGenerationVersionConfigType{
			LambdaArn: &arn, LambdaVersion: types.PreTokenGenerationLambdaVersionType(o.Version)}
		// The older single-ARN field must name the same function when set.
		after.LambdaConfig.PreTokenGeneration = &arn
		if o.Version != "V1_0" && (after.UserPoolTier == types.UserPoolTierTypeLite || after.UserPoolTier == "") {
			if !o.UpgradePlan {
				plan := string(after.UserPoolTier)
				if plan == "" {
					plan = "not reported (Lite?)"
				}
				return AttachResult{}, fmt.Errorf("%s %w (the pool's plan is %s); use V1_0 (ID-token claims, every plan) or add --upgrade-plan to move the pool to Essentials, which costs more per monthly active user",
					o.Version, ErrNeedsPaidPlan, plan)
			}
			after.UserPoolTier = types.UserPoolTierTypeEssentials
		}
	}
	res := AttachResult{Changes: diffSettings(before, after)}
	if o.DryRun || len(res.Changes) == 0 {
		return res, nil
	}
	if _, err := api.UpdateUserPool(ctx, after); err != nil {
		return res, fmt.Errorf("update user pool %s: %w", o.UserPoolID, err)
	}
	res.Applied = true
	return res, nil
}

// UpdateInput is the UpdateUserPool request that leaves pool exactly as it
// is: every setting UpdateUserPool takes, carried over field by field (the
// test checks this against the SDK's request type, so a setting added to
// the API cannot be missed silently).
func UpdateInput(pool *types.UserPoolType) *cip.UpdateUserPoolInput {
	in := &cip.UpdateUserPoolInput{
		UserPoolId:                  pool.Id,
		AccountRecoverySetting:      pool.AccountRecoverySetting,
		AdminCreateUserConfig:       pool.AdminCreateUserConfig,
		AutoVerifiedAttributes:      pool.AutoVerifiedAttributes,
		DeletionProtection:          pool.DeletionProtection,
		DeviceConfiguration:         pool.DeviceConfiguration,
		EmailConfiguration:          pool.EmailConfiguration,
		EmailVerificationMessage:    pool.EmailVerificationMessage,
		EmailVerificationSubject:    pool.EmailVerificationSubject,
		IssuerConfiguration:         pool.IssuerConfiguration,
		KeyConfiguration:            pool.KeyConfiguration,
		LambdaConfig:                pool.LambdaConfig,
		MfaConfiguration:            pool.MfaConfiguration,
		Policies:                    pool.Policies,
		PoolName:                    pool.Name,
		SmsAuthenticationMessage:    pool.SmsAuthenticationMessage,
		SmsConfiguration:            pool.SmsConfiguration,
		SmsVerificationMessage:      pool.SmsVerificationMessage,
		UserAttributeUpdateSettings: pool.UserAttributeUpdateSettings,
		UserPoolAddOns:              pool.UserPoolAddOns,
		UserPoolTags:                pool.UserPoolTags,
		UserPoolTier:                pool.UserPoolTier,
		VerificationMessageTemplate: pool.VerificationMessageTemplate,
	}
	if pool.LambdaConfig != nil {
		lc := *pool.LambdaConfig // Attach changes the copy, not the described pool
		in.LambdaConfig = &lc
	}
	return in
}

// diffSettings lists the settings that differ between two requests, as
// dotted paths with their JSON values.
func diffSettings(before, after *cip.UpdateUserPoolInput) []string {
	a, b := flatten(before), flatten(after)
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		if a[k] != b[k] {
			out = append(out, fmt.Sprintf("%s: %s -> %s", k, orNone(a[k]), orNone(b[k])))
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(not set)"
	}
	return s
}

func flatten(v any) map[string]string {
	b, _ := json.Marshal(v)
	var m any
	_ = json.Unmarshal(b, &m)
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(strings.TrimPrefix(prefix+"."+k, "."), c)
			}
		case nil:
		default:
			if s, ok := x.(string); ok && s == "" {
				return
			}
			j, _ := json.Marshal(x)
			out[prefix] = string(j)
		}
	}
	walk("", m)
	return out
}
