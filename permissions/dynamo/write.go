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
	"github.com/aws/smithy-go"

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
// The switch is fenced (fence.go): it lands only while the generation's
// marker is pending. A switch whose outcome is unknown (a timeout after the
// request may have reached DynamoDB) is settled by abandoning the
// generation, which fails if the switch landed first (then the apply
// succeeded) and otherwise guarantees that it never lands; only then are
// the new items removed. If neither settles it, nothing is removed and the
// error wraps ErrUnknownOutcome. No clean-up ever removes the generation
// that the version item names. A damaged live policy (ErrDamaged) is
// replaced whole. Every apply, even one with no changes, removes what
// abandoned applies left behind.
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
	// A policy that an older pretoken applied is written again, with its
	// snapshot and, when that is one chunk, the snapshot's copy; so is one
	// whose copy is missing or not the bytes compiled now.
	if len(res.Changes) == 0 && !res.Repaired && cur.Snapshot > 0 && cur.SnapshotFormat == permissions.SnapshotFormat {
		current, err := s.copyCurrent(ctx, cur, compiled)
		if err != nil {
			return res, err
		}
		if current {
			res.Leftovers, err = s.dropOldGenerations(ctx, cur.Generation)
			return res, err
		}
	}

	next := cur.Version + 1
	gen := newGeneration(next)
	newItems, err := encodePolicy(p, gen)
	if err != nil {
		return res, err
	}
	chunks := snapshotItems(compiled, gen)
	newItems = append(newItems, chunks...)
	if err := checkSizes(newItems); err != nil {
		return res, err
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
		return res, err
	}
	// The marker comes first, so a crash at any later point leaves a
	// generation that the next apply finds and removes.
	m := marker{Gen: gen, CreatedAt: s.stamp(), Audit: auditID(record), Parts: len(parts)}
	if err := s.putMarker(ctx, m); err != nil {
		return res, err
	}
	abandon := func(err error) (ApplyResult, error) {
		cctx := context.WithoutCancel(ctx)
		switch aerr := s.abandon(cctx, &m); {
		case aerr == nil:
			_, serr := s.sweep(cctx, m)
			return res, errors.Join(err, serr)
		case errors.Is(aerr, errLive):
			return res, errors.Join(err, fmt.Errorf("refusing to remove generation %s: it is the live policy", gen))
		default:
			return res, errors.Join(err, aerr)
		}
	}
	if err := s.batchWrite(ctx, puts(newItems), "write policy items"); err != nil {
		return abandon(err)
	}
	if err := s.batchWrite(ctx, puts(parts), "write the audit record's parts"); err != nil {
		return abandon(err)
	}
	inline := inlineItem{Version: next}
	if b, err := json.Marshal(p); err == nil && s.InlineLimit >= 0 && len(b) <= s.InlineLimit {
		inline.Policy = b
	}
	err = s.flip(ctx, cur, versionItem{Version: next, Generation: gen, Items: len(newItems),
		Snapshot: len(chunks), SnapshotFormat: permissions.SnapshotFormat}, inline, record, compiled)
	if errors.Is(err, errUnsettled) {
		// A timeout is an unknown outcome: the switch may have landed, or
		// be on its way. Abandoning settles it.
		sctx, cancel := s.own(ctx)
		aerr := s.abandon(sctx, &m)
		cancel()
		switch {
		case errors.Is(aerr, errLive):
			err = nil
		case aerr != nil:
			// The advice comes first: the details end in the SDK's words.
			return res, fmt.Errorf("%w of the switch to version %d; nothing was removed; run pretoken plan -f FILE to see where the table stands (the switch got no answer: %s; nor did abandoning its generation: %v)",
				ErrUnknownOutcome, next, strings.TrimPrefix(err.Error(), errUnsettled.Error()+": "), aerr)
		default:
			// Abandoned: the switch can never land now.
			_, serr := s.sweep(context.WithoutCancel(ctx), m)
			return res, errors.Join(fmt.Errorf("the switch to version %d got no answer (%v); the new generation was abandoned, so it can never land: nothing was applied; apply again", next, strings.TrimPrefix(err.Error(), errUnsettled.Error()+": ")), serr)
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

// own is a context for settling an outcome: the caller's may be what timed
// out, so it gets a deadline of its own.
func (s *Store) own(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.CallTimeout)
}

// auditID is the sort key of the audit record that put writes.
func auditID(put types.TransactWriteItem) string {
	if put.Put == nil {
		return ""
	}
	sk, _ := put.Put.Item["SK"].(*types.AttributeValueMemberS)
	if sk == nil {
		return ""
	}
	return sk.Value
}

// errUnsettled wraps a switch whose request got no answer: it may have
// landed, or land later.
var errUnsettled = errors.New("the switch has an unknown outcome")

// flip points the version item at the new generation if it still holds
// cur and the generation's marker is still pending (the fence), and writes
// the inline copy, the copy of the compiled snapshot (copyPut) and the
// audit record in the same transaction. Its
// ClientRequestToken is the generation, so a retry of it is idempotent.
// A refused switch is ErrConflict, said as what happened; a switch without
// an answer wraps errUnsettled.
func (s *Store) flip(ctx context.Context, cur, next versionItem, inline inlineItem, auditPut types.TransactWriteItem, compiled []byte) error {
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
	_, err = s.api.TransactWriteItems(cctx, &dynamodb.TransactWriteItemsInput{
		ClientRequestToken: aws.String(next.Generation), // at most 36 characters: a version number, '-' and 12 hex digits
		TransactItems: []types.TransactWriteItem{auditPut, inlinePut, {
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
		}, s.markerCheck(next.Generation), s.copyPut(next, compiled)}})
	switch {
	case err == nil:
		return nil
	case reasonAt(err, 2) == "ConditionalCheckFailed":
		return fmt.Errorf("%w (another apply switched it from version %d first)", ErrConflict, cur.Version)
	case reasonAt(err, 3) == "ConditionalCheckFailed":
		return fmt.Errorf("%w (this apply's new generation was abandoned by another apply's clean-up before the switch; retry)", ErrConflict)
	case isConditionFailure(err) || isTransactionConflict(err):
		// Refused, so known not to have landed; but refused is not lost:
		// only a version that moved means another apply won.
		if v, rerr := s.readVersion(ctx); rerr == nil && v.Version != cur.Version {
			return fmt.Errorf("%w (another apply switched it from version %d first)", ErrConflict, cur.Version)
		}
		return fmt.Errorf("%w (conflict, retry: another write was on the same items at the same moment; the version did not move)", ErrConflict)
	case isRefused(err):
		return fmt.Errorf("switch to the new policy version: %w", err)
	}
	return fmt.Errorf("%w: %w", errUnsettled, err)
}

// isRefused reports an answer from DynamoDB that the request did not run:
// a validation error, a missing table, an access denial. Anything else
// (no answer, a timeout, a server error) may have run.
func isRefused(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	var tce *types.TransactionCanceledException
	var inProgress *types.TransactionInProgressException
	if errors.As(err, &tce) || errors.As(err, &inProgress) {
		return false
	}
	return api.ErrorFault() == smithy.FaultClient // throttling included: a throttled request did not run
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

// batchWrite writes reqs 25 at a time, retrying unprocessed ones; what
// names the writes in its errors.
func (s *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest, what string) error {
	for len(reqs) > 0 {
		n := min(len(reqs), 25)
		batch := reqs[:n]
		reqs = reqs[n:]
		for attempt := 0; len(batch) > 0; attempt++ {
			if attempt > 0 {
				if attempt > 8 {
					return fmt.Errorf("%s: DynamoDB kept returning unprocessed items", what)
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
				return fmt.Errorf("%s: %w", what, err)
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
// that land late are found by what exists under the generation. When the
// tombstone is first found empty after the grace it is marked expired, and
// its partition is read for one grace period longer before the marker goes.
const tombstoneGrace = 15 * time.Minute

func (s *Store) tombstoneGrace() time.Duration {
	if s.grace > 0 {
		return s.grace
	}
	return tombstoneGrace
}

// sweep deletes whatever items generation m.Gen has, and the audit parts
// of its apply if that apply's record was never written, and keeps its
// marker as a tombstone. m must be dropped: a pending generation could
// still become live, and sweep refuses it. It returns how many items it
// deleted.
func (s *Store) sweep(ctx context.Context, m marker) (int, error) {
	if !m.dropped() {
		return 0, fmt.Errorf("refusing to remove generation %s: its marker is still pending", m.Gen)
	}
	items, err := s.queryKeys(ctx, policyPK+m.Gen, "")
	if err != nil {
		return 0, err
	}
	if m.Audit != "" {
		parts, err := s.orphanParts(ctx, m.Audit)
		if err != nil {
			return 0, err
		}
		items = append(items, parts...)
	}
	reqs := make([]types.WriteRequest, 0, len(items))
	for _, k := range items {
		reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}})
	}
	if err := s.batchWrite(ctx, reqs, "remove generation "+m.Gen); err != nil {
		return 0, err
	}
	now, grace := s.timeNow(), s.tombstoneGrace()
	dropped, expired := parseTime(m.DroppedAt), parseTime(m.ExpiredAt)
	var write *dynamodb.PutItemInput
	switch {
	case len(items) > 0 || dropped.IsZero() || now.Sub(dropped) <= grace:
		if m.DroppedAt == "" {
			m.DroppedAt = s.stamp()
			item, err := m.item()
			if err != nil {
				return 0, err
			}
			write = &dynamodb.PutItemInput{TableName: &s.table, Item: item}
		}
	case expired.IsZero():
		// Read one grace period longer: a write later than the tombstone
		// still lands under a marker that is there to find it.
		m.ExpiredAt = s.stamp()
		item, err := m.item()
		if err != nil {
			return 0, err
		}
		write = &dynamodb.PutItemInput{TableName: &s.table, Item: item}
	case now.Sub(expired) > grace:
		cctx, cancel := s.call(ctx)
		defer cancel()
		_, err = s.api.BatchWriteItem(cctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			s.table: {{DeleteRequest: &types.DeleteRequest{Key: key(metaPK, genPrefix+m.Gen)}}}}})
		return 0, err
	}
	if write != nil {
		cctx, cancel := s.call(ctx)
		defer cancel()
		if _, err := s.api.PutItem(cctx, write); err != nil {
			return len(items), fmt.Errorf("mark generation %s removed: %w", m.Gen, err)
		}
	}
	return len(items), nil
}

// orphanParts returns the keys of the audit part items of record id if the
// record itself does not exist: the parts of an apply that never switched.
// A dropped generation's record can no longer be written (the fence).
func (s *Store) orphanParts(ctx context.Context, id string) ([]map[string]types.AttributeValue, error) {
	cctx, cancel := s.call(ctx)
	out, err := s.api.GetItem(cctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(auditPK, id), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("PK")})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("read audit record %s: %w", id, err)
	}
	if out.Item != nil {
		return nil, nil
	}
	return s.queryKeys(ctx, auditPartPK+id, "")
}

