// Package routes owns what an API route needs and which configured route
// decides a request. It decides by what API Gateway matched: the HTTP API's
// routeKey, the REST API's resource and method, or (REST TOKEN authorizers,
// which are given only the method ARN) the actual path, matched segment by
// segment with everything ambiguous refused.
//
// The configured routes are totally ordered by specificity or refused: two
// routes that can match one request must be such that one matches a strict
// subset of what the other matches, and then the narrower one decides. So no
// decision depends on the order of the file or of a Go map.
package routes

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Rule is what one route needs; every check given must pass.
type Rule struct {
	Permission string `yaml:"permission"`
	Role       string `yaml:"role"`
	// Tenant is "{param}": the token's tenant must equal that path
	// parameter.
	Tenant string `yaml:"tenant"`
}

// Entry is one configured route: its key ("METHOD /path" or "$default")
// and its rule.
type Entry struct {
	Key  string
	Rule Rule
}

// Default is the key of the HTTP API's catch-all route, which API Gateway
// names in routeKey when no other route matched.
const Default = "$default"

// Methods are the methods a route may name. ANY is every method.
var Methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "ANY"}

// Route is one compiled route.
type Route struct {
	Key    string // as configured
	Method string
	// Template is the path template, "/orders/{id}"; "" for $default.
	Template string
	Rule
	segs []segment
}

type segKind int

const (
	literal segKind = iota
	param           // {name}: one segment
	greedy          // {name+}: one or more segments, last only
)

type segment struct {
	kind segKind
	text string // the literal, or the parameter's name
}

// Routes is a compiled, totally ordered route set. Its zero value has no
// routes and matches nothing.
type Routes struct {
	routes []Route // sorted narrowest first
	def    *Route
}

// Compile checks entries and orders them. It refuses a malformed key, an
// unknown or lower-case method, a path with "?", empty segments or a
// trailing slash, a rule that checks nothing, a tenant that is not a path
// parameter, and any two routes that can match the same request without
// one being strictly narrower than the other (duplicates included); the
// error names both.
func Compile(entries []Entry) (Routes, error) {
	if len(entries) == 0 {
		return Routes{}, errors.New("no routes: list the routes to allow (unlisted routes are denied)")
	}
	var rs Routes
	for _, e := range entries {
		r, err := parse(e)
		if err != nil {
			return Routes{}, err
		}
		if r.Key == Default {
			if rs.def != nil {
				return Routes{}, fmt.Errorf("route %q is listed twice", Default)
			}
			rs.def = &r
			continue
		}
		rs.routes = append(rs.routes, r)
	}
	// Refuse every ambiguous pair. Keys are sorted first so that the error
	// names the same pair whatever the order of entries.
	sorted := slices.Clone(rs.routes)
	slices.SortFunc(sorted, func(x, y Route) int { return cmp.Compare(x.Key, y.Key) })
	for i := range sorted {
		for j := i + 1; j < len(sorted); j++ {
			x, y := &sorted[i], &sorted[j]
			if !overlaps(x, y) {
				continue
			}
			xy, yx := covers(x, y), covers(y, x)
			switch {
			case xy && yx:
				return Routes{}, fmt.Errorf("routes %q and %q match the same requests; keep one", x.Key, y.Key)
			case !xy && !yx:
				return Routes{}, fmt.Errorf("routes %q and %q can match the same request and neither is narrower than the other; "+
					"change one so that one covers the other or they share no request", x.Key, y.Key)
			}
		}
	}
	// Narrowest first: a route before every route that covers it. Within
	// one overlap chain covers is a strict order; between routes that never
	// overlap the order decides nothing, and the key keeps it stable.
	slices.SortStableFunc(sorted, func(x, y Route) int { return cmp.Compare(x.Key, y.Key) })
	rs.routes = topo(sorted)
	return rs, nil
}

