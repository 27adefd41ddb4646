package permissions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Store is where a policy lives, such as a DynamoDB table.
type Store interface {
	// Load returns the whole stored policy and its version. The policy is
	// one consistent version, never a mix of two.
	Load(ctx context.Context) (*Policy, string, error)
	// Version returns the stored policy's version: a cheap read that tells
	// whether a loaded policy is still current.
	Version(ctx context.Context) (string, error)
}

// CompiledStore is a Store that also keeps the policy compiled: a Cache
// loads it with LoadSnapshot, which decodes the compiled form instead of
// reading and compiling the policy.
type CompiledStore interface {
	Store
	// LoadSnapshot returns the stored policy's snapshot, labelled with the
	// version Version returns. It refuses a compiled form it cannot read.
	LoadSnapshot(ctx context.Context) (*Snapshot, error)
}

// CacheState says how a snapshot was obtained, for logs.
type CacheState string

// Cache states.
const (
	// CacheFresh: served from memory within the refresh interval.
	CacheFresh CacheState = "fresh"
	// CacheChecked: the store's version matched; served from memory.
	CacheChecked CacheState = "checked"
	// CacheLoaded: the policy was (re)loaded from the store.
	CacheLoaded CacheState = "loaded"
	// CacheStale: the store could not be reached; served from memory within
	// the maximum staleness.
	CacheStale CacheState = "stale"
	// CacheNone: no usable snapshot.
	CacheNone CacheState = "none"
)

// ErrNoSnapshot is returned, wrapped, when the cache has no snapshot it may
// serve: none was ever loaded, or the last one is older than the maximum
// staleness and the store cannot be reached.
var ErrNoSnapshot = errors.New("no usable policy snapshot")

