// Package authz is the downstream side of pretoken: it verifies the tokens
// of one Cognito user pool and answers "does this token hold permission P"
// with the meaning the trigger wrote, whichever event version made the token
// (scopes or arrays in V2_0/V3_0 tokens, space-separated strings in V1_0 ID
// tokens). It serves Go services (Verifier, Require) and cmd/authorizer.
//
// It decides what a Cognito token must look like, at least as strictly as
// aws-jwt-verify: RS256 only, the pool's issuer, the token use, the app
// client (client_id in access tokens, aud in ID tokens), the times. The
// signature check is crypto/rsa's, JSON is read with exact names by
// go-jose's JWK parser and go-json-experiment/json (claims.go).
package authz

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pretoken/pretoken/internal/loopback"
	"github.com/pretoken/pretoken/permissions"
)

// TokenUse is the kind of token a Verifier accepts.
type TokenUse string

// Token uses.
const (
	Access TokenUse = "access"
	ID     TokenUse = "id"
	Any    TokenUse = "any"
)

// Config says which tokens a Verifier accepts and how to read them.
type Config struct {
	// Region and UserPoolID name the pool; or Issuer, its issuer URL
	// (https, or http on a loopback address for tests and cognito-local).
	Region, UserPoolID string
	Issuer             string
	// ClientIDs are the accepted app clients: client_id in access tokens,
	// aud in ID tokens. At least one.
	ClientIDs []string
	// TokenUse is access, id or any (the default: access).
	TokenUse TokenUse
	// ClockSkew is the leeway for exp and nbf: none by default, as
	// aws-jwt-verify's graceSeconds. An iat up to a minute (plus ClockSkew)
	// ahead of the clock is accepted, since Cognito's clock and ours differ.
	ClockSkew time.Duration
	// Claims says where permissions, roles and the tenant are; see
	// ClaimsFromPolicy to take them from a client profile.
	Claims Claims
	// ClientClaims are the claims of each app client that names them its
	// own way (ClaimsForClients reads them from the policy); a client not
	// in it reads Claims. Not to be changed after New.
	ClientClaims map[string]Claims
	// HTTPClient fetches the JWKS (a copy of it that refuses redirects
	// away from https); a client with a 5 s timeout when nil. Each fetch
	// also has its own 5 s deadline.
	HTTPClient *http.Client
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Claims names the claims the trigger writes and the scope prefix.
type Claims struct {
	// Permissions and Roles are claim names (in either token); empty when
	// the profile adds none.
	Permissions string `yaml:"permissions"`
	Roles       string `yaml:"roles"`
	Tenant      string `yaml:"tenant"`
	// ScopePrefix is put before permissions in the access token's scopes;
	// Scopes says whether the access token carries permissions as scopes.
	ScopePrefix string `yaml:"scopePrefix"`
	Scopes      bool   `yaml:"scopes"`
}

// ClaimsFromPolicy reads the claim names and scope prefix from the policy's
// profile for clientID (or its default profile), so the API and the trigger
// cannot disagree. A claim of the ID token and of the access token with the
// same source must then have the same name; ClaimsFromPolicy says so if not.
// The tenant claim is one with the source tenant, or, when the policy's
// tenancy.active is an attribute, one copied from that attribute.
func ClaimsFromPolicy(p *permissions.Policy, clientID string) (Claims, error) {
	prof, ok := p.Clients[clientID]
	if !ok {
		prof = p.Clients[permissions.DefaultProfile]
	}
	// With tenancy.active: attribute:X, a claim copied from X is the tenant.
	tenantAttr := permissions.SourceTenant
	if strings.HasPrefix(p.Tenancy.Active, permissions.SourceAttribute) {
		tenantAttr = p.Tenancy.Active
	}
	var c Claims
	set := func(dst *string, name, token string) error {
		if *dst != "" && *dst != name {
			return fmt.Errorf("client profile for %s names the same claim %q in one token and %q in the other; authz reads one name", clientID, *dst, name)
		}
		*dst = name
		return nil
	}
	for _, t := range []struct {
		name string
		p    permissions.TokenProfile
	}{{"idToken", prof.IDToken}, {"accessToken", prof.AccessToken}} {
		for name, src := range t.p.Claims {
			var err error
			switch src {
			case permissions.SourcePermissions:
				err = set(&c.Permissions, name, t.name)
			case permissions.SourceRoles:
				err = set(&c.Roles, name, t.name)
			case permissions.SourceTenant, tenantAttr:
				err = set(&c.Tenant, name, t.name)
			}
			if err != nil {
				return Claims{}, err
			}
		}
	}
	c.Scopes, c.ScopePrefix = prof.AccessToken.Scopes, prof.AccessToken.ScopePrefix
	return c, nil
}

// Errors a verification fails with. Each wraps ErrInvalidToken.
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrNoKey        = fmt.Errorf("%w: no key for it", ErrInvalidToken)
)