// topo orders routes so that a route comes before every route covering it.
func topo(rs []Route) []Route {
	out := make([]Route, 0, len(rs))
	done := make([]bool, len(rs))
	for len(out) < len(rs) {
		for i := range rs {
			if done[i] {
				continue
			}
			ready := true
			for j := range rs {
				if j != i && !done[j] && covers(&rs[i], &rs[j]) {
					ready = false // rs[j] is narrower and still waits
					break
				}
			}
			if ready {
				out = append(out, rs[i])
				done[i] = true
			}
		}
	}
	return out
}

func parse(e Entry) (Route, error) {
	r := Route{Key: e.Key, Rule: e.Rule}
	if e.Rule.Permission == "" && e.Rule.Role == "" && e.Rule.Tenant == "" {
		return r, fmt.Errorf("route %q checks nothing; list what it needs (or leave it out: unlisted routes are denied)", e.Key)
	}
	if e.Key == Default {
		if e.Rule.Tenant != "" {
			return r, fmt.Errorf("route %q has no path parameters for tenant %q", e.Key, e.Rule.Tenant)
		}
		return r, nil
	}
	method, path, ok := strings.Cut(e.Key, " ")
	if !ok || !strings.HasPrefix(path, "/") {
		return r, fmt.Errorf("route %q must be \"METHOD /path\" or %q", e.Key, Default)
	}
	if !slices.Contains(Methods, method) {
		return r, fmt.Errorf("route %q: method %q is not one of %s", e.Key, method, strings.Join(Methods, ", "))
	}
	segs, err := parseTemplate(path)
	if err != nil {
		return r, fmt.Errorf("route %q: %v", e.Key, err)
	}
	r.Method, r.Template, r.segs = method, path, segs
	if e.Rule.Tenant != "" {
		name, ok := strings.CutPrefix(e.Rule.Tenant, "{")
		name, ok2 := strings.CutSuffix(name, "}")
		if !ok || !ok2 || !slices.ContainsFunc(segs, func(s segment) bool { return s.kind == param && s.text == name }) {
			return r, fmt.Errorf("route %q: tenant %q is not one of its path parameters", e.Key, e.Rule.Tenant)
		}
	}
	return r, nil
}

func parseTemplate(path string) ([]segment, error) {
	if strings.ContainsAny(path, "?#%; \t") {
		return nil, fmt.Errorf("a path template has no query, fragment, escapes, ';' or blanks")
	}
	if path == "/" {
		return nil, nil
	}
	parts := strings.Split(path[1:], "/")
	segs := make([]segment, len(parts))
	names := map[string]bool{}
	for i, p := range parts {
		switch {
		case p == "":
			return nil, errors.New("empty segment or trailing slash")
		case p == "." || p == "..":
			return nil, errors.New("dot segment")
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			name := p[1 : len(p)-1]
			kind := param
			if n, ok := strings.CutSuffix(name, "+"); ok {
				if i != len(parts)-1 {
					return nil, fmt.Errorf("greedy parameter %s must be last", p)
				}
				name, kind = n, greedy
			}
			if name == "" || strings.ContainsAny(name, "{}+") || names[name] {
				return nil, fmt.Errorf("bad or repeated parameter %s", p)
			}
			names[name] = true
			segs[i] = segment{kind, name}
		case strings.ContainsAny(p, "{}"):
			return nil, fmt.Errorf("segment %q mixes text and a parameter", p)
		default:
			segs[i] = segment{literal, p}
		}
	}
	return segs, nil
}

// methodCovers reports whether every request method m matches, n matches.
func methodCovers(n, m string) bool { return n == "ANY" || n == m }

// segCovers reports whether every segment x matches, y matches (x, y not
// greedy).
func segCovers(y, x segment) bool {
	return y.kind != literal || (x.kind == literal && x.text == y.text)
}

func segOverlaps(x, y segment) bool {
	return x.kind != literal || y.kind != literal || x.text == y.text
}

func isGreedy(segs []segment) bool { return len(segs) > 0 && segs[len(segs)-1].kind == greedy }

