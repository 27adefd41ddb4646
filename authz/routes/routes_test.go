package routes

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func compile(t *testing.T, keys ...string) Routes {
	t.Helper()
	rs, err := Compile(entries(keys...))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func entries(keys ...string) []Entry {
	var es []Entry
	for _, k := range keys {
		es = append(es, Entry{Key: k, Rule: Rule{Role: "r-" + k}})
	}
	return es
}

// The review's cycle: ANY /orders/export and GET /orders/{id} both match
// GET /orders/export and neither is narrower, so no order between them is
// right: the set is refused, naming both.
func TestAmbiguousRoutesRefused(t *testing.T) {
	for _, keys := range [][]string{
		{"ANY /orders", "GET /orders/{id}", "ANY /orders/export"},
		{"GET /admin", "GET /admin"},
		{"GET /a/{x}", "GET /a/{y}"},
		{"GET /{a}/b", "GET /a/{b}"},
		{"GET /{p+}", "ANY /a/{q+}"},
		{"ANY /orders/mine", "GET /orders/{id}", "GET /orders/mine"}, // an overlap route does not make a pair comparable
		{"GET /x/{p+}", "GET /{a}/y"},
	} {
		_, err := Compile(entries(keys...))
		if err == nil {
			t.Errorf("%q accepted", keys)
			continue
		}
		named := 0
		for _, k := range keys {
			if strings.Contains(err.Error(), fmt.Sprintf("%q", k)) {
				named++
			}
		}
		if named < 2 {
			t.Errorf("%q: error %q does not name both routes", keys, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, keys := range [][]string{
		nil,
		{"get /admin"},
		{"get /admin", "GET /admin"},
		{"GET /reports/", "GET /reports"},
		{"GET /reports/"},
		{"FETCH /x"},
		{"GET /x?y=1"},
		{"GET //x"},
		{"GET /a/../b"},
		{"GET /a;b"},
		{"GET /a%2Fb"},
		{"GET x"},
		{"GET /{p+}/x"},
		{"GET /{a}/{a}"},
		{"GET /a{b}"},
		{"$default", "$default"},
	} {
		if _, err := Compile(entries(keys...)); err == nil {
			t.Errorf("%q accepted", keys)
		}
	}
	for _, e := range []Entry{
		{Key: "GET /x"},
		{Key: "GET /x/{id}", Rule: Rule{Tenant: "{t}"}},
		{Key: "GET /x/{id}", Rule: Rule{Tenant: "id"}},
		{Key: "$default", Rule: Rule{Tenant: "{t}"}},
	} {
		if _, err := Compile([]Entry{e}); err == nil {
			t.Errorf("%+v accepted", e)
		}
	}
}

func TestMatchPath(t *testing.T) {
	rs := compile(t, "GET /orders/{id}", "GET /orders/export", "POST /orders/mine", "GET /orders/mine",
		"GET /tenants/{tenant}/orders/{id}", "ANY /files/{p+}")
	for _, c := range []struct {
		method, path, want string
		refused            bool
	}{
		{"GET", "/orders/export", "GET /orders/export", false},
		{"GET", "/orders/%65xport", "GET /orders/export", false}, // decoded, then matched
		{"GET", "/orders/o-1", "GET /orders/{id}", false},
		{"GET", "/orders/mine", "GET /orders/mine", false},
		{"POST", "/orders/mine", "POST /orders/mine", false},
		{"DELETE", "/orders/mine", "", false},
		{"GET", "/orders/Export", "", true},
		{"GET", "/orders/EXPORT", "", true},
		{"GET", "/orders/export;jsessionid=1", "", true},
		{"GET", "/orders/%2e%2e%2fadmin", "", true},
		{"GET", "/orders/..", "", true},
		{"GET", "/orders/.", "", true},
		{"GET", "/orders/%2E", "", true},
		{"GET", "/orders/a%2Fb", "", true},
		{"GET", "/orders/a%5Cb", "", true},
		{"GET", "/orders//", "", true},
		{"GET", "/orders/%zz", "", true},
		{"GET", "/tenants/acme/orders/..%2F..%2Fglobex%2Forders%2F1", "", true},
		{"GET", "/files/a/b/c", "ANY /files/{p+}", false},
		{"GET", "/files/a/../c", "", true},
		{"GET", "/files", "", false},
		{"get", "/orders/o-1", "", true},
	} {
		r, _, err := rs.MatchPath(c.method, c.path)
		switch {
		case c.refused && !errors.Is(err, ErrRefused):
			t.Errorf("%s %s: %v, %v; want refused", c.method, c.path, r, err)
		case !c.refused && c.want == "" && !errors.Is(err, ErrNoRoute):
			t.Errorf("%s %s: %v, %v; want no route", c.method, c.path, r, err)
		case c.want != "" && (err != nil || r.Key != c.want):
			t.Errorf("%s %s: %v, %v; want %s", c.method, c.path, r, err, c.want)
		}
	}
	_, params, err := rs.MatchPath("GET", "/tenants/acme/orders/o%2D1")
	if err != nil || params["tenant"] != "acme" || params["id"] != "o-1" {
		t.Errorf("params %v, %v", params, err)
	}
}

func TestMatchKeyAndTemplate(t *testing.T) {
	rs := compile(t, "GET /orders/{id}", "ANY /orders/{id}", "GET /orders/export", "$default")
	for _, c := range []struct{ key, method, want string }{
		{"GET /orders/{id}", "GET", "GET /orders/{id}"},
		{"ANY /orders/{id}", "GET", "GET /orders/{id}"}, // the method's own route is narrower
		{"ANY /orders/{id}", "POST", "ANY /orders/{id}"},
		{"GET /orders/export", "GET", "GET /orders/export"},
		{"$default", "GET", "$default"},
		{"GET /orders/{orderId}", "GET", ""}, // another template: not ours
		{"POST /orders/{id}", "GET", ""},     // the key's method is not the request's
		{"GET /orders/{id}/", "GET", ""},
	} {
		r, err := rs.MatchKey(c.key, c.method)
		got := ""
		if err == nil {
			got = r.Key
		}
		if got != c.want {
			t.Errorf("MatchKey(%q, %s) = %q, %v; want %q", c.key, c.method, got, err, c.want)
		}
	}
	if _, err := compile(t, "GET /x").MatchKey("$default", "GET"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("$default without a $default route: %v", err)
	}
	r, _ := rs.MatchTemplate("GET", "/orders/{id}")
	for _, raw := range []map[string]string{{"id": "..%2Fadmin"}, {"id": "../admin"}, {"id": "a;b"}, {"id": ""}, {}} {
		if p, err := r.Params(raw); !errors.Is(err, ErrRefused) {
			t.Errorf("params %v: %v, %v", raw, p, err)
		}
	}
	if p, err := r.Params(map[string]string{"id": "o-1", "other": "x"}); err != nil || len(p) != 1 || p["id"] != "o-1" {
		t.Errorf("params: %v, %v", p, err)
	}
}

// Property: over random route sets, Compile either refuses every shuffle
// with the same error or accepts every shuffle, and then every request gets
// the same route, which is the narrowest of the routes that match it (all
// others that match it cover it). Overlap and cover are checked against
// brute force over concrete paths, so a cycle like the review's cannot hide.
func TestRouteOrderProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lits := []string{"a", "b"}
	methods := []string{"GET", "POST", "ANY"}
	randKey := func() string {
		n := 1 + rng.IntN(3)
		var segs []string
		for i := range n {
			switch x := rng.IntN(5); {
			case x < 2:
				segs = append(segs, lits[x])
			case x < 4:
				segs = append(segs, fmt.Sprintf("{p%d}", i))
			default:
				if i == n-1 {
					segs = append(segs, fmt.Sprintf("{g%d+}", i))
				} else {
					segs = append(segs, "a")
				}
			}
		}
		return methods[rng.IntN(len(methods))] + " /" + strings.Join(segs, "/")
	}
	// Concrete requests: every path up to 4 segments over lits and "z".
	var paths []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		if depth > 0 {
			paths = append(paths, prefix)
		}
		if depth == 4 {
			return
		}
		for _, l := range append(lits, "z") {
			gen(prefix+"/"+l, depth+1)
		}
	}
	gen("", 0)
	reqMethods := []string{"GET", "POST", "DELETE"}
	accepted := 0
	for range 400 {
		var keys []string
		for range 2 + rng.IntN(4) {
			keys = append(keys, randKey())
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
		first, err := Compile(entries(keys...))
		// Oracle: refused iff two routes match a common request and
		// neither matches all the other's requests.
		matches := func(k string) map[string]bool {
			m := map[string]bool{}
			r, _ := Compile(entries(k))
			for _, meth := range reqMethods {
				for _, p := range paths {
					if got, _, err := r.MatchPath(meth, p); err == nil && got.Key == k {
						m[meth+" "+p] = true
					}
				}
			}
			return m
		}
		sets := map[string]map[string]bool{}
		for _, k := range keys {
			sets[k] = matches(k)
		}
		ambiguous := false
		for _, x := range keys {
			for _, y := range keys {
				if x >= y {
					continue
				}
				common, xInY, yInX := false, true, true
				for req := range sets[x] {
					common = common || sets[y][req]
					xInY = xInY && sets[y][req]
				}
				for req := range sets[y] {
					yInX = yInX && sets[x][req]
				}
				if common && (xInY == yInX) {
					ambiguous = true
				}
			}
		}
		if (err != nil) != ambiguous {
			t.Fatalf("%q: Compile error %v, ambiguous by brute force %v", keys, err, ambiguous)
		}
		for range 3 {
			shuffled := slices.Clone(keys)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			rs, err2 := Compile(entries(shuffled...))
			if fmt.Sprint(err) != fmt.Sprint(err2) {
				t.Fatalf("%q: %v; shuffled %q: %v", keys, err, shuffled, err2)
			}
			if err != nil {
				continue
			}
			for _, meth := range reqMethods {
				for _, p := range paths {
					a, _, _ := first.MatchPath(meth, p)
					b, _, _ := rs.MatchPath(meth, p)
					if (a == nil) != (b == nil) || a != nil && a.Key != b.Key {
						t.Fatalf("%q: %s %s matched %v, shuffled %v", keys, meth, p, a, b)
					}
					if a == nil {
						for _, k := range keys {
							if sets[k][meth+" "+p] {
								t.Fatalf("%q: %s %s matches %s but got no route", keys, meth, p, k)
							}
						}
						continue
					}
					for _, k := range keys { // the winner is the narrowest
						if sets[k][meth+" "+p] {
							for req := range sets[a.Key] {
								if !sets[k][req] {
									t.Fatalf("%q: %s %s went to %s, which %s does not cover", keys, meth, p, a.Key, k)
								}
							}
						}
					}
				}
			}
		}
		if err == nil {
			accepted++
		}
	}
	t.Logf("%d of 400 random route sets accepted", accepted)
	if accepted < 40 {
		t.Errorf("only %d of 400 random route sets accepted: the property is barely exercised", accepted)
	}
}
