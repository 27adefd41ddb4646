package permissions

import (
	"errors"
	"strings"
)

// Token names a token that Cognito issues.
type Token int

// The tokens a policy can change.
const (
	IDToken Token = iota
	AccessToken
)

func (t Token) String() string {
	if t == AccessToken {
		return "access token"
	}
	return "ID token"
}

// reservedClaims can never be added, changed or suppressed by a pre token
// generation trigger (Cognito developer guide, "Excluded claims").
var reservedClaims = map[string]bool{
	"acr": true, "amr": true, "at_hash": true, "aud": true, "auth_time": true, "azp": true,
	"client_id": true, "cognito:username": true, "device_key": true, "event_id": true,
	"exp": true, "iat": true, "identities": true, "iss": true, "jti": true, "nbf": true,
	"nonce": true, "origin_jti": true, "sub": true, "token_use": true, "username": true,
	"version": true,
}

// simpleIDClaims may not take a complex (list or object) value in the ID token.
var simpleIDClaims = map[string]bool{
	"email_verified": true, "phone_number_verified": true, "updated_at": true, "address": true,
}

// Errors returned by CheckAddClaim and CheckSuppressClaim.
var (
	ErrReservedClaim = errors.New("is reserved by Cognito")
	ErrCognitoClaim  = errors.New("is a cognito: claim; groups are kept as Cognito sent them")
	ErrDevClaim      = errors.New("is a dev: claim, which can only be suppressed")
	ErrScopeClaim    = errors.New("is the scope claim; add scopes with scopes: true")
)

// CheckAddClaim reports why a claim named name may not be added to or
// overridden in tok, or nil when it may.
//
// It is stricter than Cognito in one way: Cognito lets a trigger override
// cognito:groups, cognito:roles and cognito:preferred_role, but pretoken
// always keeps the user's groups as Cognito sent them, so every cognito:
// claim is refused.
func CheckAddClaim(name string, tok Token) error {
	switch {
	case reservedClaims[name]:
		return ErrReservedClaim
	case strings.HasPrefix(name, "cognito:"):
		return ErrCognitoClaim
	case strings.HasPrefix(name, "dev:"):
		return ErrDevClaim
	case tok == AccessToken && name == "scope":
		return ErrScopeClaim
	}
	return nil
}

// CheckSuppressClaim reports why a claim named name may not be suppressed in
// tok, or nil when it may.
func CheckSuppressClaim(name string, tok Token) error {
	switch {
	case reservedClaims[name]:
		return ErrReservedClaim
	case strings.HasPrefix(name, "cognito:"):
		return ErrCognitoClaim
	case tok == AccessToken && name == "scope":
		return ErrScopeClaim
	}
	return nil
}

// standardClaims are the claims that tokens carry with a meaning of their
// own: JWT's registered claims (RFC 7519 section 4.1), OpenID Connect's ID
// token and standard claims (OpenID Connect Core 1.0, sections 2 and 5.1),
// and those Cognito puts in its tokens (username, identities, token_use,
// client_id, scope, ...). Many are user attributes too, which Cognito
// copies into the ID token.
var standardClaims = map[string]bool{
	// JWT
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	// OpenID Connect ID token
	"auth_time": true, "nonce": true, "acr": true, "amr": true, "azp": true, "at_hash": true, "c_hash": true, "s_hash": true, "sid": true,
	// OpenID Connect standard claims
	"name": true, "given_name": true, "family_name": true, "middle_name": true, "nickname": true, "preferred_username": true,
	"profile": true, "picture": true, "website": true, "email": true, "email_verified": true, "gender": true, "birthdate": true,
	"zoneinfo": true, "locale": true, "phone_number": true, "phone_number_verified": true, "address": true, "updated_at": true,
	// Cognito's own
	"username": true, "identities": true, "token_use": true, "client_id": true, "scope": true, "device_key": true,
	"event_id": true, "origin_jti": true, "version": true,
}

// ShadowsClaim reports, case-insensitively, whether a claim named name
// would stand in for what users or Cognito own: a standard claim, a cognito:
// claim, or a custom: or dev: user attribute. Where a managed claim of such a
// name ends without a value, the user's own attribute, or Cognito's claim,
// would reach the token under that name, so policies may not use them.
func ShadowsClaim(name string) (why string, ok bool) {
	l := strings.ToLower(name)
	switch {
	case standardClaims[l]:
		return "is a standard or Cognito claim", true
	case strings.HasPrefix(l, "cognito:"):
		return "is in Cognito's cognito: namespace", true
	case strings.HasPrefix(l, "custom:"):
		return "names a custom: user attribute", true
	case strings.HasPrefix(l, "dev:"):
		return "names a dev: user attribute", true
	}
	return "", false
}

// ValidScope reports whether s can be an OAuth scope: one or more characters
// of RFC 6749's scope-token (printable ASCII without blanks, '"' and '\').
func ValidScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !scopeChars[s[i]] {
			return false
		}
	}
	return true
}

// scopeChars is RFC 6749's scope-token character set: %x21 / %x23-5B / %x5D-7E.
// A table, because the trigger checks every scope it emits.
var scopeChars = func() (t [256]bool) {
	for c := 0x21; c <= 0x7E; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
