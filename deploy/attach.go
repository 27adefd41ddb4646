package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// PoolAPI is the part of the Cognito user pool API that attaching needs.
type PoolAPI interface {
	DescribeUserPool(context.Context, *cip.DescribeUserPoolInput, ...func(*cip.Options)) (*cip.DescribeUserPoolOutput, error)
	UpdateUserPool(context.Context, *cip.UpdateUserPoolInput, ...func(*cip.Options)) (*cip.UpdateUserPoolOutput, error)
}

// FunctionAPI is the part of the Lambda API that attaching needs: the
// function's resource policy.
type FunctionAPI interface {
	GetPolicy(context.Context, *lambda.GetPolicyInput, ...func(*lambda.Options)) (*lambda.GetPolicyOutput, error)
	AddPermission(context.Context, *lambda.AddPermissionInput, ...func(*lambda.Options)) (*lambda.AddPermissionOutput, error)
	RemovePermission(context.Context, *lambda.RemovePermissionInput, ...func(*lambda.Options)) (*lambda.RemovePermissionOutput, error)
}

// AttachOptions says what to attach to which pool.
type AttachOptions struct {
	UserPoolID string
	// FunctionARN and Version name the trigger. Detach ignores Version, and
	// takes the function from the pool when FunctionARN is empty.
	FunctionARN string
	Version     string // V1_0, V2_0 or V3_0
	// Detach removes the pre token generation trigger instead, and the
	// invoke permission that attach added for this pool.
	Detach bool
	// UpgradePlan lets a V2_0/V3_0 attach move a Lite pool to Essentials.
	UpgradePlan bool
	// DryRun works out the change and writes nothing.
	DryRun bool
}

// AttachResult is what an attach changed, or would change.
type AttachResult struct {
	// Changes lists each changed setting as "path: old -> new": after a
	// write, what the pool shows when read again.
	Changes []string
	// Applied is true when UpdateUserPool was called.
	Applied bool
	// Permission says what happened to Cognito's invoke permission, the
	// statement PermissionID(pool) in the function's resource policy.
	Permission string
}

// Errors that refuse an attach before anything is written, or stop it.
var (
	ErrNeedsPaidPlan = errors.New("needs the Essentials or Plus feature plan")
	ErrRegion        = errors.New("the function and the user pool are in different regions")
	ErrAccount       = errors.New("the function and the user pool are in different accounts")
	// ErrPoolChanged: the pool was changed by someone else between the
	// read and the write; nothing was written to the pool.
	ErrPoolChanged = errors.New("the user pool changed while attach was working")
	// ErrUnexpected: read again after the update, the pool differs in more
	// than the trigger.
	ErrUnexpected = errors.New("the user pool changed in more than the trigger")
)

var (
	functionARN = regexp.MustCompile(`^arn:(aws[a-z-]*):lambda:([a-z0-9-]+):([0-9]{12}):function:([A-Za-z0-9_-]{1,64})(?::([A-Za-z0-9_$-]+))?$`)
	userPoolID  = regexp.MustCompile(`^([a-z0-9-]+)_[0-9a-zA-Z]+$`)
	arnAccount  = regexp.MustCompile(`^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12}):`)
)

// Function is a Lambda function ARN taken apart.
type Function struct {
	Partition, Region, Account, Name string
	// Qualifier is a version or alias, or "".
	Qualifier string
}

// ParseFunctionARN takes a function ARN apart; a version or alias suffix
// becomes Qualifier.
func ParseFunctionARN(arn string) (Function, error) {
	m := functionARN.FindStringSubmatch(arn)
	if m == nil {
		return Function{}, fmt.Errorf("%q is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:VERSION|ALIAS])", arn)
	}
	return Function{Partition: m[1], Region: m[2], Account: m[3], Name: m[4], Qualifier: m[5]}, nil
}

// Unqualified is the function's ARN without a version or alias.
func (f Function) Unqualified() string {
	return fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", f.Partition, f.Region, f.Account, f.Name)
}

