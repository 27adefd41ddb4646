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
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The fence. A generation's marker META/GEN#<g> is written "pending" before
// any of its items. The switch that points META/VERSION at g carries a
// ConditionCheck that the marker is still pending; abandoning g is one
// transaction that moves the marker to "dropped" and checks that
// META/VERSION does not name g. Whichever of the two lands first wins, and
// the other can never land after it: a switch held by the network for
// minutes fails on arrival once its generation was abandoned, and an
// abandon fails once the switch landed. Items are deleted only from a
// generation whose marker is dropped, so no clean-up, however late, ever
// deletes what the version item names, or what it could still come to name.
const (
	statePending = "pending"
	stateDropped = "dropped"
)

// marker is META/GEN#<g>.
type marker struct {
	Gen   string `dynamodbav:"-"`
	State string `dynamodbav:"state,omitempty"` // "" in markers written before the fence: pending
	// CreatedAt is when the apply that owns the generation began.
	CreatedAt string `dynamodbav:"createdAt,omitempty"`
	// DroppedAt is when the generation was abandoned (its items may be
	// deleted); ExpiredAt when its tombstone was first found empty after
	// tombstoneGrace: its partition is read one grace period longer.
	DroppedAt string `dynamodbav:"droppedAt,omitempty"`
	ExpiredAt string `dynamodbav:"expiredAt,omitempty"`
	// Audit is the sort key of the audit record the switch would write, and
	// Parts how many part items the apply writes for it before the switch:
	// the parts of an abandoned apply are removed with its items.
	Audit string `dynamodbav:"audit,omitempty"`
	Parts int    `dynamodbav:"parts,omitempty"`
}

func (m marker) dropped() bool { return m.State == stateDropped || m.DroppedAt != "" }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func (s *Store) timeNow() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (s *Store) stamp() string { return s.timeNow().UTC().Format(time.RFC3339Nano) }

func (m marker) item() (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(m)
	if err != nil {
		return nil, err
	}
	maps.Copy(item, key(metaPK, genPrefix+m.Gen))
	return item, nil
}

func decodeMarker(item map[string]types.AttributeValue) (marker, error) {
	var m marker
	if err := attributevalue.UnmarshalMap(item, &m); err != nil {
		return m, err
	}
	sk, _ := item["SK"].(*types.AttributeValueMemberS)
	if sk == nil || len(sk.Value) <= len(genPrefix) {
		return m, errors.New("generation marker without a generation")
	}
	m.Gen = sk.Value[len(genPrefix):]
	return m, nil
}

// putMarker writes m as pending: the first write of an apply, so a crash at
// any later point leaves a generation that clean-up finds.
func (s *Store) putMarker(ctx context.Context, m marker) error {
	m.State = statePending
	item, err := m.item()
	if err != nil {
		return err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err = s.api.PutItem(cctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item,
		ConditionExpression: aws.String("attribute_not_exists(PK)")}) // a late copy of this write never revives an abandoned marker
	if err != nil {
		return fmt.Errorf("write generation marker: %w", err)
	}
	return nil
}

// markerCheck is the switch's part of the fence: the generation's marker
// is still pending.
func (s *Store) markerCheck(gen string) types.TransactWriteItem {
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName:                 &s.table,
		Key:                       key(metaPK, genPrefix+gen),
		ConditionExpression:       aws.String("#s = :pending"),
		ExpressionAttributeNames:  map[string]string{"#s": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pending": &types.AttributeValueMemberS{Value: statePending}},
	}}
}

// errLive: the generation is the one the version item names; nothing of it
// may be removed.
var errLive = errors.New("the generation is the live policy")