// Verifier verifies the tokens of one user pool. It is safe for concurrent
// use; keys are cached as aws-jwt-verify caches them (jwks.go).
type Verifier struct {
	cfg     Config
	issuer  string
	keys    *keySet
	headers sync.Map // base64url JWS header -> its kid, once a signature vouched for it
}

// New returns a Verifier for cfg. It fetches nothing until the first token
// or Prefetch.
func New(cfg Config) (*Verifier, error) {
	issuer := cfg.Issuer
	if issuer == "" {
		if cfg.Region == "" || cfg.UserPoolID == "" {
			return nil, errors.New("authz: set Issuer, or Region and UserPoolID")
		}
		issuer = "https://cognito-idp." + cfg.Region + ".amazonaws.com/" + cfg.UserPoolID
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("authz: issuer %q is not a URL", issuer)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback.Host(u.Hostname())) {
		return nil, fmt.Errorf("authz: issuer %q must be https (plain http only on a loopback address)", issuer)
	}
	if len(cfg.ClientIDs) == 0 {
		return nil, errors.New("authz: name the accepted app client ids")
	}
	if slices.ContainsFunc(cfg.ClientIDs, func(id string) bool { return strings.TrimSpace(id) == "" }) {
		return nil, errors.New("authz: an app client id is empty")
	}
	switch cfg.TokenUse {
	case "":
		cfg.TokenUse = Access
	case Access, ID, Any:
	default:
		return nil, fmt.Errorf("authz: token use %q: want access, id or any", cfg.TokenUse)
	}
	if cfg.ClockSkew < 0 {
		return nil, errors.New("authz: ClockSkew is negative")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client := http.Client{Timeout: fetchTimeout}
	if cfg.HTTPClient != nil {
		client = *cfg.HTTPClient
	}
	// A redirect may not leave https: a JWKS served over plain http could
	// be anyone's.
	next := client.CheckRedirect
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" && !(req.URL.Scheme == "http" && u.Scheme == "http" && loopback.Host(req.URL.Hostname())) {
			return fmt.Errorf("redirect to %s refused: the JWKS must stay on https", req.URL.Scheme)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	issuer = strings.TrimSuffix(issuer, "/")
	return &Verifier{cfg: cfg, issuer: issuer, keys: newKeySet(issuer+"/.well-known/jwks.json", &client, cfg.Now)}, nil
}

// Prefetch fetches the pool's keys now, so that the first request does
// not wait for them (an authorizer calls it at init). An error is worth a
// log line, not a stop: Verify fetches again when it needs a key.
func (v *Verifier) Prefetch(ctx context.Context) error { return v.keys.prefetch(ctx) }

// Verify checks token and returns who it is for. Any failure wraps
// ErrInvalidToken, with the reason; an unreachable JWKS endpoint is said
// as such (cached keys keep working while it is down).
//
// It is at least as strict as aws-jwt-verify: a string kid, no crit
// header, numeric exp, nbf and iat, claims read by their exact names, and
// an ID token's aud a single string.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	claims, err := verifyJWS(token, &v.headers, func(kid string) (*rsa.PublicKey, error) { return v.keys.get(ctx, kid) })
	if errors.Is(err, ErrNoKey) {
		return nil, err
	}
	if err == nil {
		err = checkClaims(claims, v.issuer, v.cfg.Now(), v.cfg.ClockSkew)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	tokenUse, ok1 := claims.str("token_use")
	sub, ok2 := claims.str("sub")
	username, ok3 := claims.str("username")
	cogUser, ok4 := claims.str("cognito:username")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, fmt.Errorf("%w: token_use, sub and username must be strings", ErrInvalidToken)
	}
	use := TokenUse(tokenUse)
	switch {
	case use != Access && use != ID:
		return nil, fmt.Errorf("%w: token_use %q", ErrInvalidToken, truncate(tokenUse))
	case v.cfg.TokenUse != Any && use != v.cfg.TokenUse:
		return nil, fmt.Errorf("%w: an %s token where an %s token is required", ErrInvalidToken, use, v.cfg.TokenUse)
	}
	clientClaim := "client_id"
	if use == ID { // ID tokens name the client in aud, one string; access tokens have no aud
		clientClaim = "aud"
	}
	client, ok := claims.str(clientClaim)
	if !ok || !slices.Contains(v.cfg.ClientIDs, client) {
		return nil, fmt.Errorf("%w: issued to another app client", ErrInvalidToken)
	}
	p := &Principal{Sub: sub, Username: username, ClientID: client, TokenUse: use, names: v.claimsFor(client), raw: claims}
	if p.Username == "" {
		p.Username = cogUser
	}
	if groups, ok := claims.value("cognito:groups").([]any); ok {
		for _, g := range groups {
			if s, ok := g.(string); ok {
				p.Groups = append(p.Groups, s)
			}
		}
	}
	if scope, _ := claims.str("scope"); scope != "" && use == Access {
		p.Scopes = strings.Split(scope, " ")
	}
	return p, nil
}

