package dynamo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// SetActiveTenant makes tenant the user's active tenant: the one the next
// tokens are for. It refuses, writing nothing, a tenant the user is not a
// member of (ErrNotMember). An application backend calls it when a user
// switches organization, then has the client refresh its tokens. The
// audit record is written in the same transaction.
func (s *Store) SetActiveTenant(ctx context.Context, sub, tenant, actor string) error {
	if sub == "" {
		return fmt.Errorf("empty user sub")
	}
	if err := checkTenant(tenant); err != nil {
		return err
	}
	cur, err := s.readUser(ctx, sub, activeSK)
	if err != nil {
		return err
	}
	old := cur.Tenant
	if old == tenant {
		// Already active: no write, so a retried command writes no second
		// audit record. The membership must still be there.
		if m, err := s.readUser(ctx, sub, userSK(tenant)); err != nil || m.Rev > 0 {
			return err
		}
	}
	item, err := attributevalue.MarshalMap(userItem{Tenant: tenant})
	if err != nil {
		return err
	}
	maps.Copy(item, key(userPK+sub, activeSK))
	audit, err := s.auditPut(AuditRecord{Time: time.Now(), Actor: actor, Action: "use tenant", Target: "user " + sub,
		OldVersion: old, NewVersion: tenant, Changes: []string{fmt.Sprintf("active tenant %q -> %q", old, tenant)}})
	if err != nil {
		return err
	}
	err = s.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{TableName: &s.table, Key: key(userPK+sub, userSK(tenant)),
			ConditionExpression: aws.String("attribute_exists(PK)")}},
		{Put: &types.Put{TableName: &s.table, Item: item}},
		audit,
	}})
	if isConditionFailure(err) {
		return fmt.Errorf("user %s: %w %s; nothing was changed", sub, ErrNotMember, tenant)
	}
	if errors.Is(err, ErrUnknownOutcome) {
		return fmt.Errorf("set the active tenant of user %s: %w", sub, unknownWith(err, "run pretoken user "+sub+" to see where it stands"))
	}
	if err != nil {
		return fmt.Errorf("set the active tenant: %w", err)
	}
	return nil
}

// Member is one member of a tenant and the member's roles there.
type Member struct {
	Sub   string   `dynamodbav:"TSK"`
	Roles []string `dynamodbav:"roles"`
}

// TenantMembers lists a tenant's members, by sub, from the byTenant index:
// a Query, never a Scan.
func (s *Store) TenantMembers(ctx context.Context, tenant string) ([]Member, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(tenantIndex),
		KeyConditionExpression:    aws.String("TPK = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberS{Value: tenantPK + tenant}},
	}
	items, err := s.queryAll(ctx, in, 0)
	if err != nil {
		return nil, fmt.Errorf("list tenant members: %w", err)
	}
	var out []Member
	if err := attributevalue.UnmarshalListOfMaps(items, &out); err != nil {
		return nil, fmt.Errorf("list tenant members: %w", err)
	}
	return out, nil
}

// TableAPI is what EnsureTenantIndex needs of the DynamoDB client.
type TableAPI interface {
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateTable(context.Context, *dynamodb.UpdateTableInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
}

// TenantIndexDefinition is the byTenant index: membership items by tenant
// (TPK = TENANT#<t>, TSK = sub) with their roles, so a tenant's members
// are one Query.
func TenantIndexDefinition() (types.GlobalSecondaryIndex, []types.AttributeDefinition) {
	return types.GlobalSecondaryIndex{
			IndexName: aws.String(tenantIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("TPK"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("TSK"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: []string{"roles"}},
		}, []types.AttributeDefinition{
			{AttributeName: aws.String("TPK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("TSK"), AttributeType: types.ScalarAttributeTypeS},
		}
}

// EnsureTenantIndex adds the byTenant index to table unless it is there,
// and waits until it is active. It is safe to run twice, and at once, and
// while the trigger serves tokens: DynamoDB builds an index online, and the
// trigger never reads it (only pretoken tenant members does).
func EnsureTenantIndex(ctx context.Context, api TableAPI, table string, wait time.Duration) error {
	status := func() (string, error) {
		out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
		if err != nil {
			return "", fmt.Errorf("describe table: %w", err)
		}
		for _, g := range out.Table.GlobalSecondaryIndexes {
			if aws.ToString(g.IndexName) == tenantIndex {
				return string(g.IndexStatus), nil
			}
		}
		return "", nil
	}
	st, err := status()
	if err != nil {
		return err
	}
	if st == "" {
		gsi, attrs := TenantIndexDefinition()
		_, err := api.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName:            &table,
			AttributeDefinitions: attrs,
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
				IndexName: gsi.IndexName, KeySchema: gsi.KeySchema, Projection: gsi.Projection}}},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // in use: another run is adding it
			return fmt.Errorf("add the %s index: %w", tenantIndex, err)
		}
	}
	deadline := time.Now().Add(wait)
	for {
		if st, err = status(); err != nil {
			return err
		}
		if st == string(types.IndexStatusActive) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %s index is %s after %v; run pretoken migrate again to wait for it", tenantIndex, st, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
