// Package migrations creates and evolves pretoken's DynamoDB table: an
// ordered list of migrations compiled into the binary, and a runner that
// records each applied migration in the table itself and takes a lock (a
// conditional write) so that two concurrent runs never apply one twice.
package migrations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// API is the part of the DynamoDB client migrations use.
type API interface {
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	UpdateTable(context.Context, *dynamodb.UpdateTableInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Migration is one step. IDs sort in the order the steps run.
type Migration struct {
	ID          string
	Description string
	// Bootstrap steps run before the lock is taken, because the lock lives
	// in the table they create; they must be safe to run concurrently and
	// more than once. Only the first migration is one.
	Bootstrap bool
	// Wait is the longest Up may wait for DynamoDB (an index build, say);
	// the lock outlives the longest Wait, so no second run starts while
	// the first still waits.
	Wait time.Duration
	Up   func(ctx context.Context, api API, table string) error
}

// IndexWait is how long migration 0003 waits for DynamoDB to build the
// byTenant index.
const IndexWait = 30 * time.Minute

// All is every migration, in order. Append; never edit or reorder a
// released one.
var All = []Migration{
	{ID: "0001", Description: "create the table: string keys PK and SK, on-demand billing", Bootstrap: true, Up: createTable},
	{ID: "0002", Description: "seed the policy version item: version 0, the empty policy", Up: seedVersion},
	{ID: "0003", Description: "add the byTenant index: a tenant's members in one Query", Wait: IndexWait, Up: tenantIndex},
}

// tenantIndex adds the index the store defines. DynamoDB builds it online,
// so it is safe while the trigger serves tokens; it is safe to run twice,
// and a table that CloudFormation made with the index already has it.
func tenantIndex(ctx context.Context, api API, table string) error {
	return dynamo.EnsureTenantIndex(ctx, api, table, IndexWait)
}

func createTable(ctx context.Context, api API, table string) error {
	_, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	var notFound *types.ResourceNotFoundException
	switch {
	case err == nil:
		// Made by CloudFormation or an earlier run.
	case errors.As(err, &notFound):
		_, err = api.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:   &table,
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String("SK"), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange},
			},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // in use: a concurrent run made it
			return fmt.Errorf("create table: %w", err)
		}
	default:
		return fmt.Errorf("describe table: %w", err)
	}
	w := dynamodb.NewTableExistsWaiter(api)
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: &table}, 2*time.Minute); err != nil {
		return fmt.Errorf("wait for table: %w", err)
	}
	return nil
}

// seedVersion asks the store, which owns the table's layout, to write it.
func seedVersion(ctx context.Context, api API, table string) error {
	return dynamo.SeedVersion(ctx, api, table)
}
