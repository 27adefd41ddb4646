package dynamo_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

func (c *countingAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.add("GetItem")
	return c.API.GetItem(ctx, in, o...)
}

// subjects are the example policy's users and machines, for comparing
// snapshots by what they resolve.
var subjects = []permissions.Subject{
	{ClientID: "4webappclient0000", Groups: []string{"staff", "support"}},
	{ClientID: "other", Groups: []string{"admins"}, Attributes: map[string]string{"custom:tenant_id": "t1"}},
	{ClientID: "7m2mclient", Machine: true},
	{ClientID: "4webappclient0000", Roles: []string{"admin"}},
}

func sameResolve(t *testing.T, want, got *permissions.Snapshot) {
	t.Helper()
	for _, sub := range subjects {
		if diff := cmp.Diff(want.Resolve(sub), got.Resolve(sub)); diff != "" {
			t.Errorf("subject %+v (-compiled +stored):\n%s", sub, diff)
		}
	}
}

// TestLoadSnapshot: apply writes the compiled snapshot with the policy; a
// cold load never reads the policy's items, and resolves as the compiled
// policy does. A snapshot of one chunk is also written into
// SNAPSHOT/CURRENT and loads in one BatchGetItem (with the version item);
// one of several chunks has a copy without data, and its chunks are read
// in a second BatchGetItem.
func TestLoadSnapshot(t *testing.T) {
	for _, c := range []struct {
		name       string
		chunkBytes int // 0: the default
		requests   int
	}{
		{"one chunk", 0, 1},
		{"several chunks", 100, 2}, // the example compresses to a few hundred bytes
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.chunkBytes > 0 {
				defer dynamo.SetChunkBytes(c.chunkBytes)()
			}
			s, client, table := newStore(t)
			ctx := context.Background()
			p := examplePolicy(t)
			if _, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			got, requests, err := countedLoad(client, table)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]int{"BatchGetItem": c.requests}, requests); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if got.Version() != "1" || got.Policy() != nil {
				t.Errorf("version %q, policy %v: want 1 and no policy model", got.Version(), got.Policy())
			}
			sameResolve(t, mustCompile(t, p), got)
			chunks := 0
			for _, k := range keysOf(scan(t, client, table)) {
				if strings.Contains(k, " SNAPSHOT#") {
					chunks++
				}
			}
			cp := getItem(t, client, table, "SNAPSHOT", "CURRENT")
			if several := c.chunkBytes > 0; several != (chunks > 1) || cp == nil || several != (cp["data"] == nil) {
				t.Errorf("%d chunks, copy %v: want several chunks and a copy without data, or one and a copy with data", chunks, cp)
			}
			// The policy's own items still give export and plan the policy.
			back, _, err := s.Load(ctx)
			if err != nil || cmp.Diff(p, back, policyCmp) != "" {
				t.Errorf("Load after apply: %v\n%s", err, cmp.Diff(p, back, policyCmp))
			}
		})
	}
}

// TestStaleSnapshotCopyNotServed: a copy that is not of the version item's
// version (as a read that falls between the switch's two writes could see)
// is never served: the version's own chunks are.
func TestStaleSnapshotCopyNotServed(t *testing.T) {
	s, client, table := newStore(t)
	ctx := context.Background()
	p1 := examplePolicy(t)
	if _, err := s.Apply(ctx, p1, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	old := getItem(t, client, table, "SNAPSHOT", "CURRENT")
	p2 := examplePolicy(t)
	p2.Groups["staff"] = p2.Groups["admins"] // staff now resolve to admin
	if _, err := s.Apply(ctx, p2, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: old}); err != nil {
		t.Fatal(err)
	}
	got, requests, err := countedLoad(client, table)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version() != "2" || requests["BatchGetItem"] != 2 {
		t.Errorf("version %q after %v requests; want 2, from its chunks", got.Version(), requests)
	}
	sameResolve(t, mustCompile(t, p2), got)

	// A copy of the same version number from another generation (a
	// version item reset by hand, say) is not served either.
	old["version"] = &types.AttributeValueMemberN{Value: "2"}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: old}); err != nil {
		t.Fatal(err)
	}
	if got, requests, err = countedLoad(client, table); err != nil {
		t.Fatal(err)
	}
	if requests["BatchGetItem"] != 2 {
		t.Errorf("%v requests; want the chunks read", requests)
	}
	sameResolve(t, mustCompile(t, p2), got)
}