func (f Function) qualifier() *string {
	if f.Qualifier == "" {
		return nil
	}
	return &f.Qualifier
}

// PermissionID is the statement id of the invoke permission attach adds
// to the function for a pool: one statement per pool, so a second pool
// gets its own and detaching one leaves the other.
func PermissionID(poolID string) string { return "pretoken-cognito-" + poolID }

// CognitoPrincipal is the service principal that invokes triggers.
const CognitoPrincipal = "cognito-idp.amazonaws.com"

// Attach puts the pre token generation trigger on a user pool that already
// exists (or takes it off), changing nothing else.
//
// Cognito's UpdateUserPool resets every setting it is not given, so Attach
// describes the pool and sends every updatable setting back as it was, with
// only LambdaConfig.PreTokenGenerationConfig (and, with UpgradePlan, the
// feature plan) changed, and without the members UpdateUserPool refuses
// (see UpdateInput). It reads the pool again just before the update and
// stops if LastModifiedDate moved, and once more after it, and fails if
// more than the trigger changed.
//
// Cognito needs a resource-based permission to invoke the function; the
// API, unlike the console, does not add one. Attach adds its own statement
// (PermissionID) before the update, so the trigger never points at a
// function Cognito may not call; Detach removes that statement after the
// update, and no other.
func Attach(ctx context.Context, pools PoolAPI, fns FunctionAPI, o AttachOptions) (AttachResult, error) {
	m := userPoolID.FindStringSubmatch(o.UserPoolID)
	if m == nil {
		return AttachResult{}, fmt.Errorf("%q is not a user pool id (REGION_ID)", o.UserPoolID)
	}
	var fn Function
	if !o.Detach || o.FunctionARN != "" {
		var err error
		if fn, err = ParseFunctionARN(o.FunctionARN); err != nil {
			return AttachResult{}, err
		}
		if fn.Region != m[1] {
			return AttachResult{}, fmt.Errorf("%w: function in %s, pool in %s; Cognito can only call a function in the pool's region", ErrRegion, fn.Region, m[1])
		}
	}
	if !o.Detach && !slices.Contains([]string{"V1_0", "V2_0", "V3_0"}, o.Version) {
		return AttachResult{}, fmt.Errorf("event version %q: want V1_0, V2_0 or V3_0", o.Version)
	}
	described, err := describe(ctx, pools, o.UserPoolID)
	if err != nil {
		return AttachResult{}, err
	}
	poolARN := aws.ToString(described.Arn)
	am := arnAccount.FindStringSubmatch(poolARN)
	if am == nil {
		return AttachResult{}, fmt.Errorf("describe user pool %s: no pool ARN in the answer", o.UserPoolID)
	}
	account := am[1]
	before := UpdateInput(described)
	after := UpdateInput(described)
	if after.LambdaConfig == nil {
		after.LambdaConfig = &types.LambdaConfigType{}
	}
	if o.Detach {
		if o.FunctionARN == "" {
			if current := TriggerARN(described.LambdaConfig); current != "" {
				if fn, err = ParseFunctionARN(current); err != nil {
					return AttachResult{}, fmt.Errorf("the pool's trigger: %w", err)
				}
			}
		}
		after.LambdaConfig.PreTokenGenerationConfig = nil
		after.LambdaConfig.PreTokenGeneration = nil
	} else {
		if fn.Account != account {
			return AttachResult{}, fmt.Errorf("%w: function in %s, pool in %s; attach adds Cognito's invoke permission to the function, which it can only do for a function in the pool's own account: deploy the trigger there", ErrAccount, fn.Account, account)
		}
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
	want := diffSettings(before, after)
	res := AttachResult{Changes: want}

	// The invoke permission: ours, on the function (and qualifier) named.
	perm := permissionPlan{}
	if fn.Name != "" {
		if perm, err = planPermission(ctx, fns, fn, o.UserPoolID, poolARN, account, !o.Detach); err != nil {
			return res, err
		}
	}
	res.Permission = perm.say(o.DryRun)
	if o.DryRun {
		return res, nil
	}
	if !o.Detach {
		if err := perm.apply(ctx, fns, fn); err != nil {
			return res, err
		}
	}
	if len(want) > 0 {
		again, err := describe(ctx, pools, o.UserPoolID)
		if err != nil {
			return res, err
		}
		if t0, t1 := aws.ToTime(described.LastModifiedDate), aws.ToTime(again.LastModifiedDate); !t0.Equal(t1) {
			return res, fmt.Errorf("%w: it was modified at %s, after attach read it (modified %s); nothing was written to the pool: run attach again",
				ErrPoolChanged, t1.UTC().Format(time.RFC3339), t0.UTC().Format(time.RFC3339))
		}
		if _, err := pools.UpdateUserPool(ctx, after); err != nil {
			return res, fmt.Errorf("update user pool %s: %w", o.UserPoolID, err)
		}
		res.Applied = true
		now, err := describe(ctx, pools, o.UserPoolID)
		if err != nil {
			return res, fmt.Errorf("the update was sent, but reading the pool again failed: %w", err)
		}
		res.Changes = diffSettings(before, UpdateInput(now))
		// Only the trigger may differ (and the plan, when asked to move it);
		// how Cognito reports the trigger's two fields is its own business,
		// as long as the pool now calls the function named, or none.
		var unexpected []string
		for _, c := range res.Changes {
			if !strings.HasPrefix(c, "LambdaConfig.PreTokenGeneration") && !slices.Contains(want, c) {
				unexpected = append(unexpected, c)
			}
		}
		wantARN := o.FunctionARN
		if o.Detach {
			wantARN = ""
		}
		if got := TriggerARN(now.LambdaConfig); got != wantARN {
			unexpected = append(unexpected, fmt.Sprintf("the trigger is %q, not %q", got, wantARN))
		}
		if len(unexpected) > 0 {
			return res, fmt.Errorf("%w: read again, it shows %s; expected %s: check the pool in the console",
				ErrUnexpected, orNothing(unexpected), orNothing(want))
		}
	}
	if o.Detach {
		if err := perm.apply(ctx, fns, fn); err != nil {
			return res, err
		}
	}
	return res, nil
}

func orNothing(changes []string) string {
	if len(changes) == 0 {
		return "no change"
	}
	return strings.Join(changes, "; ")
}

// describer is the read half of PoolAPI.
type describer interface {
	DescribeUserPool(context.Context, *cip.DescribeUserPoolInput, ...func(*cip.Options)) (*cip.DescribeUserPoolOutput, error)
}

func describe(ctx context.Context, pools describer, id string) (*types.UserPoolType, error) {
	out, err := pools.DescribeUserPool(ctx, &cip.DescribeUserPoolInput{UserPoolId: &id})
	if err != nil {
		return nil, fmt.Errorf("describe user pool %s: %w", id, err)
	}
	if out.UserPool == nil {
		return nil, fmt.Errorf("describe user pool %s: no pool in the answer", id)
	}
	return out.UserPool, nil
}

// TriggerARN is the pre token generation function a pool calls, or "".
func TriggerARN(lc *types.LambdaConfigType) string {
	if lc == nil {
		return ""
	}
	if lc.PreTokenGenerationConfig != nil && aws.ToString(lc.PreTokenGenerationConfig.LambdaArn) != "" {
		return aws.ToString(lc.PreTokenGenerationConfig.LambdaArn)
	}
	return aws.ToString(lc.PreTokenGeneration)
}

// permissionPlan is what to do with our statement: remove it, add it, or
// both (a statement of ours that no longer fits).
type permissionPlan struct {
	sid, revision    string
	remove, add      bool
	sourceARN, owner string
	present          bool
}

func planPermission(ctx context.Context, fns FunctionAPI, fn Function, poolID, poolARN, account string, attach bool) (permissionPlan, error) {
	p := permissionPlan{sid: PermissionID(poolID), sourceARN: poolARN, owner: account}
	doc, rev, err := GetPolicy(ctx, fns, fn)
	if err != nil {
		return p, err
	}
	p.revision = rev
	for _, st := range doc.Statement {
		if st.Sid != p.sid {
			continue
		}
		p.present = true
		fits := st.Allows(CognitoPrincipal, "lambda:InvokeFunction") && st.ConditionValue("AWS:SourceArn") == poolARN && st.ConditionValue("AWS:SourceAccount") == account
		p.remove = !attach || !fits
		p.add = attach && !fits
	}
	if !p.present {
		p.add = attach
	}
	return p, nil
}

func (p permissionPlan) say(dryRun bool) string {
	would := ""
	if dryRun {
		would = "would be "
	}
	switch {
	case p.sid == "":
		return "no function named: no invoke permission to remove"
	case p.remove && p.add:
		return fmt.Sprintf("invoke permission %s does not fit this pool: %sreplaced (principal %s, SourceArn %s, SourceAccount %s)", p.sid, would, CognitoPrincipal, p.sourceARN, p.owner)
	case p.add:
		return fmt.Sprintf("invoke permission %s %sadded (principal %s, SourceArn %s, SourceAccount %s)", p.sid, would, CognitoPrincipal, p.sourceARN, p.owner)
	case p.remove:
		return fmt.Sprintf("invoke permission %s %sremoved; other statements stay", p.sid, would)
	case p.present:
		return fmt.Sprintf("invoke permission %s already there", p.sid)
	}
	return fmt.Sprintf("no invoke permission %s to remove", p.sid)
}

func (p permissionPlan) apply(ctx context.Context, fns FunctionAPI, fn Function) error {
	name := fn.Unqualified()
	rev := aws.String(p.revision)
	if p.revision == "" {
		rev = nil
	}
	if p.remove {
		if _, err := fns.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: &name, Qualifier: fn.qualifier(), StatementId: &p.sid, RevisionId: rev}); err != nil {
			return fmt.Errorf("remove invoke permission %s from %s: %w", p.sid, name, err)
		}
		rev = nil // the policy has a new revision now
	}
	if p.add {
		if _, err := fns.AddPermission(ctx, &lambda.AddPermissionInput{
			FunctionName: &name, Qualifier: fn.qualifier(), StatementId: &p.sid,
			Action: aws.String("lambda:InvokeFunction"), Principal: aws.String(CognitoPrincipal),
			SourceArn: &p.sourceARN, SourceAccount: &p.owner, RevisionId: rev,
		}); err != nil {
			return fmt.Errorf("add invoke permission %s to %s: %w", p.sid, name, err)
		}
	}
	return nil
}

