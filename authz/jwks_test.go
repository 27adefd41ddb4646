package authz

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pretoken/pretoken/internal/pooltest"
)

// endpoint is a JWKS endpoint the test drives: it serves the keys
// published, fails, or holds each request until released.
type endpoint struct {
	mu        sync.Mutex
	published map[string]*rsa.PublicKey
	fail      bool
	hold      chan struct{} // when set, a request waits for it to close
	arrived   chan struct{} // a request arrived (buffered)
	fetches   atomic.Int32
	srv       *httptest.Server
}

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{published: map[string]*rsa.PublicKey{}, arrived: make(chan struct{}, 1000)}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.fetches.Add(1)
		e.arrived <- struct{}{}
		e.mu.Lock()
		hold, fail := e.hold, e.fail
		e.mu.Unlock()
		if hold != nil {
			<-hold
		}
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		e.mu.Lock()
		var keys []any
		for kid, k := range e.published {
			keys = append(keys, jwk(k, "kid", kid))
		}
		e.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) publish(kid string, k *rsa.PublicKey) {
	e.mu.Lock()
	e.published[kid] = k
	e.mu.Unlock()
}
func (e *endpoint) withdraw(kid string) { e.mu.Lock(); delete(e.published, kid); e.mu.Unlock() }
func (e *endpoint) set(fail bool, hold chan struct{}) {
	e.mu.Lock()
	e.fail, e.hold = fail, hold
	e.mu.Unlock()
}

// fakeClock is a clock the test moves.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock           { c := &fakeClock{}; c.ns.Store(time.Now().UnixNano()); return c }
func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

type keyRig struct {
	pool  *pooltest.Pool
	ep    *endpoint
	clock *fakeClock
	v     *Verifier
	iss   string
}

