package authz

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Key set timing, as aws-jwt-verify keeps its JWKS cache.
const (
	// penaltyBox is how long after a fetch an unknown kid waits before it
	// may fetch again: a new key works within seconds, and a flood of
	// unknown kids makes at most one fetch per period.
	penaltyBox = 10 * time.Second
	// maxBackoff bounds the wait between fetches while the endpoint fails
	// and nothing is cached (penaltyBox, doubled per failure).
	maxBackoff = time.Minute
	// refreshEvery is the age after which the set is fetched again, so a
	// key withdrawn from the JWKS stops being trusted.
	refreshEvery = time.Hour
	// fetchTimeout bounds one fetch; it runs on its own context, never a
	// caller's, so a caller that hangs up cannot cancel it for the others.
	fetchTimeout = 5 * time.Second
	// minRSABits is the smallest key accepted (aws-jwt-verify, RFC 7518 §3.3).
	minRSABits = 2048
)

// keySet is the pool's signing keys, fetched from its JWKS endpoint and
// cached. One fetch at a time runs, shared by everyone who needs it;
// a cached key never waits for it.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	keys      map[string]*rsa.PublicKey
	fetchedAt time.Time // last successful fetch
	attempt   time.Time // last fetch started
	failures  int       // fetches failed in a row
	lastErr   error
	inflight  chan struct{} // closed when the running fetch ends; nil if none
}

func newKeySet(url string, client *http.Client, now func() time.Time) *keySet {
	return &keySet{url: url, client: client, now: now}
}

func (k *keySet) get(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	k.mu.Lock()
	if key, ok := k.keys[kid]; ok {
		if k.now().Sub(k.fetchedAt) >= refreshEvery && k.mayFetch() {
			k.start() // refresh in the background; this key does not wait
		}
		k.mu.Unlock()
		return key, nil
	}
	if err := k.fetchAndWait(ctx); err != nil {
		return nil, fmt.Errorf("%w: key %q: %v", ErrNoKey, truncate(kid), err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	if k.lastErr != nil {
		return nil, fmt.Errorf("%w: key %q is not cached and the JWKS endpoint failed: %v", ErrNoKey, truncate(kid), k.lastErr)
	}
	return nil, fmt.Errorf("%w: the pool has no key %q", ErrNoKey, truncate(kid))
}

// mayFetch reports whether a fetch may start now: none ran within the
// penalty box, or while failing with nothing cached, within the backoff.
func (k *keySet) mayFetch() bool {
	if k.inflight != nil {
		return false
	}
	if k.attempt.IsZero() {
		return true
	}
	wait := penaltyBox
	if k.failures > 0 && k.keys == nil {
		wait = min(penaltyBox<<min(k.failures-1, 10), maxBackoff)
	}
	return k.now().Sub(k.attempt) >= wait
}

// start begins a fetch; k.mu is held.
func (k *keySet) start() {
	done := make(chan struct{})
	k.inflight, k.attempt = done, k.now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		keys, err := k.fetch(ctx)
		cancel()
		k.mu.Lock()
		if err != nil {
			k.failures++
			k.lastErr = err
		} else {
			k.keys, k.fetchedAt, k.failures, k.lastErr = keys, k.now(), 0, nil
		}
		k.inflight = nil
		k.mu.Unlock()
		close(done)
	}()
}

// fetchAndWait starts a fetch if one may start (k.mu is held, and released
// here) and waits for the running one, if any, or for ctx; only ctx's end
// is an error.
func (k *keySet) fetchAndWait(ctx context.Context) error {
	if k.mayFetch() { // mayFetch is false while a fetch runs
		k.start()
	}
	wait := k.inflight
	k.mu.Unlock()
	if wait == nil {
		return nil
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// prefetch fetches the set now (unless a fetch ran within the penalty
// box) and waits for it.
func (k *keySet) prefetch(ctx context.Context) error {
	k.mu.Lock()
	if err := k.fetchAndWait(ctx); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastErr
}

// settle waits for the running fetch, if any (tests).
func (k *keySet) settle() {
	k.mu.Lock()
	wait := k.inflight
	k.mu.Unlock()
	if wait != nil {
		<-wait
	}
}

func (k *keySet) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("JWKS endpoint %s unreachable: %w", k.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS endpoint %s answered %s", k.url, resp.Status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("JWKS from %s: %w", k.url, err)
	}
	keys := make(map[string]*rsa.PublicKey, len(set.Keys))
	for _, raw := range set.Keys {
		if kid, key, err := parseJWK(raw); err == nil {
			keys[kid] = key
		}
	}
	return keys, nil
}

// parseJWK accepts a JWK as aws-jwt-verify does: kty RSA, a string kid,
// alg RS256 and use sig where present, a public key of at least 2048 bits.
func parseJWK(raw json.RawMessage) (string, *rsa.PublicKey, error) {
	var head struct {
		Kty, Alg, Use *string
		Kid           any
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", nil, err
	}
	kid, ok := head.Kid.(string)
	switch {
	case !ok:
		return "", nil, errors.New("kid is not a string")
	case head.Kty == nil || *head.Kty != "RSA":
		return "", nil, errors.New("kty is not RSA")
	case head.Alg != nil && *head.Alg != "RS256":
		return "", nil, errors.New("alg is not RS256")
	case head.Use != nil && *head.Use != "sig":
		return "", nil, errors.New("use is not sig")
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return "", nil, err
	}
	pub, ok := jwk.Key.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < minRSABits {
		return "", nil, errors.New("not an RSA public key of 2048 bits or more")
	}
	return kid, pub, nil
}

// truncate bounds a value an attacker sent before it goes into an error.
func truncate(s string) string { return truncateN(s, 64) }

func truncateN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
