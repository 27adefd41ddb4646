package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// refetchEvery is how often an unknown kid may make the key set fetch the
// JWKS again: key rotation works without a stampede of fetches.
const refetchEvery = time.Minute

// keySet is the pool's signing keys, fetched from its JWKS endpoint and
// cached. A token with a kid the cache lacks refetches at most once a
// minute; a failed fetch keeps the keys there are.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	keys    map[string]jose.JSONWebKey
	fetched time.Time // last fetch attempt
	lastErr error
}

func newKeySet(url string, client *http.Client, now func() time.Time) *keySet {
	return &keySet{url: url, client: client, now: now}
}

func (k *keySet) get(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	if k.keys == nil || k.now().Sub(k.fetched) >= refetchEvery {
		k.fetched = k.now()
		keys, err := k.fetch(ctx)
		if err != nil {
			k.lastErr = err
		} else {
			k.keys, k.lastErr = keys, nil
		}
		if key, ok := k.keys[kid]; ok {
			return key, nil
		}
	}
	if k.lastErr != nil {
		return jose.JSONWebKey{}, fmt.Errorf("%w: key %q is not cached and the JWKS endpoint failed: %v", ErrNoKey, kid, k.lastErr)
	}
	return jose.JSONWebKey{}, fmt.Errorf("%w: the pool has no key %q", ErrNoKey, kid)
}

func (k *keySet) fetch(ctx context.Context) (map[string]jose.JSONWebKey, error) {
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
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("JWKS from %s: %w", k.url, err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, key := range set.Keys {
		if key.IsPublic() && (key.Use == "" || key.Use == "sig") {
			keys[key.KeyID] = key
		}
	}
	return keys, nil
}