// covers reports whether y matches every request x matches.
func covers(y, x *Route) bool {
	if !methodCovers(y.Method, x.Method) {
		return false
	}
	ys, xs := y.segs, x.segs
	switch gy, gx := isGreedy(ys), isGreedy(xs); {
	case !gy && gx:
		return false // x matches paths of any length
	case !gy && !gx:
		if len(ys) != len(xs) {
			return false
		}
	case gy && !gx:
		if len(xs) < len(ys) {
			return false
		}
	case gy && gx:
		if len(xs) < len(ys) {
			return false
		}
	}
	for i := range ys {
		if ys[i].kind == greedy {
			return true // the rest of x, one segment or more, is y's
		}
		if xs[i].kind == greedy || !segCovers(ys[i], xs[i]) {
			return false
		}
	}
	return true
}

// overlaps reports whether some request matches both x and y.
func overlaps(x, y *Route) bool {
	if !methodCovers(x.Method, y.Method) && !methodCovers(y.Method, x.Method) {
		return false
	}
	xs, ys := x.segs, y.segs
	gx, gy := isGreedy(xs), isGreedy(ys)
	if !gx && !gy && len(xs) != len(ys) {
		return false
	}
	if gx && !gy && len(ys) < len(xs) || gy && !gx && len(xs) < len(ys) {
		return false
	}
	for i := range min(len(xs), len(ys)) {
		if xs[i].kind == greedy || ys[i].kind == greedy {
			return true
		}
		if !segOverlaps(xs[i], ys[i]) {
			return false
		}
	}
	return true
}

// Errors a match can fail with. A refused request matches no route.
var (
	ErrNoRoute = errors.New("route not listed")
	ErrRefused = errors.New("request path refused")
)

// MatchKey finds the route for an HTTP API request by the routeKey API
// Gateway matched ("GET /orders/{id}", "ANY /{proxy+}" or "$default") and
// the request's method.
func (rs Routes) MatchKey(routeKey, method string) (*Route, error) {
	if routeKey == Default {
		if rs.def == nil {
			return nil, ErrNoRoute
		}
		return rs.def, nil
	}
	keyMethod, template, ok := strings.Cut(routeKey, " ")
	if !ok || keyMethod != "ANY" && keyMethod != method {
		return nil, fmt.Errorf("%w: route key and method disagree", ErrRefused)
	}
	return rs.MatchTemplate(method, template)
}

// MatchTemplate finds the route for the resource (path template) API
// Gateway matched and the request's method: the route with that very
// template (parameter names included) and the method, else ANY.
func (rs Routes) MatchTemplate(method, template string) (*Route, error) {
	if !slices.Contains(Methods, method) || method == "ANY" {
		return nil, fmt.Errorf("%w: method", ErrRefused)
	}
	var found *Route
	for i := range rs.routes {
		r := &rs.routes[i]
		if r.Template == template && methodCovers(r.Method, method) && (found == nil || found.Method == "ANY") {
			found = r
		}
	}
	if found == nil {
		return nil, ErrNoRoute
	}
	return found, nil
}

// MatchPath finds the route for an actual request path, as the REST TOKEN
// authorizer's method ARN holds it, and the path parameters' values. Each
// segment is percent-decoded before it is matched. A path with an encoded
// slash, a dot segment, a ";" parameter, an empty segment, or a segment
// that equals a route's literal in another case is refused, so no spelling
// of a path reaches a wider route than the backend would serve.
func (rs Routes) MatchPath(method, path string) (*Route, map[string]string, error) {
	if !slices.Contains(Methods, method) || method == "ANY" {
		return nil, nil, fmt.Errorf("%w: method", ErrRefused)
	}
	segs, err := SplitPath(path)
	if err != nil {
		return nil, nil, err
	}
	// A segment that is a route's literal in another case ("/Export" where
	// "/export" is listed) could reach a parameter route while the backend
	// serves the literal one: refuse it, unless it is itself a literal.
	for j, seg := range segs {
		exact, folded := false, false
		for i := range rs.routes {
			if r := &rs.routes[i]; j < len(r.segs) && r.segs[j].kind == literal {
				exact = exact || r.segs[j].text == seg
				folded = folded || strings.EqualFold(r.segs[j].text, seg)
			}
		}
		if folded && !exact {
			return nil, nil, fmt.Errorf("%w: segment %d differs from a route only by case", ErrRefused, j+1)
		}
	}
	for i := range rs.routes { // narrowest first
		r := &rs.routes[i]
		if !methodCovers(r.Method, method) {
			continue
		}
		if params, ok := r.match(segs); ok {
			return r, params, nil
		}
	}
	return nil, nil, ErrNoRoute
}