// UpdateInput is the UpdateUserPool request that leaves pool exactly as it
// is: every setting UpdateUserPool takes, carried over field by field (the
// test checks this against the SDK's request type, so a setting added to
// the API cannot be missed silently), except what UpdateUserPool refuses.
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
	// DescribeUserPool still reports the legacy
	// AdminCreateUserConfig.UnusedAccountValidityDays, and UpdateUserPool
	// refuses it: "InvalidParameterException: Please use
	// TemporaryPasswordValidityDays in PasswordPolicy instead of
	// UnusedAccountValidityDays" (terraform-provider-aws's user_pool.go drops
	// it on this error). Its successor keeps the value where it is unset.
	if c := pool.AdminCreateUserConfig; c != nil && c.UnusedAccountValidityDays != 0 {
		cc := *c
		days := cc.UnusedAccountValidityDays
		cc.UnusedAccountValidityDays = 0 // left out on the wire
		in.AdminCreateUserConfig = &cc
		pol := types.UserPoolPolicyType{}
		if pool.Policies != nil {
			pol = *pool.Policies
		}
		pp := types.PasswordPolicyType{}
		if pol.PasswordPolicy != nil {
			pp = *pol.PasswordPolicy
		}
		if pp.TemporaryPasswordValidityDays == 0 {
			pp.TemporaryPasswordValidityDays = days
			pol.PasswordPolicy = &pp
			in.Policies = &pol
		}
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
