// Package dynamotest connects tests to the DynamoDB Local that `make test`
// starts, and gives each test a fresh, migrated table of its own.
package dynamotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pretoken/pretoken/internal/testenv"
	"github.com/pretoken/pretoken/migrations"
)

// EndpointVar names the variable that holds DynamoDB Local's URL.
const EndpointVar = "PRETOKEN_TEST_DYNAMODB"

// Endpoint returns DynamoDB Local's URL, or skips (fails under make test)
// the test when it is not running.
func Endpoint(t testing.TB) string {
	t.Helper()
	return testenv.Need(t, EndpointVar, "DynamoDB Local")
}

// Client returns a client for DynamoDB Local.
func Client(t testing.TB) *dynamodb.Client {
	t.Helper()
	return NewClient(Endpoint(t))
}

// NewClient returns a client for DynamoDB Local at endpoint.
func NewClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		// DynamoDB Local's error responses carry no checksum.
		DisableValidateResponseChecksum: true,
	})
}

// Table creates a uniquely named table with every migration applied.
func Table(t testing.TB, client *dynamodb.Client) string {
	t.Helper()
	name := NewName("pretoken-test")
	if _, err := migrations.NewRunner(client, name, migrations.All).Up(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", name, err)
	}
	return name
}

// NewName returns prefix with a random suffix.
func NewName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}