// countedLoad loads table's compiled snapshot as a cold container does,
// through a store of its own, and returns the requests it made.
func countedLoad(client *dynamodb.Client, table string) (*permissions.Snapshot, map[string]int, error) {
	api := &countingAPI{API: client, n: map[string]int{}}
	snap, err := dynamo.New(api, table).LoadSnapshot(context.Background())
	return snap, api.n, err
}

func getItem(t *testing.T, client *dynamodb.Client, table, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &table, ConsistentRead: aws.Bool(true), Key: dynamo.Key(pk, sk)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func mustCompile(t *testing.T, p *permissions.Policy) *permissions.Snapshot {
	t.Helper()
	s, err := permissions.Compile(p, "x")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func setVersionAttr(t *testing.T, client *dynamodb.Client, table, update string, values map[string]types.AttributeValue) {
	t.Helper()
	in := &dynamodb.UpdateItemInput{TableName: &table, UpdateExpression: &update,
		Key: dynamo.Key("META", "VERSION")}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	if _, err := client.UpdateItem(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// TestOtherSnapshotFormatRefused: a snapshot of a format this pretoken does
// not read is refused with what to do, and an apply of the same policy
// (no changes) writes it again in this format.
func TestOtherSnapshotFormatRefused(t *testing.T) {
	s, client, table := newStore(t)
	ctx := context.Background()
	p := examplePolicy(t)
	if _, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	setVersionAttr(t, client, table, "SET snapshotFormat = :f", map[string]types.AttributeValue{":f": &types.AttributeValueMemberN{Value: "0"}})
	_, err := s.LoadSnapshot(ctx)
	if !errors.Is(err, permissions.ErrSnapshotFormat) || !strings.Contains(err.Error(), "run pretoken apply") {
		t.Fatalf("older format: %v", err)
	}
	res, err := s.Apply(ctx, p, dynamo.ApplyOptions{})
	if err != nil || !res.Applied || len(res.Changes) != 0 {
		t.Fatalf("apply over an older format: %+v, %v; want written again without changes", res, err)
	}
	got, err := s.LoadSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameResolve(t, mustCompile(t, p), got)
}

// TestTableWithoutSnapshot: a table that an older pretoken applied (no
// snapshot) is still served, compiled from its items, until an apply
// writes the snapshot.
func TestTableWithoutSnapshot(t *testing.T) {
	s, client, table := newStore(t)
	ctx := context.Background()
	p := examplePolicy(t)
	if _, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	setVersionAttr(t, client, table, "REMOVE snapshotChunks, snapshotFormat", nil)
	got, err := s.LoadSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameResolve(t, mustCompile(t, p), got)
	if res, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil || !res.Applied {
		t.Fatalf("apply over a table without a snapshot: %+v, %v", res, err)
	}
	if _, requests, err := countedLoad(client, table); err != nil || requests["Query"] != 0 {
		t.Errorf("after apply: %v, %v requests; want the snapshot read", err, requests)
	}
}

// TestDamagedSnapshotRefused: a chunk or a copy whose bytes changed is
// refused, not served. A damaged copy is refused even when the chunks are
// whole: nothing is served that is not as apply wrote it. An apply of the
// same policy, as the error advises, writes a whole copy again.
func TestDamagedSnapshotRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damaged func(pk, sk string) bool
		chunk   int // chunkBytes, 0 for the default
	}{
		{"the copy", func(pk, sk string) bool { return pk == "SNAPSHOT" && sk == "CURRENT" }, 0},
		{"the chunks of a snapshot without copy", func(_, sk string) bool { return strings.HasPrefix(sk, "SNAPSHOT#") }, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.chunk > 0 {
				defer dynamo.SetChunkBytes(tc.chunk)()
			}
			s, client, table := newStore(t)
			ctx := context.Background()
			if _, err := s.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			damaged := 0
			for _, it := range scan(t, client, table) {
				if tc.damaged(it["PK"].(*types.AttributeValueMemberS).Value, it["SK"].(*types.AttributeValueMemberS).Value) {
					d := it["data"].(*types.AttributeValueMemberB).Value
					d[len(d)-1] ^= 1
					if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: it}); err != nil {
						t.Fatal(err)
					}
					damaged++
				}
			}
			if damaged == 0 {
				t.Fatal("nothing to damage")
			}
			if _, err := s.LoadSnapshot(ctx); !errors.Is(err, permissions.ErrSnapshotDamaged) {
				t.Fatalf("damaged %s: %v", tc.name, err)
			}
			if tc.chunk > 0 {
				return // the chunks of an unchanged policy are not read again by apply
			}
			if res, err := s.Apply(ctx, examplePolicy(t), dynamo.ApplyOptions{}); err != nil || !res.Applied {
				t.Fatalf("apply over a damaged copy: %+v, %v; want it written again", res, err)
			}
			if _, err := s.LoadSnapshot(ctx); err != nil {
				t.Errorf("after apply: %v", err)
			}
		})
	}
}

