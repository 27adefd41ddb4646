package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

const (
	auditPK     = "AUDIT"
	auditPartPK = "AUDIT#" // + the record's SK: the full change list of a long one
	partSK      = "PART#"
)

// Bounds that keep an audit record inside DynamoDB's 400 KB item limit,
// whatever the size of the change: the record, written in the switch
// transaction, holds at most recordChangeBytes of changes; the full list
// goes into part items of at most partBytes each, written before it.
const (
	recordChangeBytes = 32 << 10
	partBytes         = 300 << 10
	pieceBytes        = 16 << 10 // one change longer than this is stored in pieces
)

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
	// ChangeCount is the number of changes; when Changes in the record is
	// only the first of them, History reads the rest from the record's parts.
	ChangeCount int `dynamodbav:"changeCount" json:"changeCount"`
	// Parts is how many part items hold the full change list (0: the record holds it all).
	Parts int `dynamodbav:"parts,omitempty" json:"-"`
	// ID is the record's sort key.
	ID string `dynamodbav:"SK" json:"id"`
}

// auditPut is the transaction item that writes r, for a change whose list
// is short (an assignment).
func (s *Store) auditPut(r AuditRecord) (types.TransactWriteItem, error) {
	put, parts, err := s.auditItems(r)
	if err == nil && len(parts) > 0 {
		err = errors.New("audit record: change list too long for one item")
	}
	return put, err
}

// auditItems returns the transaction item that writes r and, when r's
// change list is longer than a record holds, the part items with the whole
// list, to be written first. The sort key starts with the time, so a
// reverse Query lists the newest first.
func (s *Store) auditItems(r AuditRecord) (types.TransactWriteItem, []map[string]types.AttributeValue, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	r.ID = r.Time.UTC().Format("2006-01-02T15:04:05.000000000Z") + "#" + hex.EncodeToString(b)
	r.ChangeCount = len(r.Changes)
	r.Changes = splitLong(r.Changes, pieceBytes)
	var parts []map[string]types.AttributeValue
	if size(r.Changes) > recordChangeBytes {
		for i, chunk := range chunks(r.Changes, partBytes) {
			item := key(auditPartPK+r.ID, fmt.Sprintf("%s%05d", partSK, i))
			l := make([]types.AttributeValue, len(chunk))
			for j, c := range chunk {
				l[j] = &types.AttributeValueMemberS{Value: c}
			}
			item["changes"] = &types.AttributeValueMemberL{Value: l}
			parts = append(parts, item)
		}
		r.Changes = chunks(r.Changes, recordChangeBytes)[0]
		r.Parts = len(parts)
	}
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return types.TransactWriteItem{}, nil, err
	}
	maps.Copy(item, key(auditPK, r.ID))
	return types.TransactWriteItem{Put: &types.Put{
		TableName:           &s.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(SK)"), // never overwrite a record
	}}, parts, nil
}

// splitLong cuts every entry longer than max bytes into pieces at blanks
// (or, failing that, at max); the later pieces start with "... ".
func splitLong(list []string, max int) []string {
	var out []string
	for _, s := range list {
		prefix := ""
		for len(prefix)+len(s) > max {
			room := max - len(prefix)
			cut := strings.LastIndexByte(s[:room], ' ')
			if cut <= 0 {
				cut = room
			}
			out = append(out, prefix+s[:cut])
			s, prefix = s[cut:], "... "
		}
		out = append(out, prefix+s)
	}
	return out
}

func size(list []string) int {
	n := 0
	for _, s := range list {
		n += len(s) + 3
	}
	return n
}

// chunks splits list into runs of at most max bytes (a longer entry stands alone).
func chunks(list []string, max int) [][]string {
	var out [][]string
	start, n := 0, 0
	for i, s := range list {
		if i > start && n+len(s)+3 > max {
			out = append(out, list[start:i])
			start, n = i, 0
		}
		n += len(s) + 3
	}
	return append(out, list[start:])
}

// History returns audit records, newest first: at most limit (0: all) of
// those at or after since (zero: all).
func (s *Store) History(ctx context.Context, limit int, since time.Time) ([]AuditRecord, error) {
	in := s.partition(auditPK)
	in.ScanIndexForward = aws.Bool(false)
	if !since.IsZero() {
		in.KeyConditionExpression = aws.String("PK = :pk AND SK >= :since")
		in.ExpressionAttributeValues[":since"] = &types.AttributeValueMemberS{Value: since.UTC().Format("2006-01-02T15:04:05.000000000Z")}
	}
	if limit > 0 {
		in.Limit = aws.Int32(int32(limit))
	}
	items, err := s.queryAll(ctx, in, limit)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	var out []AuditRecord
	if err := attributevalue.UnmarshalListOfMaps(items, &out); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	for i, r := range out {
		if r.Parts == 0 {
			continue
		}
		full, err := s.auditParts(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		out[i].Changes = full
	}
	return out, nil
}

// auditParts reads the full change list of a long record from its parts.
func (s *Store) auditParts(ctx context.Context, id string) ([]string, error) {
	items, err := s.queryAll(ctx, s.partition(auditPartPK+id), 0)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	var parts []struct {
		Changes []string `dynamodbav:"changes"`
	}
	if err := attributevalue.UnmarshalListOfMaps(items, &parts); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	var out []string
	for _, p := range parts {
		out = append(out, p.Changes...)
	}
	return out, nil
}
