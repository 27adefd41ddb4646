package awsfake_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/pretoken/pretoken/internal/awsfake"
)

const fn = "arn:aws:lambda:us-east-1:123456789012:function:f"

// TestStrict: the fake refuses what the real services refuse, through the
// SDK's own clients and error types.
func TestStrict(t *testing.T) {
	f := awsfake.New(t)
	f.AddFunction(awsfake.Function{ARN: fn})
	f.AddPool(map[string]any{"Id": "us-east-1_P"})
	f.AddUser("us-east-1_P", awsfake.User{Username: "Okta_1", Sub: "s-1", Provider: "Okta"})
	f.AddUser("us-east-1_P", awsfake.User{Username: "local", Sub: "s-2"})
	creds := credentials.NewStaticCredentialsProvider("x", "x", "")
	lc := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.LambdaURL), Credentials: creds})
	cc := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.CognitoURL), Credentials: creds})
	ctx := context.Background()

	var notFound *types.ResourceNotFoundException
	if _, err := lc.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String(fn)}); !errors.As(err, &notFound) {
		t.Errorf("GetPolicy without a policy: %v; want ResourceNotFoundException", err)
	}
	add := &lambda.AddPermissionInput{FunctionName: aws.String(fn), StatementId: aws.String("s"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("cognito-idp.amazonaws.com")}
	if _, err := lc.AddPermission(ctx, add); err != nil {
		t.Fatal(err)
	}
	var conflict *types.ResourceConflictException
	if _, err := lc.AddPermission(ctx, add); !errors.As(err, &conflict) {
		t.Errorf("a second AddPermission with the same statement id: %v; want ResourceConflictException", err)
	}
	add.StatementId, add.RevisionId = aws.String("t"), aws.String("stale")
	var stale *types.PreconditionFailedException
	if _, err := lc.AddPermission(ctx, add); !errors.As(err, &stale) {
		t.Errorf("AddPermission with a stale RevisionId: %v; want PreconditionFailedException", err)
	}
	if _, err := lc.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String(fn), Qualifier: aws.String("live")}); !errors.As(err, &notFound) {
		t.Errorf("GetPolicy on an alias without a policy: %v; want ResourceNotFoundException", err)
	}

	var noUser *ciptypes.UserNotFoundException
	if _, err := cc.AdminUserGlobalSignOut(ctx, &cip.AdminUserGlobalSignOutInput{UserPoolId: aws.String("us-east-1_P"), Username: aws.String("s-1")}); !errors.As(err, &noUser) {
		t.Errorf("sign-out by a federated user's sub: %v; want UserNotFoundException", err)
	}
	for _, name := range []string{"Okta_1", "s-2", "local"} {
		if _, err := cc.AdminUserGlobalSignOut(ctx, &cip.AdminUserGlobalSignOutInput{UserPoolId: aws.String("us-east-1_P"), Username: aws.String(name)}); err != nil {
			t.Errorf("sign-out of %s: %v", name, err)
		}
	}
	var bad *ciptypes.InvalidParameterException
	if _, err := cc.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: aws.String("us-east-1_P"), Filter: aws.String("sub = s-1")}); !errors.As(err, &bad) {
		t.Errorf("an unquoted filter: %v; want InvalidParameterException", err)
	}
	out, err := cc.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: aws.String("us-east-1_P"), Filter: aws.String(`sub = "s-1"`)})
	if err != nil || len(out.Users) != 1 || aws.ToString(out.Users[0].Username) != "Okta_1" {
		t.Errorf("ListUsers by sub: %v, %v", out, err)
	}
	if _, err := cc.ListUserPoolClients(ctx, &cip.ListUserPoolClientsInput{UserPoolId: aws.String("us-east-1_P"), MaxResults: aws.Int32(61)}); !errors.As(err, &bad) {
		t.Errorf("ListUserPoolClients with MaxResults 61: %v; want InvalidParameterException", err)
	}
}

// lostAnswer is an HTTP client whose first request reaches the server but
// whose answer is lost, as a connection reset does to it.
type lostAnswer struct{ lost bool }

func (c *lostAnswer) Do(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(r)
	if err != nil || c.lost {
		return resp, err
	}
	c.lost = true
	resp.Body.Close()
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
}

// TestRetryRecordedOnce: the SDK's retry of a call whose answer was lost is
// served again but recorded once; two calls are recorded twice.
func TestRetryRecordedOnce(t *testing.T) {
	f := awsfake.New(t)
	f.AddPool(map[string]any{"Id": "us-east-1_P"})
	client := &lostAnswer{}
	cc := cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.CognitoURL),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", ""), HTTPClient: client})
	in := &cip.DescribeUserPoolInput{UserPoolId: aws.String("us-east-1_P")}
	if _, err := cc.DescribeUserPool(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if !client.lost || len(f.Actions()) != 1 {
		t.Fatalf("answer lost %v, recorded %v; want one call recorded after a retry", client.lost, f.Actions())
	}
	if _, err := cc.DescribeUserPool(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if got := f.Actions(); len(got) != 2 {
		t.Errorf("recorded %v after two calls", got)
	}
}