// Params checks the path parameters API Gateway passed for r (HTTP API and
// REST REQUEST events) and returns r's, decoded: a value must be a clean
// segment (CleanSegment), a greedy one clean segments joined by "/".
func (r *Route) Params(raw map[string]string) (map[string]string, error) {
	params := map[string]string{}
	for _, s := range r.segs {
		if s.kind == literal {
			continue
		}
		v, ok := raw[s.text]
		if !ok {
			return nil, fmt.Errorf("%w: path parameter %q missing", ErrRefused, s.text)
		}
		if s.kind == greedy {
			parts := strings.Split(v, "/")
			for i, p := range parts {
				d, err := CleanSegment(p)
				if err != nil {
					return nil, err
				}
				parts[i] = d
			}
			params[s.text] = strings.Join(parts, "/")
			continue
		}
		d, err := CleanSegment(v)
		if err != nil {
			return nil, err
		}
		params[s.text] = d
	}
	return params, nil
}

func (r *Route) match(segs []string) (map[string]string, bool) {
	if isGreedy(r.segs) {
		if len(segs) < len(r.segs) {
			return nil, false
		}
	} else if len(segs) != len(r.segs) {
		return nil, false
	}
	params := map[string]string{}
	for i, s := range r.segs {
		switch s.kind {
		case literal:
			if segs[i] != s.text {
				return nil, false
			}
		case param:
			params[s.text] = segs[i]
		case greedy:
			params[s.text] = strings.Join(segs[i:], "/")
		}
	}
	return params, true
}

// SplitPath splits an actual path into decoded segments, refusing what
// could be read two ways: an encoded slash or backslash, a dot segment
// (plain or encoded), a ";" parameter, an empty segment, a bad escape.
func SplitPath(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("%w: not an absolute path", ErrRefused)
	}
	if path == "/" {
		return nil, nil
	}
	raw := strings.Split(path[1:], "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		d, err := CleanSegment(s)
		if err != nil {
			return nil, err
		}
		segs[i] = d
	}
	return segs, nil
}

// CleanSegment decodes one path segment (or a path parameter's value) and
// refuses it if it is empty, a dot segment, or holds a slash, a backslash,
// a ";", a control character or a bad escape.
func CleanSegment(s string) (string, error) {
	d, err := url.PathUnescape(s)
	if err != nil {
		return "", fmt.Errorf("%w: bad escape", ErrRefused)
	}
	switch {
	case d == "":
		return "", fmt.Errorf("%w: empty segment", ErrRefused)
	case d == "." || d == "..":
		return "", fmt.Errorf("%w: dot segment", ErrRefused)
	case strings.ContainsAny(d, "/\\;"):
		return "", fmt.Errorf("%w: encoded slash or ';' parameter", ErrRefused)
	case strings.ContainsFunc(d, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", fmt.Errorf("%w: control character", ErrRefused)
	}
	return d, nil
}

// All returns the compiled routes, narrowest first, then $default.
func (rs Routes) All() []Route {
	out := slices.Clone(rs.routes)
	if rs.def != nil {
		out = append(out, *rs.def)
	}
	return out
}
