package permissions

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memStore is an in-memory Store that counts calls and can fail or block.
type memStore struct {
	mu       sync.Mutex
	policy   *Policy
	version  string
	err      error
	versions atomic.Int32
	loads    atomic.Int32
	gate     chan struct{} // when set, Version waits for it
}

func (m *memStore) set(p *Policy, v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policy, m.version = p, v
}

func (m *memStore) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

func (m *memStore) Load(context.Context) (*Policy, string, error) {
	m.loads.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.policy, m.version, m.err
}

func (m *memStore) Version(context.Context) (string, error) {
	m.versions.Add(1)
	if m.gate != nil {
		<-m.gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, m.err
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func policyWith(perm string) *Policy {
	return &Policy{Roles: map[string]Role{"r": {Permissions: []string{perm}}}, Defaults: Defaults{Roles: []string{"r"}}}
}
func permsOf(s *Snapshot) []string { return s.Resolve(Subject{}).Permissions }
func newTestCache(st *memStore, c *clock) *Cache {
	return NewCache(st, CacheConfig{RefreshInterval: 10 * time.Second, MaxStaleness: time.Minute, Now: c.now})
}

func TestCacheRefreshes(t *testing.T) {
	st := &memStore{}
	st.set(policyWith("a:1"), "1")
	c := &clock{t: time.Unix(1000, 0)}
	cache := newTestCache(st, c)
	ctx := context.Background()

	step := func(wantPerm string, wantState CacheState, wantVersions, wantLoads int32) {
		t.Helper()
		s, state, err := cache.Snapshot(ctx)
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		if got := permsOf(s); len(got) != 1 || got[0] != wantPerm || state != wantState {
			t.Errorf("got %v (%s), want %s (%s)", got, state, wantPerm, wantState)
		}
		if v, l := st.versions.Load(), st.loads.Load(); v != wantVersions || l != wantLoads {
			t.Errorf("store calls: %d version checks, %d loads; want %d, %d", v, l, wantVersions, wantLoads)
		}
	}
	step("a:1", CacheLoaded, 0, 1)
	for range 1000 {
		c.add(time.Millisecond)
		step("a:1", CacheFresh, 0, 1) // warm: no store call at all
	}
	c.add(10 * time.Second)
	step("a:1", CacheChecked, 1, 1) // one version check, same version
	step("a:1", CacheFresh, 1, 1)
	st.set(policyWith("b:2"), "2")
	c.add(5 * time.Second)
	step("a:1", CacheFresh, 1, 1) // not yet: inside the interval
	c.add(5 * time.Second)
	step("b:2", CacheLoaded, 2, 2) // the change arrives within one interval
}

func TestCacheServesStaleThenFails(t *testing.T) {
	st := &memStore{}
	st.set(policyWith("a:1"), "1")
	c := &clock{t: time.Unix(1000, 0)}
	cache := newTestCache(st, c)
	ctx := context.Background()
	if _, _, err := cache.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	down := errors.New("connection refused")
	st.fail(down)
	c.add(11 * time.Second)
	s, state, err := cache.Snapshot(ctx)
	if err != nil || state != CacheStale || permsOf(s)[0] != "a:1" {
		t.Fatalf("store down within max staleness: %v, %s, %v", s, state, err)
	}
	calls := st.versions.Load()
	c.add(time.Second)
	if _, state, _ := cache.Snapshot(ctx); state != CacheStale || st.versions.Load() != calls {
		t.Errorf("retried the store before the next interval (state %s)", state)
	}
	c.add(time.Minute) // now past max staleness since the last good check
	_, state, err = cache.Snapshot(ctx)
	if !errors.Is(err, ErrNoSnapshot) || !errors.Is(err, down) || state != CacheNone {
		t.Errorf("past max staleness: %s, %v; want ErrNoSnapshot wrapping the store error", state, err)
	}
	st.fail(nil)
	c.add(10 * time.Second)
	if s, _, err := cache.Snapshot(ctx); err != nil || permsOf(s)[0] != "a:1" {
		t.Errorf("after recovery: %v", err)
	}
}

func TestCacheNoSnapshotAtStart(t *testing.T) {
	st := &memStore{}
	st.fail(errors.New("no route to host"))
	c := &clock{t: time.Unix(1000, 0)}
	cache := newTestCache(st, c)
	if _, state, err := cache.Snapshot(context.Background()); !errors.Is(err, ErrNoSnapshot) || state != CacheNone {
		t.Fatalf("got %s, %v; want ErrNoSnapshot", state, err)
	}
	loads := st.loads.Load()
	cache.Snapshot(context.Background())
	if st.loads.Load() != loads {
		t.Error("retried at once: every invocation would wait on a dead store")
	}
	st.fail(nil)
	st.set(policyWith("a:1"), "1")
	c.add(time.Second)
	if _, state, err := cache.Snapshot(context.Background()); err != nil || state != CacheLoaded {
		t.Errorf("recovery within a second: %s, %v", state, err)
	}
}

func TestCacheInvalidStoredPolicyIsNotServed(t *testing.T) {
	st := &memStore{}
	st.set(policyWith("a:1"), "1")
	c := &clock{t: time.Unix(1000, 0)}
	cache := newTestCache(st, c)
	cache.Snapshot(context.Background())
	corrupt := policyWith("b:2")
	corrupt.Groups = map[string][]string{"everyone": {"ghost"}}
	st.set(corrupt, "2")
	c.add(10 * time.Second)
	s, state, err := cache.Snapshot(context.Background())
	if err != nil || state != CacheStale || permsOf(s)[0] != "a:1" {
		t.Errorf("invalid stored policy: got %v, %s, %v; want the last good snapshot, stale", s, state, err)
	}
}

// TestCacheConcurrentCallersDoNotWait: one caller asks the store; the
// others, arriving meanwhile, are served the snapshot there is at once.
func TestCacheConcurrentCallersDoNotWait(t *testing.T) {
	st := &memStore{}
	st.set(policyWith("a:1"), "1")
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	cache := NewCache(st, CacheConfig{RefreshInterval: 10 * time.Second, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if _, _, err := cache.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.set(policyWith("b:2"), "2")
	now.Add(int64(11 * time.Second))
	st.gate = make(chan struct{})
	refreshed := make(chan string)
	go func() { // the one that asks the store, held at the gate
		s, _, _ := cache.Snapshot(context.Background())
		refreshed <- permsOf(s)[0]
	}()
	for st.versions.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	results := make([]string, 50)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _, err := cache.Snapshot(context.Background())
			if err == nil {
				results[i] = permsOf(s)[0]
			}
		}()
	}
	wg.Wait() // returns while the refresh is still held: nobody waited for it
	close(st.gate)
	if got := <-refreshed; got != "b:2" {
		t.Errorf("the refreshing caller got %q, want the new policy", got)
	}
	if v, l := st.versions.Load(), st.loads.Load(); v != 1 || l != 2 {
		t.Errorf("%d version checks and %d loads for 51 concurrent callers, want 1 and 2", v, l)
	}
	for i, r := range results {
		if r != "a:1" {
			t.Errorf("caller %d got %q, want the snapshot there was while the refresh ran", i, r)
		}
	}
	if s, _, _ := cache.Snapshot(context.Background()); permsOf(s)[0] != "b:2" {
		t.Errorf("after the refresh: %v", permsOf(s))
	}
}

// hangingStore never answers Load until its context ends.
type hangingStore struct{ loads atomic.Int64 }

func (h *hangingStore) Load(ctx context.Context) (*Policy, string, error) {
	h.loads.Add(1)
	<-ctx.Done()
	return nil, "", ctx.Err()
}
func (h *hangingStore) Version(ctx context.Context) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

// TestCacheHangingStoreHoldsOneCallerPerInterval: with no snapshot and a
// store that never answers, one caller per retry interval waits (for its
// own deadline); every other caller is answered at once, and the next retry
// is due a full interval after the failed attempt ended, not began.
func TestCacheHangingStoreHoldsOneCallerPerInterval(t *testing.T) {
	st := &hangingStore{}
	cache := NewCache(st, CacheConfig{RefreshInterval: 10 * time.Second})
	attempt := func() time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, _, err := cache.Snapshot(ctx); !errors.Is(err, ErrNoSnapshot) {
			t.Fatalf("err = %v, want ErrNoSnapshot", err)
		}
		return time.Since(start)
	}
	first := make(chan time.Duration)
	go func() { first <- attempt() }()
	for st.loads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for range 20 {
		if d := attempt(); d > 50*time.Millisecond {
			t.Errorf("a caller waited %v while another one asked the store", d)
		}
	}
	if d := <-first; d < 250*time.Millisecond {
		t.Errorf("the caller that asked the store returned after %v, before its deadline", d)
	}
	// The retry interval (1 s with no snapshot) counts from the end of the
	// failed attempt: the next calls do not ask again.
	for range 20 {
		if d := attempt(); d > 50*time.Millisecond {
			t.Errorf("a caller waited %v right after a failed attempt", d)
		}
	}
	if n := st.loads.Load(); n != 1 {
		t.Errorf("%d loads, want 1 within the retry interval", n)
	}
}

// slowStore answers Version only when its context ends.
type slowStore struct{ memStore }

func (s *slowStore) Version(ctx context.Context) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

func TestCacheVersionCheckIsBounded(t *testing.T) {
	st := &slowStore{}
	st.set(policyWith("a:1"), "1")
	c := &clock{t: time.Unix(1000, 0)}
	cache := NewCache(st, CacheConfig{RefreshInterval: time.Second, CheckTimeout: 20 * time.Millisecond, Now: c.now})
	if _, _, err := cache.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Second)
	start := time.Now()
	s, state, err := cache.Snapshot(context.Background())
	if err != nil || state != CacheStale || permsOf(s)[0] != "a:1" {
		t.Fatalf("slow store: %s, %v", state, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a hanging version check held the token %v", took)
	}
}
