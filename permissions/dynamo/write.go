package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pretoken/pretoken/permissions"
)

// ApplyResult says what an apply did.
type ApplyResult struct {
	OldVersion, NewVersion string
	Changes                []permissions.Change
	// Applied is false when the stored policy already equalled the new one:
	// nothing was written and the version did not move.
	Applied bool
	// Repaired is true when the live policy was damaged (items missing):
	// Changes are then against an empty policy, and the apply replaced it whole.
	Repaired bool
	// Leftovers counts items of abandoned generations that the apply removed.
	Leftovers int
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// ExpectVersion, when set, refuses to apply over any other stored version.
	ExpectVersion string
	// Actor is who applies, for the audit record.
	Actor string
	// DryRun stops after working out the changes: nothing is written.
	DryRun bool
}

// Apply makes the stored policy equal p. p is validated first; an invalid
// policy, or one whose compiled snapshot is too large to load
// (permissions.ErrSnapshotTooLarge), writes nothing. The new policy's items are written under a new
// generation, then one conditional write of the version item switches
// readers to it, so no reader ever sees part of it. If the stored version
// changed meanwhile, Apply removes what it wrote and returns ErrConflict.
//
// A switch whose outcome is unknown (a timeout after the request may have
// reached DynamoDB) is settled by reading the version item again: if it
// names the new generation, the apply succeeded; only if it does not are
// the new items removed. No clean-up ever removes the generation that the
// version item names. A damaged live policy (ErrDamaged) is replaced whole.
// Every apply, even one with no changes, removes what abandoned applies
// left behind.
func (s *Store) Apply(ctx context.Context, p *permissions.Policy, opts ApplyOptions) (ApplyResult, error) {
	if err := permissions.Validate(p); err != nil {
		return ApplyResult{}, err
	}
	compiled, err := compiledSnapshot(p)
	if err != nil {
		return ApplyResult{}, err
	}
	cur, err := s.readVersion(ctx)
	if err != nil {
		return ApplyResult{}, err
	}
	res := ApplyResult{OldVersion: strconv.FormatInt(cur.Version, 10)}
	if opts.ExpectVersion != "" && opts.ExpectVersion != res.OldVersion {
		return res, fmt.Errorf("%w (it is at version %s, not the expected %s)", ErrConflict, res.OldVersion, opts.ExpectVersion)
	}
	old, err := s.generationPolicy(ctx, cur)
	if errors.Is(err, errReplaced) {
		switch derr := s.checkDamage(ctx, cur); {
		case errors.Is(derr, ErrDamaged):
			old, res.Repaired = &permissions.Policy{}, true
		case derr != nil:
			return res, derr
		default:
			return res, fmt.Errorf("%w (another apply replaced version %d while it was read)", ErrConflict, cur.Version)
		}
	} else if err != nil {
		return res, fmt.Errorf("read the stored policy: %w", err)
	}
	res.Changes = permissions.Diff(old, p)
	res.NewVersion = res.OldVersion
	if opts.DryRun {
		return res, nil
	}
	// A policy that an older pretoken applied is written again, with its snapshot.
	if len(res.Changes) == 0 && !res.Repaired && cur.Snapshot > 0 && cur.SnapshotFormat == permissions.SnapshotFormat {
		res.Leftovers, err = s.dropOldGenerations(ctx, cur.Generation)
		return res, err
	}

	next := cur.Version + 1
	gen := newGeneration(next)
	newItems, err := encodePolicy(p, gen)
	if err != nil {
		return res, err
	}
	chunks := snapshotItems(compiled, gen)
	newItems = append(newItems, chunks...)
	// The marker comes first, so a crash at any later point leaves a
	// generation that the next apply finds and removes.
	if err := s.putMarker(ctx, gen); err != nil {
		return res, err
	}
	abandon := func(err error) (ApplyResult, error) {
		return res, errors.Join(err, s.dropGeneration(context.WithoutCancel(ctx), gen))
	}
	if err := s.batchWrite(ctx, puts(newItems)); err != nil {
		return abandon(err)
	}
	audit := AuditRecord{Time: time.Now(), Actor: opts.Actor, Action: "apply", Target: "policy",
		OldVersion: res.OldVersion, NewVersion: strconv.FormatInt(next, 10)}
	if res.Repaired {
		audit.Action = "apply (repair)"
	}
	for _, c := range res.Changes {
		audit.Changes = append(audit.Changes, c.String())
	}
	record, parts, err := s.auditItems(audit)
	if err != nil {
		return abandon(err)
	}
	if err := s.batchWrite(ctx, puts(parts)); err != nil {
		return abandon(err)
	}
	inline := inlineItem{Version: next}
	if b, err := json.Marshal(p); err == nil && s.InlineLimit >= 0 && len(b) <= s.InlineLimit {
		inline.Policy = b
	}
	err = s.flip(ctx, cur, versionItem{Version: next, Generation: gen, Items: len(newItems),
		Snapshot: len(chunks), SnapshotFormat: permissions.SnapshotFormat}, inline, record)
	if err != nil && !errors.Is(err, ErrConflict) {
		// A timeout is an unknown outcome: the switch may have landed.
		landed, rerr := s.switchLanded(ctx, gen)
		switch {
		case rerr != nil:
			return res, fmt.Errorf("the switch to version %d has an unknown outcome (%w), and the version item could not be read again (%v): nothing was removed; run pretoken plan to see where the table stands, then apply again", next, err, rerr)
		case landed:
			err = nil
		}
	}
	if err != nil {
		return abandon(err)
	}
	res.NewVersion, res.Applied = strconv.FormatInt(next, 10), true
	// Best effort: what is left is found by the next apply.
	res.Leftovers, _ = s.dropOldGenerations(ctx, gen)
	return res, nil
}

