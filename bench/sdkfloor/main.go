// Command sdkfloor is the floor of any function that serves tokens from a
// DynamoDB table with the SDK's service/dynamodb: the minimal aws-lambda-go
// function (it returns its input) that, at init, builds the client from
// Lambda's variables as the trigger does and reads one item, the policy's
// version item, with a consistent GetItem. It reads nothing else and
// decodes nothing of pretoken's. The cold-start benchmark starts it beside
// the trigger from the table: the trigger cannot start in less CPU than it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func main() {
	// The client as cmd/trigger's lambdaClient builds it.
	o := dynamodb.Options{
		Region:      os.Getenv("AWS_REGION"),
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))),
	}
	if u := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"); u != "" {
		o.BaseEndpoint = aws.String(u)
		o.DisableValidateResponseChecksum = true
	}
	out, err := dynamodb.New(o).GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(os.Getenv("PRETOKEN_TABLE")),
		ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"PK": &types.AttributeValueMemberS{Value: "META"},
			"SK": &types.AttributeValueMemberS{Value: "VERSION"},
		},
	})
	if err == nil && out.Item == nil {
		err = fmt.Errorf("no version item in table %s", os.Getenv("PRETOKEN_TABLE"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdkfloor:", err)
		os.Exit(1) // the benchmark sees a refused start and fails
	}
	lambda.Start(func(_ context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil })
}
