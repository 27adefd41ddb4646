package authz

import (
	"context"
	"net/http"
	"strings"
)

type principalKey struct{}

// FromContext returns the Principal that Require put into the request's
// context, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Require wraps next: a request needs a valid bearer token, the scheme in
// any case (else 401 with WWW-Authenticate: Bearer, and error="invalid_token"
// when a token came, RFC 6750) that holds
// every one of perms (else 403 with error="insufficient_scope"). next finds
// the Principal with FromContext.
func Require(v *Verifier, perms ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
			token = strings.TrimSpace(token)
			if !strings.EqualFold(scheme, "Bearer") || token == "" {
				// No token came: no error attribute (RFC 6750 section 3.1).
				w.Header().Set("WWW-Authenticate", `Bearer`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			p, err := v.Verify(r.Context(), token)
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			for _, perm := range perms {
				if !p.HasPermission(perm) {
					w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+p.names.ScopePrefix+perm+`"`)
					http.Error(w, "forbidden", http.StatusForbidden)
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}
