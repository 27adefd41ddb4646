package trigger

import (
	"strings"

	"github.com/pretoken/pretoken/permissions"
)

// tokenOut is what goes into one token, after Cognito's rules are applied.
type tokenOut struct {
	claims           []permissions.Claim
	suppress         []string
	scopesToAdd      []string
	scopesToSuppress []string
}

// tokens applies Cognito's rules to a resolution. A validated policy never
// yields a reserved claim or a malformed scope; this is the last line of
// defence should one reach the trigger some other way, and it logs an error
// for each thing it drops. rolesOnly drops permission claims and scopes.
func (h *Handler) tokens(res permissions.Result, machine, rolesOnly bool) (id, access tokenOut) {
	if !machine {
		id = h.token(res.ID, permissions.IDToken, rolesOnly)
	}
	access = h.token(res.Access, permissions.AccessToken, rolesOnly)
	return id, access
}

func (h *Handler) token(c permissions.TokenChanges, tok permissions.Token, rolesOnly bool) tokenOut {
	var out tokenOut
	out.claims = c.Claims[:0:0]
	for _, cl := range c.Claims {
		if rolesOnly && cl.FromPermissions {
			continue
		}
		if err := permissions.CheckAddClaim(cl.Name, tok); err != nil {
			h.log.Error().Str("claim", cl.Name).Str("token", tok.String()).Msg("dropped a reserved claim")
			continue
		}
		out.claims = append(out.claims, cl)
	}
	out.suppress = c.ClaimsToSuppress
	for _, name := range c.ClaimsToSuppress {
		if permissions.CheckSuppressClaim(name, tok) != nil {
			out.suppress = filter(c.ClaimsToSuppress, func(n string) bool { return permissions.CheckSuppressClaim(n, tok) == nil })
			h.log.Error().Str("token", tok.String()).Msg("dropped a reserved claim from claimsToSuppress")
			break
		}
	}
	if !rolesOnly {
		out.scopesToAdd = validScopes(h, c.ScopesToAdd)
	}
	out.scopesToSuppress = validScopes(h, c.ScopesToSuppress)
	return out
}

func validScopes(h *Handler, scopes []string) []string {
	for _, s := range scopes {
		if !permissions.ValidScope(s) {
			h.log.Error().Msg("dropped an empty or malformed scope")
			return filter(scopes, permissions.ValidScope)
		}
	}
	return scopes
}

func filter(list []string, keep func(string) bool) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// v1Claims renders claims for a V1_0 answer, where values are strings:
// a list becomes one space-separated string.
func v1Claims(claims []permissions.Claim) map[string]string {
	if len(claims) == 0 {
		return nil
	}
	m := make(map[string]string, len(claims))
	for _, c := range claims {
		m[c.Name] = strings.Join(c.Values, " ")
	}
	return m
}

// v2Token renders one token's changes for a V2_0/V3_0 answer, where a list
// is a JSON array (never null). It returns nil when there is nothing to change.
func v2Token(t tokenOut) *TokenGeneration {
	if len(t.claims) == 0 && len(t.suppress) == 0 && len(t.scopesToAdd) == 0 && len(t.scopesToSuppress) == 0 {
		return nil
	}
	g := &TokenGeneration{ClaimsToSuppress: t.suppress, ScopesToAdd: t.scopesToAdd, ScopesToSuppress: t.scopesToSuppress}
	if len(t.claims) > 0 {
		g.ClaimsToAddOrOverride = make(map[string]any, len(t.claims))
		for _, c := range t.claims {
			switch {
			case c.Single:
				g.ClaimsToAddOrOverride[c.Name] = c.Values[0]
			case c.Values == nil:
				g.ClaimsToAddOrOverride[c.Name] = []string{}
			default:
				g.ClaimsToAddOrOverride[c.Name] = c.Values
			}
		}
	}
	return g
}

// over reports whether either token exceeds the budget of max JSON bytes.
func over(id, access tokenOut, v1 bool, max int) bool {
	return size(id, v1) > max || size(access, false) > max
}

// size is an upper bound on the JSON bytes that t adds to a token: the
// claims object and the scopes, space-separated as in the scope claim.
func size(t tokenOut, v1 bool) int {
	n := 2 // {}
	for i, c := range t.claims {
		if i > 0 {
			n++ // ,
		}
		n += jsonLen(c.Name) + 1 // "name":
		vlen := jsonLen
		if c.Plain {
			vlen = plainLen
		}
		switch {
		case v1 || c.Single:
			n += 2 + len(c.Values) - 1 // quotes and blanks
			if len(c.Values) == 0 {
				n++
			}
			for _, v := range c.Values {
				n += vlen(v) - 2
			}
		default:
			n += 2 + len(c.Values) // [] and commas (one more than needed: an upper bound)
			for _, v := range c.Values {
				n += vlen(v)
			}
		}
	}
	for _, s := range t.scopesToAdd {
		n += len(s) + 1
	}
	return n
}

// plainLen is the length of a role or permission name as a JSON string:
// validation allows no character that JSON escapes.
func plainLen(s string) int { return len(s) + 2 }

// jsonLen is an upper bound on the length of s as a JSON string, quotes included.
func jsonLen(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			n += 6
		default:
			n++
		}
	}
	return n
}
