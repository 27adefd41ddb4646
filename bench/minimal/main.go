// Command minimal is the smallest aws-lambda-go function: it returns its
// input. The cold-start benchmark starts it the same way as the trigger, as
// the floor any Go Lambda pays.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(_ context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil })
}
