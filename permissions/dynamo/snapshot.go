package dynamo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pretoken/pretoken/permissions"
)

// The compiled snapshot (permissions.EncodeSnapshot) is written by Apply as
// more items of the new generation, so the same switch of META/VERSION
// that publishes the policy's items publishes it:
//
//	POLICY#<g>      SNAPSHOT#<nnn>  {data}: chunk nnn of the compiled policy
//
// and META/VERSION counts the chunks (snapshotChunks) and names their format
// (snapshotFormat). A snapshot of one chunk (30,000 generated roles compress
// to under 300 KB) is also written whole into
//
//	SNAPSHOT        CURRENT         {version N, generation G, format F, data}
//
// by the switch's transaction, with no data when there is more than one
// chunk. It has a partition key of its own, so that cold loads do not read
// from the partition that every container's version check reads. A cold
// container reads META/VERSION and SNAPSHOT/CURRENT in one BatchGetItem,
// and when the copy is of the version and generation it is served: one
// request. Otherwise it reads every chunk of the version's generation in a
// second BatchGetItem. Either way it decodes the bytes: it never reads the
// policy's own items and never compiles. The version check, every refresh
// interval, still reads META/VERSION alone.

// kindSnapshot is the SK prefix of the compiled snapshot's chunks.
const kindSnapshot = "SNAPSHOT#"

// The snapshot's copy's key.
const (
	copyPK = "SNAPSHOT"
	copySK = "CURRENT"
)

// chunkBytes is the most a chunk holds: DynamoDB items hold 400 KB, keys
// and attribute names included.
var chunkBytes = 380_000

// maxBatchKeys is BatchGetItem's limit of keys per request.
const maxBatchKeys = 100

var _ permissions.CompiledStore = (*Store)(nil)

func snapshotSK(i int) string { return fmt.Sprintf("%s%03d", kindSnapshot, i) }

// compiledSnapshot compiles p and encodes it, labelled with the content
// hash of p as export writes it. It refuses one too large to load.
func compiledSnapshot(p *permissions.Policy) ([]byte, error) {
	file, err := permissions.MarshalFile(p, "")
	if err != nil {
		return nil, err
	}
	label := permissions.ContentHash(file)
	snap, err := permissions.Compile(p, label)
	if err != nil {
		return nil, err
	}
	data := permissions.EncodeSnapshot(snap, label)
	return data, permissions.CheckSnapshotSize(data)
}

// snapshotItems splits data into the chunk items of generation gen.
func snapshotItems(data []byte, gen string) []map[string]types.AttributeValue {
	var items []map[string]types.AttributeValue
	for i := 0; len(data) > 0; i++ {
		n := min(len(data), chunkBytes)
		item := key(policyPK+gen, snapshotSK(i))
		item["data"] = &types.AttributeValueMemberB{Value: data[:n]}
		items = append(items, item)
		data = data[n:]
	}
	return items
}

// copyPut writes SNAPSHOT/CURRENT for version v: data when it is one
// chunk, else none, so that no earlier version's copy outlives the switch.
func (s *Store) copyPut(v versionItem, data []byte) types.TransactWriteItem {
	item := key(copyPK, copySK)
	item["version"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(v.Version, 10)}
	item["generation"] = &types.AttributeValueMemberS{Value: v.Generation}
	item["format"] = &types.AttributeValueMemberN{Value: strconv.Itoa(v.SnapshotFormat)}
	if v.Snapshot == 1 {
		item["data"] = &types.AttributeValueMemberB{Value: data}
	}
	return types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item}}
}

// copyOf returns the snapshot's bytes from SNAPSHOT/CURRENT (it) if it is
// the copy of v (its version, generation and format), else nil.
func copyOf(it map[string]types.AttributeValue, v versionItem) []byte {
	version, _ := it["version"].(*types.AttributeValueMemberN)
	gen, _ := it["generation"].(*types.AttributeValueMemberS)
	format, _ := it["format"].(*types.AttributeValueMemberN)
	data, _ := it["data"].(*types.AttributeValueMemberB)
	if version == nil || gen == nil || format == nil || data == nil || len(data.Value) == 0 ||
		version.Value != strconv.FormatInt(v.Version, 10) || gen.Value != v.Generation || format.Value != strconv.Itoa(v.SnapshotFormat) {
		return nil
	}
	return data.Value
}

