package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
)

// ResourcePolicy is a Lambda function's resource-based policy as GetPolicy
// returns it (a JSON string). Principal, Action and condition values may
// each be a string or a list; keys are matched without regard to case, as
// IAM does for condition keys.
type ResourcePolicy struct {
	Statement []PolicyStatement
}

// PolicyStatement is one statement of a resource policy.
type PolicyStatement struct {
	Sid       string
	Effect    string
	Principal json.RawMessage
	Action    json.RawMessage
	Condition map[string]map[string]json.RawMessage
}

// strings reads a JSON string or list of strings.
func stringsOf(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

// Allows reports whether the statement allows service principal to call
// action (or lambda:*).
func (s PolicyStatement) Allows(principal, action string) bool {
	if s.Effect != "Allow" {
		return false
	}
	okAction := false
	for _, a := range stringsOf(s.Action) {
		if strings.EqualFold(a, action) || a == "lambda:*" || a == "*" {
			okAction = true
		}
	}
	var p struct{ Service json.RawMessage }
	principals := stringsOf(s.Principal)
	if json.Unmarshal(s.Principal, &p) == nil && p.Service != nil {
		principals = stringsOf(p.Service)
	}
	okPrincipal := false
	for _, x := range principals {
		if x == principal || x == "*" {
			okPrincipal = true
		}
	}
	return okAction && okPrincipal
}

// ConditionValue is the value the statement requires for a condition key (under
// any operator), or "" when it sets none. A list gives its first value.
func (s PolicyStatement) ConditionValue(key string) string {
	for _, byKey := range s.Condition {
		for k, v := range byKey {
			if strings.EqualFold(k, key) {
				if vs := stringsOf(v); len(vs) > 0 {
					return vs[0]
				}
			}
		}
	}
	return ""
}

// LetsCognitoInvoke reports whether the statement lets Cognito invoke the
// function for the pool with ARN poolARN in account: SourceArn (an ARN
// pattern under ArnLike) and SourceAccount, when set, must match.
func (s PolicyStatement) LetsCognitoInvoke(poolARN, account string) bool {
	if !s.Allows(CognitoPrincipal, "lambda:InvokeFunction") {
		return false
	}
	if src := s.ConditionValue("AWS:SourceArn"); src != "" {
		if ok, _ := path.Match(strings.ReplaceAll(src, "/", "\x00"), strings.ReplaceAll(poolARN, "/", "\x00")); !ok {
			return false
		}
	}
	if acc := s.ConditionValue("AWS:SourceAccount"); acc != "" && acc != account {
		return false
	}
	return true
}

// PolicyReader reads a function's resource policy.
type PolicyReader interface {
	GetPolicy(context.Context, *lambda.GetPolicyInput, ...func(*lambda.Options)) (*lambda.GetPolicyOutput, error)
}

// GetPolicy reads the resource policy of fn (on its qualifier), with its
// revision. No policy at all (ResourceNotFoundException) is an empty one.
func GetPolicy(ctx context.Context, fns PolicyReader, fn Function) (ResourcePolicy, string, error) {
	name := fn.Unqualified()
	out, err := fns.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: &name, Qualifier: fn.qualifier()})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ResourceNotFoundException" {
		return ResourcePolicy{}, "", nil
	}
	if err != nil {
		return ResourcePolicy{}, "", fmt.Errorf("read the resource policy of %s: %w", name, err)
	}
	var doc ResourcePolicy
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &doc); err != nil {
		return ResourcePolicy{}, "", fmt.Errorf("read the resource policy of %s: %w", name, err)
	}
	return doc, aws.ToString(out.RevisionId), nil
}