// switchLanded reads the version item again, on a context of its own (the
// caller's may be what timed out), and reports whether it names gen.
func (s *Store) switchLanded(ctx context.Context, gen string) (bool, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.CallTimeout)
	defer cancel()
	v, err := s.readVersion(cctx)
	if err != nil {
		return false, err
	}
	return v.Generation == gen, nil
}

func (s *Store) putMarker(ctx context.Context, gen string) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	item := key(metaPK, genPrefix+gen)
	item["createdAt"] = &types.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339)}
	if _, err := s.api.PutItem(cctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("write generation marker: %w", err)
	}
	return nil
}

// flip points the version item at the new generation if it still holds
// cur, and writes the inline copy and the audit record in the same
// transaction.
func (s *Store) flip(ctx context.Context, cur, next versionItem, inline inlineItem, auditPut types.TransactWriteItem) error {
	next.UpdatedAt = time.Now().UTC().Format(time.RFC3339Nano)
	item, err := attributevalue.MarshalMap(next)
	if err != nil {
		return err
	}
	for k, v := range key(metaPK, versionSK) {
		item[k] = v
	}
	inlineAV, err := attributevalue.MarshalMap(inline)
	if err != nil {
		return err
	}
	for k, v := range key(metaPK, inlineSK) {
		inlineAV[k] = v
	}
	inlinePut := types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: inlineAV}}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err = s.api.TransactWriteItems(cctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{auditPut, inlinePut, {
		Put: &types.Put{
			TableName:                &s.table,
			Item:                     item,
			ConditionExpression:      aws.String("#v = :v AND #g = :g"),
			ExpressionAttributeNames: map[string]string{"#v": "version", "#g": "generation"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":v": &types.AttributeValueMemberN{Value: strconv.FormatInt(cur.Version, 10)},
				":g": &types.AttributeValueMemberS{Value: cur.Generation},
			},
		},
	}}})
	if isConditionFailure(err) || isTransactionConflict(err) {
		return fmt.Errorf("%w (another apply switched it from version %d first)", ErrConflict, cur.Version)
	}
	if err != nil {
		return fmt.Errorf("switch to the new policy version: %w", err)
	}
	return nil
}

// isConditionFailure reports a write refused by its condition.
func isConditionFailure(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return cancelledFor(err, "ConditionalCheckFailed") || errors.As(err, &ccf)
}

// cancelledFor reports a cancelled transaction with code among its reasons.
func cancelledFor(err error, code string) bool {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == code {
				return true
			}
		}
	}
	return false
}

func puts(items []map[string]types.AttributeValue) []types.WriteRequest {
	reqs := make([]types.WriteRequest, len(items))
	for i, it := range items {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it}}
	}
	return reqs
}

// batchWrite writes reqs 25 at a time, retrying unprocessed ones.
func (s *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	for len(reqs) > 0 {
		n := min(len(reqs), 25)
		batch := reqs[:n]
		reqs = reqs[n:]
		for attempt := 0; len(batch) > 0; attempt++ {
			if attempt > 0 {
				if attempt > 8 {
					return errors.New("write policy items: DynamoDB kept returning unprocessed items")
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Duration(attempt*attempt) * 20 * time.Millisecond):
				}
			}
			cctx, cancel := s.call(ctx)
			out, err := s.api.BatchWriteItem(cctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{s.table: batch}})
			cancel()
			if err != nil {
				return fmt.Errorf("write policy items: %w", err)
			}
			batch = out.UnprocessedItems[s.table]
		}
	}
	return nil
}

