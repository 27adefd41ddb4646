// Package lambdatest runs a Lambda binary under the AWS Lambda runtime
// interface emulator (aws-lambda-rie) for end-to-end tests.
package lambdatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pretoken/pretoken/internal/testenv"
)

// RIEVar names the variable that holds the path of aws-lambda-rie.
const RIEVar = "PRETOKEN_TEST_RIE"

// RIE returns the emulator's path, or skips the test (fails it when
// make test requires services).
func RIE(t testing.TB) string {
	t.Helper()
	p := testenv.Need(t, RIEVar, "aws-lambda-rie")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("aws-lambda-rie: %v (run make tools)", err)
	}
	return p
}

// Build compiles the package in dir (relative to the test) for this machine
// into the test's temporary directory, which is removed when the test ends,
// and returns the binary's path. Go's build cache makes a second build of
// the same package a link only.
func Build(t testing.TB, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static, as make build makes the Lambda's
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, msg)
	}
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
	// FreePort's ports were free a moment ago; a test running beside this
	// one can take one first, and the emulator then exits at once. A fresh
	// pair of ports is tried then, twice at most.
	for attempt := 1; ; attempt++ {
		f, taken := launch(t, binary, base, env)
		if !taken {
			return f
		}
		if attempt == 3 {
			t.Fatalf("aws-lambda-rie found its ports taken three times:\n%s", f.Logs())
		}
	}
}

// launch starts the emulator on two free ports; taken is true when one of
// them was taken meanwhile (the emulator is stopped then).
func launch(t testing.TB, binary string, base []string, env map[string]string) (f *Function, taken bool) {
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
	f = &Function{URL: fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", port), logs: &syncBuffer{}}
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
			return f, false
		}
		if strings.Contains(f.Logs(), "address already in use") {
			f.stop()
			return f, true
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
