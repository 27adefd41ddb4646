package trigger

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

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
// yields a reserved claim, a malformed scope or a scope that Cognito gives a
// meaning of its own; this is the last line of defence should one reach the
// trigger some other way, and it records each thing it drops for the log
// line. rolesOnly drops permission claims and scopes.
func (h *Handler) tokens(res permissions.Result, machine, rolesOnly bool, dec *Decision) (id, access tokenOut) {
	if !machine {
		id = token(res.ID, permissions.IDToken, rolesOnly, dec)
	}
	access = token(res.Access, permissions.AccessToken, rolesOnly, dec)
	return id, access
}

func token(c permissions.TokenChanges, tok permissions.Token, rolesOnly bool, dec *Decision) tokenOut {
	var out tokenOut
	out.claims = c.Claims[:0:0]
	suppress := c.ClaimsToSuppress
	if len(c.Unset) > 0 {
		suppress = append(slices.Clip(suppress), c.Unset...)
	}
	for _, cl := range c.Claims {
		if rolesOnly && cl.DropFirst {
			// Dropped for size: suppressed, so that nothing else passes
			// for it under its name.
			suppress = append(slices.Clip(suppress), cl.Name)
			continue
		}
		if _, shadows := permissions.ShadowsClaim(cl.Name); shadows || permissions.CheckAddClaim(cl.Name, tok) != nil {
			dec.drop(tok.String() + " claim " + cl.Name)
			continue
		}
		out.claims = append(out.claims, cl)
	}
	out.suppress = keep(suppress, dec, func(n string) bool { return permissions.CheckSuppressClaim(n, tok) == nil },
		tok.String()+" claim to suppress ")
	if !rolesOnly {
		out.scopesToAdd = keep(c.ScopesToAdd, dec, func(s string) bool {
			_, cognito := permissions.CognitoScopes[s]
			return permissions.ValidScope(s) && !cognito
		}, "scope to add ")
	}
	out.scopesToSuppress = keep(c.ScopesToSuppress, dec, permissions.ValidScope, "scope to suppress ")
	return out
}

// keep returns list without the entries ok refuses, recording each one.
// It allocates only when something is dropped.
func keep(list []string, dec *Decision, ok func(string) bool, what string) []string {
	for i, s := range list {
		if ok(s) {
			continue
		}
		out := append([]string(nil), list[:i]...)
		for _, s := range list[i:] {
			if ok(s) {
				out = append(out, s)
			} else {
				dec.drop(what + strconv.Quote(s))
			}
		}
		return out
	}
	return list
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

// growth is the number of bytes by which t's changes grow the encoded
// token: the base64url JWT payload. The JSON growth is counted with
// encoding/json's escaping (quotes, backslashes and control characters,
// "<", ">", "&", U+2028, U+2029, invalid UTF-8), each claim as a new member
// of the payload object and each scope as a blank and the scope appended to
// the scope claim; base64url then turns d bytes of JSON into at most
// ceil(4d/3) more bytes. Suppressions can only shrink a token and are not
// counted, so the figure is an upper bound, and within a few percent of the
// real growth (the property test in tokens_test.go checks both).
func growth(t tokenOut, v1 bool) int {
	d := 0
	for _, c := range t.claims {
		d += 1 + jsonLen(c.Name) + 1 // ,"name":
		switch {
		case v1 || c.Single:
			d += 2 // the quotes of one string
			for i, v := range c.Values {
				if i > 0 {
					d++ // the blank between list items in a V1 string
				}
				d += jsonLen(v) - 2
			}
		default:
			d += 2 // []
			for i, v := range c.Values {
				if i > 0 {
					d++ // ,
				}
				d += jsonLen(v)
			}
		}
	}
	for _, s := range t.scopesToAdd {
		d += 1 + jsonLen(s) - 2
	}
	return (4*d + 2) / 3
}

// jsonLen is the length of s as a JSON string, quotes included, as
// encoding/json writes it.
func jsonLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"', c == '\\', c == '\b', c == '\f', c == '\n', c == '\r', c == '\t':
				n += 2
			case c < 0x20, c == '<', c == '>', c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