func newKeyRig(t *testing.T) *keyRig {
	r := &keyRig{pool: pooltest.New(t, "k1", "k2"), ep: newEndpoint(t), clock: newFakeClock()}
	r.iss = r.ep.srv.URL + "/us-east-1_TEST"
	v, err := New(Config{Issuer: r.iss, ClientIDs: []string{"web"}, Now: r.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	r.v = v
	return r
}

// token signs an access token with key kid, valid for a day.
func (r *keyRig) token(t *testing.T, kid string) string {
	claims := baseClaims(r.pool)
	claims["iss"], claims["iat"], claims["exp"] = r.iss, r.clock.now().Unix(), r.clock.now().Add(24*time.Hour).Unix()
	return signRaw(t, r.pool.Keys[kid], map[string]any{"alg": "RS256", "kid": kid}, claims)
}

// TestCachedKeysNeverWait: while a fetch hangs, a token whose key is
// cached is verified at once; the fetch runs on its own context, so the
// caller that started it hanging up does not waste it.
func TestCachedKeysNeverWait(t *testing.T) {
	r := newKeyRig(t)
	r.ep.publish("k1", &r.pool.Keys["k1"].PublicKey)
	if err := r.v.Prefetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-r.ep.arrived
	r.clock.add(penaltyBox)
	hold := make(chan struct{})
	r.ep.set(false, hold)
	r.ep.publish("k2", &r.pool.Keys["k2"].PublicKey)
	ctx, hangUp := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { _, err := r.v.Verify(ctx, r.token(t, "k2")); done <- err }()
	<-r.ep.arrived // the fetch for k2 is under way and held
	if _, err := r.v.Verify(t.Context(), r.token(t, "k1")); err != nil {
		t.Errorf("cached key during a fetch: %v", err)
	}
	hangUp()
	if err := <-done; !errors.Is(err, ErrNoKey) {
		t.Errorf("the caller that hung up: %v", err)
	}
	close(hold)
	r.v.keys.settle()
	before := r.ep.fetches.Load()
	if _, err := r.v.Verify(t.Context(), r.token(t, "k2")); err != nil {
		t.Errorf("the new key after the fetch its first caller abandoned: %v", err)
	}
	if n := r.ep.fetches.Load() - before; n != 0 {
		t.Errorf("%d more fetches", n)
	}
}

// TestPenaltyBox: an unknown kid refetches unless a fetch ran in the last
// 10 s, so a newly published key works within seconds and a flood of
// unknown kids makes one fetch per period.
func TestPenaltyBox(t *testing.T) {
	r := newKeyRig(t)
	r.ep.publish("k1", &r.pool.Keys["k1"].PublicKey)
	if _, err := r.v.Verify(t.Context(), r.token(t, "k1")); err != nil {
		t.Fatal(err)
	}
	r.ep.publish("k2", &r.pool.Keys["k2"].PublicKey)
	tok2 := r.token(t, "k2")
	for range 50 {
		if _, err := r.v.Verify(t.Context(), tok2); !errors.Is(err, ErrNoKey) {
			t.Fatalf("within the penalty box: %v", err)
		}
	}
	if n := r.ep.fetches.Load(); n != 1 {
		t.Errorf("%d fetches within the penalty box, want 1", n)
	}
	r.clock.add(penaltyBox)
	if _, err := r.v.Verify(t.Context(), tok2); err != nil {
		t.Errorf("a new key 10 s later: %v", err)
	}
}

// TestColdStartEndpointDown: with the endpoint down and nothing cached,
// concurrent requests share one fetch, and the fetches back off.
func TestColdStartEndpointDown(t *testing.T) {
	r := newKeyRig(t)
	r.ep.set(true, nil)
	tok := r.token(t, "k1")
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if _, err := r.v.Verify(t.Context(), tok); !errors.Is(err, ErrNoKey) {
				t.Errorf("endpoint down: %v", err)
			}
		})
	}
	wg.Wait()
	if n := r.ep.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for 100 requests at a cold start, want 1", n)
	}
	want := int32(1)
	for _, step := range []struct {
		after time.Duration
		fetch bool
	}{
		{penaltyBox, true},      // 1 failure: wait 10 s
		{penaltyBox, false},     // 2 failures: wait 20 s
		{penaltyBox, true},      //
		{3 * penaltyBox, false}, // 3 failures: wait 40 s
		{penaltyBox, true},
		{maxBackoff - penaltyBox, false}, // at most a minute
		{penaltyBox, true},
		{maxBackoff, true},
	} {
		r.clock.add(step.after)
		r.v.Verify(t.Context(), tok)
		if step.fetch {
			want++
		}
		if n := r.ep.fetches.Load(); n != want {
			t.Fatalf("after %v more: %d fetches, want %d", step.after, n, want)
		}
	}
	r.ep.set(false, nil)
	r.ep.publish("k1", &r.pool.Keys["k1"].PublicKey)
	r.clock.add(maxBackoff)
	if _, err := r.v.Verify(t.Context(), tok); err != nil {
		t.Errorf("the endpoint back: %v", err)
	}
}

// TestWithdrawnKey: the set is refreshed hourly, so a key withdrawn from
// the JWKS stops being trusted; cached keys keep working while the
// endpoint is down.
func TestWithdrawnKey(t *testing.T) {
	r := newKeyRig(t)
	r.ep.publish("k1", &r.pool.Keys["k1"].PublicKey)
	r.ep.publish("k2", &r.pool.Keys["k2"].PublicKey)
	tok1, tok2 := r.token(t, "k1"), r.token(t, "k2")
	if _, err := r.v.Verify(t.Context(), tok2); err != nil {
		t.Fatal(err)
	}
	r.ep.set(true, nil)
	r.clock.add(refreshEvery)
	if _, err := r.v.Verify(t.Context(), tok2); err != nil { // starts a refresh, does not wait
		t.Errorf("a cached key while the endpoint is down: %v", err)
	}
	r.v.keys.settle()
	if _, err := r.v.Verify(t.Context(), tok1); err != nil {
		t.Errorf("a cached key after a failed refresh: %v", err)
	}
	r.ep.set(false, nil)
	r.ep.withdraw("k2")
	r.clock.add(penaltyBox)
	r.v.Verify(t.Context(), tok1) // the set is still old: refresh
	r.v.keys.settle()
	if _, err := r.v.Verify(t.Context(), tok2); !errors.Is(err, ErrNoKey) {
		t.Errorf("a withdrawn key an hour later: %v", err)
	}
	if _, err := r.v.Verify(t.Context(), tok1); err != nil {
		t.Errorf("a key still published: %v", err)
	}
}