// tombstoneGrace is how long a dropped generation's marker is kept (as a
// tombstone) after its items were deleted. A write of the abandoned apply
// that was still on its way (a batch whose caller timed out) lands within
// the caller's own deadline and retries, far below this; every apply looks
// into each tombstoned generation again and removes what it finds, so items
// that land late are found by what exists under the generation.
const tombstoneGrace = 15 * time.Minute

// dropGeneration deletes a generation's items and marks its marker as a
// tombstone. It refuses to touch the generation the version item names.
func (s *Store) dropGeneration(ctx context.Context, gen string) error {
	live, err := s.readVersion(ctx)
	if err != nil {
		return fmt.Errorf("remove generation %s: %w", gen, err)
	}
	if live.Generation == gen {
		return fmt.Errorf("refusing to remove generation %s: it is the live policy (version %d)", gen, live.Version)
	}
	_, err = s.sweep(ctx, gen, nil)
	return err
}

// sweep deletes whatever items generation gen has and keeps its marker as a
// tombstone; once the tombstone is older than tombstoneGrace and nothing was
// found, the marker goes too. It returns how many items it deleted.
func (s *Store) sweep(ctx context.Context, gen string, marker map[string]types.AttributeValue) (int, error) {
	items, err := s.queryKeys(ctx, policyPK+gen, "")
	if err != nil {
		return 0, err
	}
	reqs := make([]types.WriteRequest, 0, len(items))
	for _, k := range items {
		reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}})
	}
	if err := s.batchWrite(ctx, reqs); err != nil {
		return 0, err
	}
	var dropped time.Time
	if a, ok := marker["droppedAt"].(*types.AttributeValueMemberS); ok {
		dropped, _ = time.Parse(time.RFC3339, a.Value)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	if len(items) == 0 && !dropped.IsZero() && time.Since(dropped) > tombstoneGrace {
		_, err = s.api.BatchWriteItem(cctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			s.table: {{DeleteRequest: &types.DeleteRequest{Key: key(metaPK, genPrefix+gen)}}}}})
		return 0, err
	}
	if dropped.IsZero() {
		item := key(metaPK, genPrefix+gen)
		item["droppedAt"] = &types.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339)}
		if _, err := s.api.PutItem(cctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
			return len(items), fmt.Errorf("mark generation %s removed: %w", gen, err)
		}
	}
	return len(items), nil
}

// dropOldGenerations removes every generation numbered at or below keep's
// version except keep itself and the live one (superseded ones, ones whose
// apply lost or crashed) and looks into every tombstone again, whatever its
// number, for items that landed after their apply gave up. Newer unmarked
// ones may belong to an apply in progress and stay. It returns how
// many items it removed from generations already dropped before: leftovers.
func (s *Store) dropOldGenerations(ctx context.Context, keep string) (int, error) {
	markers, err := s.queryKeysWith(ctx, metaPK, genPrefix, "PK, SK, droppedAt")
	if err != nil {
		return 0, err
	}
	live, err := s.readVersion(ctx)
	if err != nil {
		return 0, err
	}
	keepVersion := generationVersion(keep)
	leftovers := 0
	var errs []error
	for _, m := range markers {
		gen := m["SK"].(*types.AttributeValueMemberS).Value[len(genPrefix):]
		_, tomb := m["droppedAt"] // abandoned, whatever its number
		if gen == keep || gen == live.Generation || !tomb && generationVersion(gen) > keepVersion {
			continue
		}
		n, err := s.sweep(ctx, gen, m)
		if tomb {
			leftovers += n
		}
		errs = append(errs, err)
	}
	return leftovers, errors.Join(errs...)
}

// generationVersion is the version number a generation was written for.
func generationVersion(gen string) int64 {
	n, _, _ := strings.Cut(gen, "-")
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// queryKeys returns the keys of the items under pk whose SK starts with prefix.
func (s *Store) queryKeys(ctx context.Context, pk, prefix string) ([]map[string]types.AttributeValue, error) {
	return s.queryKeysWith(ctx, pk, prefix, "PK, SK")
}

// queryKeysWith is queryKeys with the attributes to read.
func (s *Store) queryKeysWith(ctx context.Context, pk, prefix, projection string) ([]map[string]types.AttributeValue, error) {
	in := s.partition(pk, true)
	in.ProjectionExpression = aws.String(projection)
	if prefix != "" {
		in.KeyConditionExpression = aws.String("PK = :pk AND begins_with(SK, :p)")
		in.ExpressionAttributeValues[":p"] = &types.AttributeValueMemberS{Value: prefix}
	}
	keys, err := s.queryAll(ctx, in, 0)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", pk, err)
	}
	return keys, nil
}
