package authz

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// claimSet is a JWT header or payload as raw JSON values by their exact
// names. go-json-experiment/json decodes it: names match exactly
// (encoding/json would let "Username" fill username), a duplicate name is
// an error, and a value is parsed only when it is read, which keeps Verify
// near the cost of the signature check.
type claimSet map[string]jsontext.Value

func parseSet(b []byte) (claimSet, error) {
	m := claimSet{}
	if err := jsonv2.Unmarshal(b, (*map[string]jsontext.Value)(&m)); err != nil {
		return nil, err
	}
	return m, nil
}

// date reads a NumericDate, which must be a JSON number (RFC 7519 §2).
func (c claimSet) date(name string) (t time.Time, present bool, err error) {
	v, ok := c[name]
	if !ok {
		return time.Time{}, false, nil
	}
	if v.Kind() != '0' {
		return time.Time{}, true, fmt.Errorf("%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return time.Time{}, true, fmt.Errorf("%s is not a number", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// str reads a string claim: ok is false when it is present and not a
// string.
func (c claimSet) str(name string) (string, bool) {
	v, present := c[name]
	if !present {
		return "", true
	}
	if v.Kind() != '"' {
		return "", false
	}
	// The parse has validated the value (UTF-8 included): without an
	// escape, the string is what lies between the quotes.
	if len(v) >= 2 && !strings.ContainsRune(string(v[1:len(v)-1]), '\\') {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	if err := jsonv2.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// value decodes one claim, or nil.
func (c claimSet) value(name string) any {
	v, ok := c[name]
	if !ok {
		return nil
	}
	var x any
	if json.Unmarshal(v, &x) != nil {
		return nil
	}
	return x
}

var b64 = base64.RawURLEncoding.Strict()

// verifyJWS checks a compact JWS as Cognito signs it: three base64url
// parts without padding, a header with alg RS256, a string kid and no
// crit, and an RS256 signature by the key that key returns for the kid.
// Only then is the payload parsed. headers remembers the kid of each
// header that has carried a valid signature (a pool signs with a few
// keys, so a few headers), which saves parsing it again; a header no
// signature vouched for is never remembered.
func verifyJWS(token string, headers *sync.Map, key func(kid string) (*rsa.PublicKey, error)) (claimSet, error) {
	h, rest, ok1 := strings.Cut(token, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s, ".") {
		return nil, errors.New("not a JWS in compact form")
	}
	kid, known := "", false
	if v, ok := headers.Load(h); ok {
		kid, known = v.(string), true
	} else {
		var err error
		if kid, err = parseHeader(h); err != nil {
			return nil, err
		}
	}
	pub, err := key(kid)
	if err != nil {
		return nil, err
	}
	sig, err := b64.DecodeString(s)
	if err != nil {
		return nil, errors.New("signature is not base64url")
	}
	sum := sha256.Sum256([]byte(token[:len(h)+1+len(p)]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return nil, errors.New("signature is invalid")
	}
	if !known {
		headers.Store(h, kid)
	}
	pb, err := b64.DecodeString(p)
	if err != nil {
		return nil, errors.New("payload is not base64url")
	}
	claims, err := parseSet(pb)
	if err != nil {
		return nil, fmt.Errorf("payload is not a JSON object without duplicate names")
	}
	return claims, nil
}

// parseHeader checks a JWS header and returns its kid.
func parseHeader(h string) (string, error) {
	hb, err := b64.DecodeString(h)
	if err != nil {
		return "", errors.New("header is not base64url")
	}
	header, err := parseSet(hb)
	if err != nil {
		return "", errors.New("header is not a JSON object without duplicate names")
	}
	if alg, _ := header.str("alg"); alg != "RS256" {
		return "", fmt.Errorf("alg %q: only RS256 is accepted", truncate(alg))
	}
	if _, ok := header["crit"]; ok {
		return "", errors.New("crit header: no extension is understood (RFC 7515 4.1.11)")
	}
	kid, ok := header.str("kid")
	if _, present := header["kid"]; !ok || !present {
		return "", errors.New("kid is missing or not a string")
	}
	return kid, nil
}

// checkClaims checks the registered claims as aws-jwt-verify does, and
// more: iss exact; exp present and numeric, not passed (skew allowed);
// nbf numeric, reached; iat numeric and not more than a minute (plus skew)
// ahead; aud (in either token), scope and jti strings where present.
func checkClaims(c claimSet, issuer string, now time.Time, skew time.Duration) error {
	if iss, ok := c.str("iss"); !ok || iss != issuer {
		return errors.New("issued by another issuer")
	}
	exp, present, err := c.date("exp")
	switch {
	case err != nil:
		return err
	case !present:
		return errors.New("no exp")
	case now.After(exp.Add(skew)):
		return errors.New("token is expired")
	}
	if nbf, _, err := c.date("nbf"); err != nil {
		return err
	} else if now.Add(skew).Before(nbf) {
		return errors.New("token is not valid yet")
	}
	if iat, _, err := c.date("iat"); err != nil {
		return err
	} else if iat.After(now.Add(time.Minute + skew)) {
		return errors.New("token used before issued")
	}
	for _, name := range []string{"aud", "scope", "jti", "sub"} {
		if _, ok := c.str(name); !ok {
			return fmt.Errorf("%s is not a string", name)
		}
	}
	return nil
}
