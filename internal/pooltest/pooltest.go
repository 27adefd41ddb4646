// Package pooltest plays a Cognito user pool's token side for tests: an
// issuer on loopback serving a JWKS of its current RSA keys, and a signer of
// its tokens. Keys can be added (rotation), named for another algorithm,
// and the endpoint taken down.
package pooltest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Pool is a test user pool: an issuer serving a JWKS of its current keys,
// and a signer of its tokens.
type Pool struct {
	srv *httptest.Server
	mu  sync.Mutex
	// Keys are the pool's signing keys by kid; Algs the "alg" each JWK
	// names, if any.
	Keys map[string]*rsa.PrivateKey
	Algs map[string]string
	// Down makes the JWKS endpoint fail; Fetches counts its requests.
	Down    atomic.Bool
	Fetches atomic.Int32
}

// New starts a pool with a key for each kid; it stops when the test ends.
func New(t testing.TB, kids ...string) *Pool {
	t.Helper()
	p := &Pool{Keys: map[string]*rsa.PrivateKey{}, Algs: map[string]string{}}
	for _, kid := range kids {
		p.AddKey(t, kid)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Fetches.Add(1)
		if p.Down.Load() || !strings.HasSuffix(r.URL.Path, "/.well-known/jwks.json") {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		var set jose.JSONWebKeySet
		for kid, k := range p.Keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: p.Algs[kid], Use: "sig"})
		}
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

var keyCache sync.Map // kid -> key, so tests do not generate 2048-bit keys again and again

// AddKey publishes a new key kid (rotation).
func (p *Pool) AddKey(t testing.TB, kid string) {
	t.Helper()
	k, ok := keyCache.Load(kid)
	if !ok {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		k, _ = keyCache.LoadOrStore(kid, key)
	}
	p.mu.Lock()
	p.Keys[kid] = k.(*rsa.PrivateKey)
	p.mu.Unlock()
}

// Issuer is the pool's issuer URL.
func (p *Pool) Issuer() string { return p.srv.URL + "/us-east-1_TEST" }

// Sign makes a token signed by key kid with claims over the defaults of
// an access token for client web.
func (p *Pool) Sign(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	now := time.Now()
	all := map[string]any{"iss": p.Issuer(), "sub": "sub-1", "token_use": "access", "client_id": "web", "username": "maria",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "scope": "openid orders-api/orders:read"}
	for k, v := range claims {
		if v == nil {
			delete(all, k)
		} else {
			all[k] = v
		}
	}
	p.mu.Lock()
	key := p.Keys[kid]
	p.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(all).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