// abandon moves m's marker out of pending, if the version item does not
// name the generation, in one transaction; after it no switch to the
// generation can land. It returns errLive if the version item names it
// (the switch landed first), nil if it is abandoned now or was already.
// Any other error leaves the outcome unknown.
func (s *Store) abandon(ctx context.Context, mp *marker) error {
	if mp.dropped() {
		return nil
	}
	m := *mp
	m.State, m.DroppedAt = stateDropped, s.stamp()
	defer func() {
		if mp.State == stateDropped {
			mp.DroppedAt = m.DroppedAt
		}
	}()
	item, err := m.item()
	if err != nil {
		return err
	}
	in := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.table, Item: item,
			ConditionExpression: aws.String("attribute_not_exists(droppedAt)")}}, // an earlier abandon's time stands
		{ConditionCheck: &types.ConditionCheck{
			TableName:                 &s.table,
			Key:                       key(metaPK, versionSK),
			ConditionExpression:       aws.String("#g <> :g"),
			ExpressionAttributeNames:  map[string]string{"#g": "generation"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":g": &types.AttributeValueMemberS{Value: m.Gen}},
		}},
	}}
	for attempt := 0; ; attempt++ {
		cctx, cancel := s.call(ctx)
		_, err = s.api.TransactWriteItems(cctx, in)
		cancel()
		switch {
		case err == nil:
			mp.State = stateDropped
			return nil
		case reasonAt(err, 1) == "ConditionalCheckFailed":
			return errLive
		case reasonAt(err, 0) == "ConditionalCheckFailed":
			mp.State = stateDropped // dropped already
			return nil
		case isTransactionConflict(err) && attempt < 4:
			// The switch, or another clean-up, is on the same items now:
			// its outcome decides ours; ask again.
			select {
			case <-ctx.Done():
				return fmt.Errorf("abandon generation %s: %w", m.Gen, ctx.Err())
			case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
			}
		default:
			return fmt.Errorf("abandon generation %s: %w", m.Gen, err)
		}
	}
}

// reasonAt is the cancellation reason code of a transaction's i-th item.
func reasonAt(err error, i int) string {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && i < len(tce.CancellationReasons) {
		return aws.ToString(tce.CancellationReasons[i].Code)
	}
	return ""
}

// transact sends a transaction that must land at most once (an assignment
// and its audit record) under a ClientRequestToken. When no answer comes
// back it sends the same request again, same token: DynamoDB runs a token
// once within ten minutes and answers a repeat of a completed one with
// success without running it again, so the answer to the repeat settles
// both, and a repeat never writes a second audit record. If the repeat gets
// no answer either, the error wraps ErrUnknownOutcome.
func (s *Store) transact(ctx context.Context, in *dynamodb.TransactWriteItemsInput) error {
	if in.ClientRequestToken == nil {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		in.ClientRequestToken = aws.String(hex.EncodeToString(b))
	}
	cctx, cancel := s.call(ctx)
	_, err := s.api.TransactWriteItems(cctx, in)
	cancel()
	if err == nil || isConditionFailure(err) || isTransactionConflict(err) || isRefused(err) {
		return err
	}
	sctx, cancel := s.own(ctx)
	defer cancel()
	_, rerr := s.api.TransactWriteItems(sctx, in)
	if rerr == nil || isConditionFailure(rerr) || isRefused(rerr) {
		return rerr
	}
	return &unknownError{first: err, again: rerr}
}

// unknownError is a write whose outcome is unknown; callers put their
// advice before its details, which end in the SDK's words.
type unknownError struct{ first, again error }

func (e *unknownError) Error() string {
	return fmt.Sprintf("%v (the write got no answer: %v; nor did the same request sent again: %v)", ErrUnknownOutcome, e.first, e.again)
}

func (e *unknownError) Is(target error) bool { return target == ErrUnknownOutcome }

// details is the error's part after ErrUnknownOutcome's words.
func (e *unknownError) details() string {
	return strings.TrimPrefix(e.Error(), ErrUnknownOutcome.Error()+" ")
}

// unknownWith is err, an unknownError, with advice before its details.
func unknownWith(err error, advice string) error {
	var u *unknownError
	if !errors.As(err, &u) {
		return err
	}
	return fmt.Errorf("%w; %s %s", ErrUnknownOutcome, advice, u.details())
}