// copyCurrent reports whether the stored snapshot of cur is as apply would
// write compiled now: a snapshot of several chunks is; one of one chunk
// when SNAPSHOT/CURRENT holds its copy, byte for byte (the encoding is
// deterministic, so a damaged or missing copy is not).
func (s *Store) copyCurrent(ctx context.Context, cur versionItem, compiled []byte) (bool, error) {
	if cur.Snapshot > 1 {
		return true, nil
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	out, err := s.api.GetItem(cctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(copyPK, copySK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("read the compiled policy's copy: %w", err)
	}
	return bytes.Equal(copyOf(out.Item, cur), compiled), nil
}

// LoadSnapshot returns the stored policy's compiled snapshot, labelled with
// the stored version. A table that an older pretoken applied has no
// snapshot: its policy is then read and compiled as Load does, until the
// next apply writes one. A snapshot of another format is refused
// (permissions.ErrSnapshotFormat: run pretoken apply), never misread.
func (s *Store) LoadSnapshot(ctx context.Context) (*permissions.Snapshot, error) {
	for attempt := 0; attempt < 3; attempt++ {
		v, cp, err := s.readVersionWith(ctx, copyPK, copySK)
		if err != nil {
			return nil, err
		}
		version := strconv.FormatInt(v.Version, 10)
		if v.Snapshot == 0 {
			p, version, err := s.Load(ctx)
			if err != nil {
				return nil, err
			}
			return permissions.Compile(p, version)
		}
		if v.SnapshotFormat != permissions.SnapshotFormat {
			return nil, fmt.Errorf("policy version %d: %w (format %d; this pretoken reads format %d)", v.Version, permissions.ErrSnapshotFormat, v.SnapshotFormat, permissions.SnapshotFormat)
		}
		data := copyOf(cp, v)
		if data == nil {
			data, err = s.readChunks(ctx, v)
		}
		if errors.Is(err, errReplaced) {
			if derr := s.checkDamage(ctx, v); derr != nil {
				return nil, derr
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		snap, err := permissions.DecodeSnapshot(data, version)
		if err != nil {
			return nil, fmt.Errorf("policy version %d: %w", v.Version, err)
		}
		return snap, nil
	}
	return nil, errors.New("load policy: the policy kept changing while being read")
}

// readChunks reads the snapshot's chunks of v's generation, with
// BatchGetItem (consistent), and joins them in order. A chunk missing means
// the generation was replaced mid-read (errReplaced).
func (s *Store) readChunks(ctx context.Context, v versionItem) ([]byte, error) {
	if v.Snapshot > maxBatchKeys {
		return nil, fmt.Errorf("policy version %d: %d snapshot chunks, more than one read takes: %w", v.Version, v.Snapshot, permissions.ErrSnapshotTooLarge)
	}
	keys := make([]map[string]types.AttributeValue, v.Snapshot)
	for i := range keys {
		keys[i] = key(policyPK+v.Generation, snapshotSK(i))
	}
	chunks := make([][]byte, v.Snapshot)
	for attempt := 0; len(keys) > 0; attempt++ {
		if attempt > 5 {
			return nil, errors.New("read the compiled policy: DynamoDB kept returning unprocessed keys")
		}
		cctx, cancel := s.call(ctx)
		out, err := s.api.BatchGetItem(cctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			s.table: {Keys: keys, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("SK, #d"),
				ExpressionAttributeNames: map[string]string{"#d": "data"}}}})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("read the compiled policy: %w", err)
		}
		for _, it := range out.Responses[s.table] {
			sk, _ := it["SK"].(*types.AttributeValueMemberS)
			d, _ := it["data"].(*types.AttributeValueMemberB)
			var i int
			if sk == nil || d == nil {
				return nil, fmt.Errorf("policy version %d: %w", v.Version, permissions.ErrSnapshotDamaged)
			}
			if _, err := fmt.Sscanf(sk.Value, kindSnapshot+"%d", &i); err != nil || i < 0 || i >= len(chunks) {
				return nil, fmt.Errorf("policy version %d: %w", v.Version, permissions.ErrSnapshotDamaged)
			}
			chunks[i] = d.Value
		}
		keys = out.UnprocessedKeys[s.table].Keys
	}
	total := 0
	for _, c := range chunks {
		if c == nil {
			return nil, errReplaced
		}
		total += len(c)
	}
	if len(chunks) == 1 { // the usual case: 30,000 roles compress to under 300 KB
		return chunks[0], nil
	}
	data := make([]byte, 0, total)
	for _, c := range chunks {
		data = append(data, c...)
	}
	return data, nil
}
