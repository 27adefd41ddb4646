package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

const auditPK = "AUDIT"

// AuditRecord is one change to the table, written in the same transaction
// as the change itself and never rewritten or deleted by pretoken.
type AuditRecord struct {
	Time   time.Time `dynamodbav:"time" json:"time"`
	Actor  string    `dynamodbav:"actor" json:"actor"`
	Action string    `dynamodbav:"action" json:"action"` // apply, assign, unassign
	// Target is "policy" for an apply, "user <sub>" for an assignment.
	Target string `dynamodbav:"target" json:"target"`
	// OldVersion and NewVersion are the policy's versions for an apply, and
	// the user's assignment revisions for an assignment.
	OldVersion string   `dynamodbav:"oldVersion" json:"oldVersion"`
	NewVersion string   `dynamodbav:"newVersion" json:"newVersion"`
	Changes    []string `dynamodbav:"changes" json:"changes"`
}

// auditPut is the transaction item that writes r. The sort key starts with
// the time, so a reverse Query lists the newest first.
func (s *Store) auditPut(r AuditRecord) (types.TransactWriteItem, error) {
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	for k, v := range key(auditPK, r.Time.UTC().Format("2006-01-02T15:04:05.000000000Z")+"#"+hex.EncodeToString(b)) {
		item[k] = v
	}
	return types.TransactWriteItem{Put: &types.Put{
		TableName:           &s.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(SK)"), // never overwrite a record
	}}, nil
}

// History returns audit records, newest first: at most limit (0: all) of
// those at or after since (zero: all).
func (s *Store) History(ctx context.Context, limit int, since time.Time) ([]AuditRecord, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: auditPK}},
		ScanIndexForward:          aws.Bool(false),
		ConsistentRead:            aws.Bool(true),
	}
	if !since.IsZero() {
		in.KeyConditionExpression = aws.String("PK = :pk AND SK >= :since")
		in.ExpressionAttributeValues[":since"] = &types.AttributeValueMemberS{Value: since.UTC().Format("2006-01-02T15:04:05.000000000Z")}
	}
	if limit > 0 {
		in.Limit = aws.Int32(int32(limit))
	}
	var out []AuditRecord
	p := dynamodb.NewQueryPaginator(s.api, in)
	for p.HasMorePages() && (limit <= 0 || len(out) < limit) {
		cctx, cancel := s.call(ctx)
		page, err := p.NextPage(cctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		for _, it := range page.Items {
			var r AuditRecord
			if err := attributevalue.UnmarshalMap(it, &r); err != nil {
				return nil, fmt.Errorf("read history: %w", err)
			}
			out = append(out, r)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