// CacheConfig tunes a Cache. Zero fields take the defaults.
type CacheConfig struct {
	// RefreshInterval is how long a snapshot is served before the store's
	// version is checked again; changes reach tokens within it. Default 10s.
	RefreshInterval time.Duration
	// MaxStaleness is how long after its last successful check a snapshot
	// may still be served while the store fails. Default 15m.
	MaxStaleness time.Duration
	// CheckTimeout bounds a version check while there is a snapshot to fall
	// back on, so a slow store delays one token by at most this much before
	// the snapshot is served stale. Default 500ms. Loads are bounded by the
	// store alone.
	CheckTimeout time.Duration
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

// Cache holds one compiled snapshot of a stored policy and keeps it current.
// A call within the refresh interval touches no network; after it, one call
// checks the store's version and reloads only when the version changed.
// Callers that arrive while that one call asks the store do not wait for it:
// they are served the snapshot there is (or, with none, ErrNoSnapshot at
// once), so a slow or hanging store holds at most one caller per interval.
type Cache struct {
	store   Store
	cfg     CacheConfig
	entry   atomic.Pointer[cacheEntry]
	mu      sync.Mutex    // held by the one caller refreshing
	priming chan struct{} // closed when the first load (Prime) ends; nil without Prime
}

type cacheEntry struct {
	snap       *Snapshot
	verifiedAt time.Time // when the store last confirmed snap was current
	nextCheck  time.Time // when to ask the store again
	err        error     // the last refresh's error, if it failed
}

// NewCache returns a Cache over store. It loads nothing until first asked.
func NewCache(store Store, cfg CacheConfig) *Cache {
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 10 * time.Second
	}
	if cfg.MaxStaleness <= 0 {
		cfg.MaxStaleness = 15 * time.Minute
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 500 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{store: store, cfg: cfg}
}

// Snapshot returns the current snapshot and how it was obtained. The error
// wraps ErrNoSnapshot and the store's error when there is none to serve.
func (c *Cache) Snapshot(ctx context.Context) (*Snapshot, CacheState, error) {
	now := c.cfg.Now()
	e := c.entry.Load()
	if e != nil && now.Before(e.nextCheck) {
		return c.serve(e, now, CacheFresh)
	}
	if e == nil && c.priming != nil {
		// The first load is under way and there is nothing else to serve:
		// wait for it, within the caller's deadline.
		select {
		case <-c.priming:
		case <-ctx.Done():
			return nil, CacheNone, fmt.Errorf("%w: the first load is still under way", ErrNoSnapshot)
		}
		now = c.cfg.Now()
		if e = c.entry.Load(); e != nil && now.Before(e.nextCheck) {
			return c.serve(e, now, CacheLoaded)
		}
	}
	if !c.mu.TryLock() {
		// Another caller is asking the store.
		if e == nil {
			return nil, CacheNone, fmt.Errorf("%w: the first load is still under way", ErrNoSnapshot)
		}
		return c.serve(e, now, CacheFresh)
	}
	defer c.mu.Unlock()
	now = c.cfg.Now()
	if e := c.entry.Load(); e != nil && now.Before(e.nextCheck) {
		return c.serve(e, now, CacheFresh) // another caller just refreshed
	}
	e, state := c.refresh(ctx, now)
	c.entry.Store(e)
	return c.serve(e, now, state)
}

// Prime starts the first load in the background, under ctx, and returns at
// once; done, if not nil, is called with its outcome. Callers of Snapshot
// that come before the load ends wait for it (within their own deadline),
// since there is nothing else to serve. A Lambda function primes at init
// and starts taking invocations meanwhile, so the load overlaps the
// runtime's own start. Call it once, before any Snapshot.
func (c *Cache) Prime(ctx context.Context, done func(*Snapshot, error)) {
	c.priming = make(chan struct{})
	go func() {
		defer close(c.priming)
		c.mu.Lock()
		e, _ := c.refresh(ctx, c.cfg.Now())
		c.entry.Store(e)
		c.mu.Unlock()
		if done != nil {
			done(e.snap, e.err)
		}
	}()
}

// Age is how long ago the store last confirmed the snapshot, or 0 with none.
func (c *Cache) Age() time.Duration {
	if e := c.entry.Load(); e != nil && e.snap != nil {
		return c.cfg.Now().Sub(e.verifiedAt)
	}
	return 0
}

// Problem is the error of the last refresh, which the snapshot is stale
// because of; nil while the store answers.
func (c *Cache) Problem() error {
	if e := c.entry.Load(); e != nil {
		return e.err
	}
	return nil
}

// Last returns the last snapshot the cache loaded, however old, or nil. It
// is for what may be known even when nothing may be served: the failure
// mode open keeps the last policy's suppressions.
func (c *Cache) Last() *Snapshot {
	if e := c.entry.Load(); e != nil {
		return e.snap
	}
	return nil
}

func (c *Cache) serve(e *cacheEntry, now time.Time, state CacheState) (*Snapshot, CacheState, error) {
	switch {
	case e.snap == nil:
		return nil, CacheNone, fmt.Errorf("%w: %w", ErrNoSnapshot, e.err)
	case e.err == nil:
		return e.snap, state, nil
	case now.Sub(e.verifiedAt) <= c.cfg.MaxStaleness:
		return e.snap, CacheStale, nil
	}
	return nil, CacheNone, fmt.Errorf("%w: last verified %s ago, more than the maximum staleness: %w",
		ErrNoSnapshot, now.Sub(e.verifiedAt).Round(time.Second), e.err)
}

// refresh asks the store; it returns the new entry and the state to report.
func (c *Cache) refresh(ctx context.Context, now time.Time) (*cacheEntry, CacheState) {
	old := c.entry.Load()
	if old == nil {
		old = &cacheEntry{}
	}
	failed := func(err error) (*cacheEntry, CacheState) {
		retry := c.cfg.RefreshInterval
		if old.snap == nil {
			retry = min(retry, time.Second) // nothing to serve meanwhile: try again soon
		}
		// From the end of the failed attempt, not its start: a store that
		// hangs for longer than the interval must not make every call retry.
		return &cacheEntry{snap: old.snap, verifiedAt: old.verifiedAt, nextCheck: c.cfg.Now().Add(retry), err: err}, CacheStale
	}
	if old.snap != nil {
		vctx, cancel := context.WithTimeout(ctx, c.cfg.CheckTimeout)
		v, err := c.store.Version(vctx)
		cancel()
		if err != nil {
			return failed(fmt.Errorf("check policy version: %w", err))
		}
		if v == old.snap.Version() {
			return &cacheEntry{snap: old.snap, verifiedAt: now, nextCheck: now.Add(c.cfg.RefreshInterval)}, CacheChecked
		}
	}
	if cs, ok := c.store.(CompiledStore); ok {
		snap, err := cs.LoadSnapshot(ctx)
		if err != nil {
			return failed(fmt.Errorf("load policy: %w", err))
		}
		return &cacheEntry{snap: snap, verifiedAt: now, nextCheck: now.Add(c.cfg.RefreshInterval)}, CacheLoaded
	}
	p, v, err := c.store.Load(ctx)
	if err != nil {
		return failed(fmt.Errorf("load policy: %w", err))
	}
	snap, err := Compile(p, v)
	if err != nil {
		return failed(fmt.Errorf("stored policy version %s is invalid: %w", v, err))
	}
	return &cacheEntry{snap: snap, verifiedAt: now, nextCheck: now.Add(c.cfg.RefreshInterval)}, CacheLoaded
}