// TestApplyRefusesOversizedSnapshot: a policy whose compiled snapshot is
// over the bound writes nothing, dry run or not.
func TestApplyRefusesOversizedSnapshot(t *testing.T) {
	s, client, table := newStore(t)
	ctx := context.Background()
	p := &permissions.Policy{Roles: map[string]permissions.Role{}}
	perm := 0
	for size := 0; size <= permissions.MaxSnapshotBytes; {
		r := permissions.Role{}
		for range 5 {
			// Names that share no prefix, so front-coding saves nothing.
			sum := sha256.Sum256([]byte(fmt.Sprint(perm)))
			name := strings.Repeat(hex.EncodeToString(sum[:]), 3) + ":x"
			r.Permissions = append(r.Permissions, name)
			size += len(name)
			perm++
		}
		p.Roles[fmt.Sprintf("role%d", len(p.Roles))] = r
	}
	before := scan(t, client, table)
	for _, dry := range []bool{true, false} {
		_, err := s.Apply(ctx, p, dynamo.ApplyOptions{DryRun: dry})
		if !errors.Is(err, permissions.ErrSnapshotTooLarge) {
			t.Fatalf("dry run %v: %v, want ErrSnapshotTooLarge", dry, err)
		}
	}
	if diff := cmp.Diff(keysOf(before), keysOf(scan(t, client, table))); diff != "" {
		t.Errorf("a refused apply wrote:\n%s", diff)
	}
}

// TestApplyWritesMissingCopy: a table whose one-chunk snapshot has no copy
// (as the previous pretoken applied it) gets one at the next apply, even
// without changes, so that its cold loads become one request.
func TestApplyWritesMissingCopy(t *testing.T) {
	s, client, table := newStore(t)
	ctx := context.Background()
	p := examplePolicy(t)
	if _, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: dynamo.Key("SNAPSHOT", "CURRENT")}); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil || !res.Applied || len(res.Changes) != 0 {
		t.Fatalf("apply without the copy: %+v, %v; want written again without changes", res, err)
	}
	if _, requests, err := countedLoad(client, table); err != nil || requests["BatchGetItem"] != 1 {
		t.Errorf("load after apply: %v, %v requests; want one BatchGetItem", err, requests)
	}
	if res, err := s.Apply(ctx, p, dynamo.ApplyOptions{}); err != nil || res.Applied {
		t.Errorf("apply again: %+v, %v; want nothing written", res, err)
	}
}
