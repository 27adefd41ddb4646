package dynamo

import (
	"context"
	"time"

	"github.com/pretoken/pretoken/permissions"
)

// SetClock makes s read the time from now, and keep tombstones for grace.
func SetClock(s *Store, now func() time.Time, grace time.Duration) { s.now, s.grace = now, grace }

// WriteGeneration does what Apply does before its switch: the pending
// marker and p's items under a new generation, which it returns.
func WriteGeneration(ctx context.Context, s *Store, p *permissions.Policy) (string, error) {
	cur, err := s.readVersion(ctx)
	if err != nil {
		return "", err
	}
	gen := newGeneration(cur.Version + 1)
	items, err := encodePolicy(p, gen)
	if err != nil {
		return "", err
	}
	if err := s.putMarker(ctx, marker{Gen: gen, CreatedAt: s.stamp()}); err != nil {
		return "", err
	}
	return gen, s.batchWrite(ctx, puts(items), "write policy items")
}

// Switch is Apply's switch to gen, written by p.
func Switch(ctx context.Context, s *Store, p *permissions.Policy, gen string) error {
	cur, err := s.readVersion(ctx)
	if err != nil {
		return err
	}
	items, _ := encodePolicy(p, gen)
	record, _, err := s.auditItems(AuditRecord{Time: time.Now(), Action: "apply", Target: "policy"})
	if err != nil {
		return err
	}
	return s.flip(ctx, cur, versionItem{Version: generationVersion(gen), Generation: gen, Items: len(items)},
		inlineItem{Version: generationVersion(gen)}, record, nil)
}

// Abandon moves gen's marker out of pending, as a clean-up does before it
// deletes anything; ErrLive if the version item names gen.
func Abandon(ctx context.Context, s *Store, gen string) error {
	m := marker{Gen: gen}
	return s.abandon(ctx, &m)
}

// Sweep deletes gen's items if its marker is no longer pending.
func Sweep(ctx context.Context, s *Store, gen string, pending bool) (int, error) {
	m := marker{Gen: gen, State: stateDropped, DroppedAt: s.stamp()}
	if pending {
		m.State, m.DroppedAt = statePending, ""
	}
	return s.sweep(ctx, m)
}

var ErrLive = errLive

// Live is the generation the version item names.
func Live(ctx context.Context, s *Store) (string, error) {
	v, err := s.readVersion(ctx)
	return v.Generation, err
}

// SetChunkBytes makes snapshot chunks n bytes, so that tests see several
// chunks without writing a policy of a megabyte; it returns the undo.
func SetChunkBytes(n int) func() {
	old := chunkBytes
	chunkBytes = n
	return func() { chunkBytes = old }
}

// Key is the key of item pk/sk.
var Key = key