// Principal is who a verified token is for, and what it holds.
type Principal struct {
	Sub, Username, ClientID string
	TokenUse                TokenUse
	Scopes, Groups          []string
	names                   Claims
	raw                     claimSet // a verified token's claims, undecoded
	once                    sync.Once
	claims                  map[string]any
	// flattened: the claims came from API Gateway's JWT authorizer, which
	// writes a JSON array as "[a b]".
	flattened bool
}

// Claims returns every claim of the token (decoded on first use: a check
// by scope needs none of them).
func (p *Principal) Claims() map[string]any {
	p.once.Do(func() {
		p.claims = make(map[string]any, len(p.raw))
		for name := range p.raw {
			p.claims[name] = p.raw.value(name)
		}
	})
	return p.claims
}

// claim is one claim, decoded.
func (p *Principal) claim(name string) any {
	if p.raw != nil {
		return p.raw.value(name)
	}
	return p.Claims()[name]
}

// Tenant is the token's tenant claim (Claims.Tenant), or "".
func (p *Principal) Tenant() string {
	if p.names.Tenant == "" {
		return ""
	}
	t, _ := p.claim(p.names.Tenant).(string)
	return t
}

// HasPermission reports whether the token holds permission p: as a scope
// (with the profile's prefix) in an access token, or in the permissions
// claim, a JSON array (V2_0/V3_0) or a space-separated string (V1_0).
func (p *Principal) HasPermission(perm string) bool {
	if p.TokenUse == Access && p.names.Scopes {
		want := p.names.ScopePrefix + perm
		if slices.Contains(p.Scopes, want) {
			return true
		}
	}
	return p.names.Permissions != "" && p.listClaimHas(p.names.Permissions, perm)
}

// HasRole reports whether the token's roles claim names role r.
func (p *Principal) HasRole(r string) bool {
	return p.names.Roles != "" && p.listClaimHas(p.names.Roles, r)
}

// listClaimHas reads a list claim in the shapes the trigger writes: a
// JSON array (V2_0/V3_0) or one string joined by single spaces (V1_0),
// parsed exactly so; behind API Gateway's JWT authorizer an array arrives
// as "[a b]".
func (p *Principal) listClaimHas(name, want string) bool {
	switch x := p.claim(name).(type) {
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	case string:
		if p.flattened && strings.HasPrefix(x, "[") && strings.HasSuffix(x, "]") {
			x = x[1 : len(x)-1]
		}
		return slices.Contains(strings.Split(x, " "), want)
	}
	return false
}

// MarshalJSON shows a principal without its raw claims.
func (p *Principal) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Sub, Username, ClientID string
		TokenUse                TokenUse
		Scopes, Groups          []string
		Tenant                  string `json:",omitempty"`
	}{p.Sub, p.Username, p.ClientID, p.TokenUse, p.Scopes, p.Groups, p.Tenant()})
}

// FromVerifiedClaims is the Principal of a token that API Gateway's JWT
// authorizer has already verified, read from what it passes the backend:
// the claims (every value a string, a JSON array flattened to "[a b]") and
// the scopes. It checks nothing: use it only behind such an authorizer.
func FromVerifiedClaims(claims map[string]string, scopes []string, names Claims) *Principal {
	p := &Principal{Sub: claims["sub"], Username: claims["username"], ClientID: claims["client_id"],
		TokenUse: TokenUse(claims["token_use"]), Scopes: scopes, names: names}
	if p.ClientID == "" {
		p.ClientID = claims["aud"]
	}
	if p.Username == "" {
		p.Username = claims["cognito:username"]
	}
	m := make(map[string]any, len(claims))
	for k, v := range claims {
		m[k] = v
	}
	p.once.Do(func() { p.claims = m })
	p.flattened = true
	return p
}
