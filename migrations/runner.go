package migrations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

const (
	ledgerPK = "MIGRATION"
	lockSK   = "LOCK"
)

// Runner applies migrations to one table.
type Runner struct {
	api        API
	table      string
	migrations []Migration
	owner      string
	// LockTTL is how long a lock holds if its owner dies; LockWait is how
	// long to wait for another run's lock.
	LockTTL, LockWait time.Duration
}

// lockMargin is how much longer than the longest migration's Wait the
// lock holds: the time of the quick steps around it.
const lockMargin = 5 * time.Minute

// NewRunner returns a runner of migrations (normally All) on table. Its
// lock outlives the longest Wait of any migration by lockMargin, so a run
// that waits for an index build keeps the lock while it waits.
func NewRunner(api API, table string, migrations []Migration) *Runner {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	var longest time.Duration
	for _, m := range migrations {
		longest = max(longest, m.Wait)
	}
	return &Runner{api: api, table: table, migrations: migrations, owner: hex.EncodeToString(b),
		LockTTL: longest + lockMargin, LockWait: time.Minute}
}

// Status is one migration and whether it was applied.
type Status struct {
	Migration
	AppliedAt string // RFC 3339; empty while pending
}

// ErrLocked: another run held the lock for longer than LockWait.
var ErrLocked = errors.New("another migration run holds the lock")

// Up applies every pending migration in order and returns the IDs it applied.
// It is idempotent: a second run applies nothing.
func (r *Runner) Up(ctx context.Context) ([]string, error) {
	for _, m := range r.migrations {
		if m.Bootstrap {
			if err := m.Up(ctx, r.api, r.table); err != nil {
				return nil, fmt.Errorf("migration %s: %w", m.ID, err)
			}
		}
	}
	if err := r.lock(ctx); err != nil {
		return nil, err
	}
	defer r.unlock(context.WithoutCancel(ctx))
	done, err := r.applied(ctx)
	if err != nil {
		return nil, err
	}
	var ran []string
	for _, m := range r.migrations {
		if _, ok := done[m.ID]; ok {
			continue
		}
		if !m.Bootstrap {
			if err := m.Up(ctx, r.api, r.table); err != nil {
				return ran, fmt.Errorf("migration %s: %w", m.ID, err)
			}
		}
		if err := r.record(ctx, m); err != nil {
			return ran, err
		}
		ran = append(ran, m.ID)
	}
	return ran, nil
}

// Status lists every migration with when it was applied. A table that does
// not exist yet has every migration pending.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	done, err := r.applied(ctx)
	var notFound *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &notFound) {
		return nil, err
	}
	out := make([]Status, len(r.migrations))
	for i, m := range r.migrations {
		out[i] = Status{Migration: m, AppliedAt: done[m.ID]}
	}
	return out, nil
}

func (r *Runner) applied(ctx context.Context) (map[string]string, error) {
	done := make(map[string]string)
	p := dynamodb.NewQueryPaginator(r.api, &dynamodb.QueryInput{
		TableName:                 &r.table,
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: ledgerPK}},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read migration ledger: %w", err)
		}
		for _, it := range page.Items {
			sk := it["SK"].(*types.AttributeValueMemberS).Value
			if sk == lockSK {
				continue
			}
			at, _ := it["appliedAt"].(*types.AttributeValueMemberS)
			if at != nil {
				done[sk] = at.Value
			} else {
				done[sk] = "?"
			}
		}
	}
	return done, nil
}

// record writes m to the ledger; the condition makes a second record fail
// loudly rather than pass silently.
func (r *Runner) record(ctx context.Context, m Migration) error {
	_, err := r.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &r.table,
		Item: map[string]types.AttributeValue{
			"PK":          &types.AttributeValueMemberS{Value: ledgerPK},
			"SK":          &types.AttributeValueMemberS{Value: m.ID},
			"description": &types.AttributeValueMemberS{Value: m.Description},
			"appliedAt":   &types.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339)},
			"appliedBy":   &types.AttributeValueMemberS{Value: r.owner},
		},
		ConditionExpression: aws.String("attribute_not_exists(SK)"),
	})
	if err != nil {
		return fmt.Errorf("record migration %s: %w", m.ID, err)
	}
	return nil
}

func (r *Runner) lock(ctx context.Context) error {
	deadline := time.Now().Add(r.LockWait)
	for {
		now := time.Now()
		_, err := r.api.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &r.table,
			Item: map[string]types.AttributeValue{
				"PK":        &types.AttributeValueMemberS{Value: ledgerPK},
				"SK":        &types.AttributeValueMemberS{Value: lockSK},
				"owner":     &types.AttributeValueMemberS{Value: r.owner},
				"expiresAt": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(r.LockTTL).Unix(), 10)},
			},
			// Free, or left behind by a run that died.
			ConditionExpression:       aws.String("attribute_not_exists(PK) OR expiresAt < :now"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)}},
		})
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			return nil
		case !errors.As(err, &ccf):
			return fmt.Errorf("take migration lock: %w", err)
		case now.After(deadline):
			return ErrLocked
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *Runner) unlock(ctx context.Context) {
	_, _ = r.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &r.table,
		Key:                       map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: ledgerPK}, "SK": &types.AttributeValueMemberS{Value: lockSK}},
		ConditionExpression:       aws.String("#o = :me"),
		ExpressionAttributeNames:  map[string]string{"#o": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: r.owner}},
	})
}
