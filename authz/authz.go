// Package authz is the downstream side of pretoken: it verifies the tokens
// of one Cognito user pool and answers "does this token hold permission P"
// with the meaning the trigger wrote, whichever event version made the token
// (scopes or arrays in V2_0/V3_0 tokens, space-separated strings in V1_0 ID
// tokens). It serves Go services (Verifier, Require) and cmd/authorizer.
//
// Token parsing and the signature check are golang-jwt's, the JWKS
// go-jose's; this package decides what a Cognito token must look like:
// RS256 only, the pool's issuer, the token use, the app client (client_id
// in access tokens, aud in ID tokens), the times.
package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jwt "github.com/golang-jwt/jwt/v5"

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
	// ClockSkew is the leeway for exp, nbf and iat; default 1 minute.
	ClockSkew time.Duration
	// Claims says where permissions, roles and the tenant are; see
	// ClaimsFromPolicy to take them from a client profile.
	Claims Claims
	// ClientClaims are the claims of each app client that names them its
	// own way (ClaimsForClients reads them from the policy); a client not
	// in it reads Claims. Not to be changed after New.
	ClientClaims map[string]Claims
	// HTTPClient fetches the JWKS; http.DefaultClient with a 5 s timeout
	// when nil.
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
func ClaimsFromPolicy(p *permissions.Policy, clientID string) (Claims, error) {
	prof, ok := p.Clients[clientID]
	if !ok {
		prof = p.Clients[permissions.DefaultProfile]
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
			case permissions.SourceTenant:
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
// use; keys are fetched once and cached.
type Verifier struct {
	cfg    Config
	issuer string
	keys   *keySet
	parser *jwt.Parser
}

// New returns a Verifier for cfg. It fetches nothing until the first token.
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
	switch cfg.TokenUse {
	case "":
		cfg.TokenUse = Access
	case Access, ID, Any:
	default:
		return nil, fmt.Errorf("authz: token use %q: want access, id or any", cfg.TokenUse)
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	issuer = strings.TrimSuffix(issuer, "/")
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(issuer), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(cfg.ClockSkew), jwt.WithTimeFunc(cfg.Now))
	return &Verifier{cfg: cfg, issuer: issuer, keys: newKeySet(issuer+"/.well-known/jwks.json", cfg.HTTPClient, cfg.Now), parser: parser}, nil
}

// tokenClaims are the claims Verify checks and the Principal's fields, in
// one decode of the verified payload; the rest is decoded only when asked
// for (Principal.Claims).
type tokenClaims struct {
	jwt.RegisteredClaims
	TokenUse string   `json:"token_use"`
	ClientID string   `json:"client_id"`
	Username string   `json:"username"`
	CogUser  string   `json:"cognito:username"`
	Scope    string   `json:"scope"`
	Groups   []string `json:"cognito:groups"`
}

// Verify checks token and returns who it is for. Any failure wraps
// ErrInvalidToken, with the reason; an unreachable JWKS endpoint is said
// as such (cached keys keep working while it is down).
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	var cog tokenClaims
	_, err := v.parser.ParseWithClaims(token, &cog, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, err := v.keys.get(ctx, kid)
		if err != nil {
			return nil, err
		}
		if key.Algorithm != "" && key.Algorithm != "RS256" {
			return nil, fmt.Errorf("key %s is for %s, not RS256", kid, key.Algorithm)
		}
		return key.Key, nil
	})
	if errors.Is(err, ErrNoKey) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	std := cog.RegisteredClaims
	use := TokenUse(cog.TokenUse)
	switch {
	case use != Access && use != ID:
		return nil, fmt.Errorf("%w: token_use %q", ErrInvalidToken, cog.TokenUse)
	case v.cfg.TokenUse != Any && use != v.cfg.TokenUse:
		return nil, fmt.Errorf("%w: an %s token where an %s token is required", ErrInvalidToken, use, v.cfg.TokenUse)
	}
	client := cog.ClientID
	if use == ID { // ID tokens name the client in aud; access tokens have no aud
		client = ""
		for _, a := range std.Audience {
			if slices.Contains(v.cfg.ClientIDs, a) {
				client = a
			}
		}
	}
	if !slices.Contains(v.cfg.ClientIDs, client) {
		return nil, fmt.Errorf("%w: issued to another app client", ErrInvalidToken)
	}
	p := &Principal{Sub: std.Subject, Username: cog.Username, ClientID: client, TokenUse: use,
		Groups: cog.Groups, token: token, parser: v.parser, names: v.claimsFor(client)}
	if p.Username == "" {
		p.Username = cog.CogUser
	}
	if use == Access {
		p.Scopes = strings.Fields(cog.Scope)
	}
	return p, nil
}

// Principal is who a verified token is for, and what it holds.
type Principal struct {
	Sub, Username, ClientID string
	TokenUse                TokenUse
	Scopes, Groups          []string
	names                   Claims
	token                   string
	parser                  *jwt.Parser
	once                    sync.Once
	claims                  map[string]any
}

// Claims returns every claim of the token (decoded on first use: a check
// by scope needs none of them).
func (p *Principal) Claims() map[string]any {
	p.once.Do(func() {
		if parts := strings.Split(p.token, "."); len(parts) == 3 {
			if b, err := p.parser.DecodeSegment(parts[1]); err == nil {
				_ = json.Unmarshal(b, &p.claims)
			}
		}
	})
	return p.claims
}

// Tenant is the token's tenant claim (Claims.Tenant), or "".
func (p *Principal) Tenant() string {
	if p.names.Tenant == "" {
		return ""
	}
	t, _ := p.Claims()[p.names.Tenant].(string)
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
	return p.names.Permissions != "" && listClaimHas(p.Claims()[p.names.Permissions], perm)
}

// HasRole reports whether the token's roles claim names role r.
func (p *Principal) HasRole(r string) bool {
	return p.names.Roles != "" && listClaimHas(p.Claims()[p.names.Roles], r)
}

// listClaimHas reads a list claim in either shape the trigger writes.
func listClaimHas(v any, want string) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	case string: // "a b" (V1_0), or "[a b]" as API Gateway flattens an array
		return slices.Contains(strings.Fields(strings.Trim(x, "[]")), want)
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
	return p
}
