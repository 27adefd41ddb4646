package deploy

import (
	"encoding/json"
	"testing"
)

// TestLetsCognitoInvoke reads statements in the shapes Lambda returns
// (Principal as an object or a string, Action as a string or a list,
// conditions under any operator and key case) and decides as IAM would.
func TestLetsCognitoInvoke(t *testing.T) {
	const pool, account = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_EXAMPLE", "123456789012"
	for _, c := range []struct {
		statement string
		want      bool
	}{
		{`{"Effect":"Allow","Principal":{"Service":"cognito-idp.amazonaws.com"},"Action":"lambda:InvokeFunction","Condition":{"ArnLike":{"AWS:SourceArn":"` + pool + `"},"StringEquals":{"AWS:SourceAccount":"123456789012"}}}`, true},
		{`{"Effect":"Allow","Principal":{"Service":["cognito-idp.amazonaws.com"]},"Action":["lambda:InvokeFunction"],"Condition":{"ArnLike":{"aws:sourcearn":"arn:aws:cognito-idp:us-east-1:123456789012:userpool/*"}}}`, true},
		{`{"Effect":"Allow","Principal":{"Service":"cognito-idp.amazonaws.com"},"Action":"lambda:*"}`, true},
		{`{"Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Condition":{"ArnEquals":{"AWS:SourceArn":"` + pool + `"}}}`, true},
		{`{"Effect":"Allow","Principal":{"Service":"cognito-idp.amazonaws.com"},"Action":"lambda:InvokeFunction","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_OTHER"}}}`, false},
		{`{"Effect":"Allow","Principal":{"Service":"cognito-idp.amazonaws.com"},"Action":"lambda:InvokeFunction","Condition":{"StringEquals":{"AWS:SourceAccount":"210987654321"}}}`, false},
		{`{"Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},"Action":"lambda:InvokeFunction"}`, false},
		{`{"Effect":"Allow","Principal":{"Service":"cognito-idp.amazonaws.com"},"Action":"lambda:GetFunction"}`, false},
		{`{"Effect":"Deny","Principal":{"Service":"cognito-idp.amazonaws.com"},"Action":"lambda:InvokeFunction"}`, false},
	} {
		var st PolicyStatement
		if err := json.Unmarshal([]byte(c.statement), &st); err != nil {
			t.Fatal(err)
		}
		if got := st.LetsCognitoInvoke(pool, account); got != c.want {
			t.Errorf("%s: %v, want %v", c.statement, got, c.want)
		}
	}
}