// pendingTimeout is how old a pending generation above the live version
// must be before a clean-up takes its apply for gone (killed) and abandons
// it. Abandoning one whose apply still runs is safe (the fence makes that
// apply's switch fail as a conflict) but would fail it for nothing.
const pendingTimeout = 10 * time.Minute

// dropOldGenerations abandons and removes every generation except keep
// and the live one: superseded ones, ones whose apply lost or crashed, and
// pending ones numbered above keep's version whose apply began more than
// pendingTimeout ago (newer ones may belong to an apply in progress and are
// left alone); it looks into every tombstone again, whatever its number,
// for items that landed after their apply gave up. It returns how many
// items it removed from generations already dropped before: leftovers.
func (s *Store) dropOldGenerations(ctx context.Context, keep string) (int, error) {
	items, err := s.queryKeysWith(ctx, metaPK, genPrefix, "") // whole markers: state is a reserved word
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
	for _, it := range items {
		m, err := decodeMarker(it)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if m.Gen == keep || m.Gen == live.Generation {
			continue
		}
		tomb := m.dropped()
		if !tomb {
			if generationVersion(m.Gen) > keepVersion && s.timeNow().Sub(parseTime(m.CreatedAt)) < pendingTimeout {
				continue // an apply in progress may own it
			}
			switch err := s.abandon(ctx, &m); {
			case errors.Is(err, errLive):
				continue
			case err != nil:
				errs = append(errs, err)
				continue
			}
		}
		n, err := s.sweep(ctx, m)
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
	in := s.partition(pk)
	if projection != "" {
		in.ProjectionExpression = aws.String(projection)
	}
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
