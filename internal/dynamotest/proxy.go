package dynamotest

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards HTTP to a backend (DynamoDB Local), counts requests by
// operation, and records the IAM actions that each request needs in AWS: the
// evidence that the shipped IAM policies are checked against. It can also
// play the faults of a real endpoint: down (every connection dropped, as
// when unreachable), slow (a delay before each request), throttling (every
// request refused with ThrottlingException), hanging (the connection is
// accepted and never answered), a lost answer (the request reaches DynamoDB
// and takes effect, the answer never comes back: an unknown outcome), and a
// held request (kept back until released, then delivered however late).
type Proxy struct {
	URL      string
	down     atomic.Bool
	throttle atomic.Bool
	hang     atomic.Bool
	delay    atomic.Int64
	mu       sync.Mutex
	counts   map[string]int
	actions  map[string]bool
	reads    []Read
	lose     map[string]int // operation -> answers still to lose
	skip     map[string]int // operation -> requests to answer before losing
	answer   map[string][]string
	hold     map[string]*held
	backend  *url.URL
}

// NewProxy starts a proxy to backend; it stops when the test ends.
func NewProxy(t testing.TB, backend string) *Proxy {
	t.Helper()
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{counts: map[string]int{}, actions: map[string]bool{}, lose: map[string]int{}, skip: map[string]int{},
		answer: map[string][]string{}, hold: map[string]*held{}, backend: u}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // cancelled requests are the point of some tests
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if p.hang.Load() {
			<-r.Context().Done() // until the client gives up or the proxy closes
			return
		}
		if d := time.Duration(p.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if p.throttle.Load() {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}`)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
		p.mu.Lock()
		p.counts[op]++
		for _, a := range IAMActions(op, body) {
			p.actions[a] = true
		}
		if r, ok := readOf(op, body); ok {
			p.reads = append(p.reads, r)
		}
		lose := p.lose[op] > 0 && p.skip[op] == 0
		switch {
		case lose:
			p.lose[op]--
		case p.skip[op] > 0:
			p.skip[op]--
		}
		var canned string
		if a := p.answer[op]; len(a) > 0 {
			canned, p.answer[op] = a[0], a[1:]
		}
		h := p.hold[op]
		if h != nil {
			if h.n--; h.n == 0 {
				delete(p.hold, op)
			}
			h.wg.Add(1)
		}
		p.mu.Unlock()
		switch {
		case canned != "":
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, canned)
		case h != nil:
			<-h.release
			p.deliver(r, body) // however late: the caller may have given up long ago
			h.wg.Done()
		case lose:
			p.deliver(r, body)
			<-r.Context().Done()
		default:
			rp.ServeHTTP(w, r)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	p.URL = "http://" + l.Addr().String()
	return p
}

// IAMActions returns the IAM actions that a DynamoDB request needs, from its
// operation (the X-Amz-Target suffix) and JSON body. Most operations are
// their own action; a transaction needs the action of each part instead
// (Amazon DynamoDB developer guide, "Using IAM with DynamoDB transactions":
// Put, Update, Delete and Get are governed by PutItem, UpdateItem,
// DeleteItem and GetItem, and ConditionCheck by ConditionCheckItem).
func IAMActions(op string, body []byte) []string {
	switch op {
	case "":
		return nil
	case "TransactWriteItems", "TransactGetItems":
		var in struct {
			TransactItems []map[string]json.RawMessage
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return []string{"dynamodb:" + op + "(unreadable)"}
		}
		parts := map[string]string{"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
			"ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
		var out []string
		for _, it := range in.TransactItems {
			for k := range it {
				a, ok := parts[k]
				if !ok {
					a = op + "." + k
				}
				if !slices.Contains(out, "dynamodb:"+a) {
					out = append(out, "dynamodb:"+a)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	return []string{"dynamodb:" + op}
}

// Read is one read request as it went over the wire: its operation, the
// partition key it reads (PK in a Key, or the :pk of a Query), and whether
// it asked for a strongly consistent read. A BatchGetItem is consistent
// when every table in it asks to be.
type Read struct {
	Op         string
	Partition  string
	Consistent bool
}

func readOf(op string, body []byte) (Read, bool) {
	var in struct {
		ConsistentRead            bool
		Key                       map[string]map[string]any
		ExpressionAttributeValues map[string]map[string]any
		RequestItems              map[string]struct{ ConsistentRead bool }
	}
	switch op {
	case "GetItem", "Query", "Scan", "BatchGetItem":
	default:
		return Read{}, false
	}
	if json.Unmarshal(body, &in) != nil {
		return Read{Op: op}, true
	}
	r := Read{Op: op, Consistent: in.ConsistentRead}
	if pk, ok := in.Key["PK"]["S"].(string); ok {
		r.Partition = pk
	} else if pk, ok := in.ExpressionAttributeValues[":pk"]["S"].(string); ok {
		r.Partition = pk
	}
	if op == "BatchGetItem" {
		r.Consistent = len(in.RequestItems) > 0
		for _, t := range in.RequestItems {
			r.Consistent = r.Consistent && t.ConsistentRead
		}
	}
	return r, true
}

// Reads returns the read requests forwarded since the last call, in order,
// and resets them.
func (p *Proxy) Reads() []Read {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reads
	p.reads = nil
	return r
}

// deliver sends the request to the backend on its own, without the
// caller's context, and discards the answer.
func (p *Proxy) deliver(r *http.Request, body []byte) {
	req, err := http.NewRequest(r.Method, p.backend.String()+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header = r.Header.Clone()
	if resp, err := http.DefaultTransport.RoundTrip(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// LoseAnswers makes the next n requests of operation op reach DynamoDB and
// take effect, and their answers never come back: the caller sees a timeout.
func (p *Proxy) LoseAnswers(op string, n int) { p.LoseAnswersAfter(op, 0, n) }

// LoseAnswersAfter answers the next skip requests of op, then loses the
// answers of n more, as LoseAnswers.
func (p *Proxy) LoseAnswersAfter(op string, skip, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lose[op], p.skip[op] = n, skip
}

// Refuse answers the next request of op with a DynamoDB error (HTTP 400
// and body, the JSON DynamoDB sends, such as a TransactionCanceledException
// with its CancellationReasons) instead of forwarding it: the request
// never reaches DynamoDB. Each call queues one answer.
func (p *Proxy) Refuse(op, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer[op] = append(p.answer[op], body)
}

type held struct {
	n       int
	release chan struct{}
	wg      sync.WaitGroup
}

// Hold keeps the next n requests of operation op back until the returned
// function is called, which delivers them to DynamoDB (their callers have
// usually given up by then) and returns once they have landed.
func (p *Proxy) Hold(op string, n int) (release func()) {
	h := &held{n: n, release: make(chan struct{})}
	p.mu.Lock()
	p.hold[op] = h
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			if p.hold[op] == h {
				delete(p.hold, op)
			}
			p.mu.Unlock()
			close(h.release)
			h.wg.Wait()
		})
	}
}

// SetDown switches the proxy off (true) or on.
func (p *Proxy) SetDown(down bool) { p.down.Store(down) }

// SetThrottle makes the proxy answer every request as DynamoDB does when it
// throttles (true), or forward again.
func (p *Proxy) SetThrottle(on bool) { p.throttle.Store(on) }

// SetHang makes the proxy accept every request and never answer it (true):
// a store that takes connections and does not respond.
func (p *Proxy) SetHang(on bool) { p.hang.Store(on) }

// SetDelay makes every forwarded request wait d first.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Counts returns the requests forwarded so far, by operation, and resets them.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	p.counts = map[string]int{}
	return c
}

// Actions returns the IAM actions that the forwarded requests needed since
// the last call, sorted, and resets them.
func (p *Proxy) Actions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.actions))
	for a := range p.actions {
		out = append(out, a)
	}
	p.actions = map[string]bool{}
	slices.Sort(out)
	return out
}
