// Package lambdatest runs a Lambda binary under the AWS Lambda runtime
// interface emulator (aws-lambda-rie) for end-to-end tests, and puts a
// counting, switchable proxy in front of DynamoDB Local.
package lambdatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pretoken/pretoken/internal/dynamotest"
)

// RIEVar names the variable that holds the path of aws-lambda-rie.
const RIEVar = "PRETOKEN_TEST_RIE"

// RIE returns the emulator's path, or skips the test (fails it when
// make test requires services).
func RIE(t testing.TB) string {
	t.Helper()
	p := dynamotest.Need(t, RIEVar, "aws-lambda-rie")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("aws-lambda-rie: %v (run make tools)", err)
	}
	return p
}

var (
	buildMu sync.Mutex
	builds  = map[string]string{} // package dir -> binary
)

// Build compiles the package in dir (relative to the test) once per test
// binary, for this machine, and returns the binary's path.
func Build(t testing.TB, dir string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if bin, ok := builds[abs]; ok {
		return bin
	}
	out, err := os.MkdirTemp("", "pretoken-bootstrap-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(out, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = abs
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, msg)
	}
	builds[abs] = bin
	return bin
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Function is a Lambda function running under the emulator.
type Function struct {
	URL     string
	Started time.Time
	logs    *syncBuffer
	stop    func()
}

// Stop ends the function and the emulator now; the test's end does it too.
func (f *Function) Stop() { f.stop() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logs returns what the function and the emulator printed so far.
func (f *Function) Logs() string { return f.logs.String() }

// Start runs binary under the emulator with env added to this process's
// environment, and stops it (the whole process group) when the test ends.
func Start(t testing.TB, binary string, env map[string]string) *Function {
	t.Helper()
	return start(t, binary, os.Environ(), env)
}

// StartIsolated is Start with an environment like Lambda's: PATH and env
// only, none of this machine's settings (such as a CA bundle that the SDK
// would load at every start).
func StartIsolated(t testing.TB, binary string, env map[string]string) *Function {
	t.Helper()
	return start(t, binary, []string{"PATH=" + os.Getenv("PATH")}, env)
}

func start(t testing.TB, binary string, base []string, env map[string]string) *Function {
	t.Helper()
	rie := RIE(t)
	port, apiPort := FreePort(t), FreePort(t)
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", port),
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", apiPort),
		binary)
	cmd.Env = base
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	f := &Function{URL: fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", port), logs: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = f.logs, f.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	f.Started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aws-lambda-rie: %v", err)
	}
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
	t.Cleanup(func() {
		f.stop()
		if t.Failed() {
			t.Logf("function output:\n%s", f.Logs())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("aws-lambda-rie did not listen within 10s:\n%s", f.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Answer is a function's answer: a response, or the error the Lambda
// runtime reports (which the emulator returns with HTTP 200).
type Answer struct {
	Body         []byte
	ErrorMessage string
}

// Invoke sends payload to the function.
func (f *Function) Invoke(t testing.TB, payload []byte) Answer {
	t.Helper()
	resp, err := http.Post(f.URL, "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke: HTTP %d: %s", resp.StatusCode, body)
	}
	var e struct {
		ErrorMessage *string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &e) == nil && e.ErrorMessage != nil {
		return Answer{ErrorMessage: *e.ErrorMessage}
	}
	return Answer{Body: body}
}

// Proxy forwards HTTP to a backend (DynamoDB Local) and counts requests by
// X-Amz-Target operation. It can play the faults of a real endpoint: down
// (every connection dropped, as when unreachable), slow (a delay before each
// request), or throttling (every request refused with ThrottlingException).
type Proxy struct {
	URL      string
	down     atomic.Bool
	throttle atomic.Bool
	delay    atomic.Int64
	mu       sync.Mutex
	counts   map[string]int
}

// NewProxy starts a proxy to backend; it stops when the test ends.
func NewProxy(t testing.TB, backend string) *Proxy {
	t.Helper()
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{counts: map[string]int{}}
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
		op := r.Header.Get("X-Amz-Target")
		p.mu.Lock()
		p.counts[strings.TrimPrefix(op, "DynamoDB_20120810.")]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	p.URL = "http://" + l.Addr().String()
	return p
}

// SetDown switches the proxy off (true) or on.
func (p *Proxy) SetDown(down bool) { p.down.Store(down) }

// SetThrottle makes the proxy answer every request as DynamoDB does when it
// throttles (true), or forward again.
func (p *Proxy) SetThrottle(on bool) { p.throttle.Store(on) }

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
