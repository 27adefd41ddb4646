// Package cognitotest runs cognito-local, the Cognito user pool emulator
// that make test installs, for tests that need real signed tokens or the
// user pool API.
package cognitotest

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
	"syscall"
	"testing"
	"time"

	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/internal/testenv"
)

// Var names the variable that holds the path of cognito-local.
const Var = "PRETOKEN_TEST_COGNITO_LOCAL"

// Start runs cognito-local on a free loopback port and returns its base URL.
// With lambdaEndpoint set, it calls the pre token generation trigger through
// the Lambda Invoke API there (aws-lambda-rie's, function name "function").
// It stops when the test ends.
func Start(t *testing.T, lambdaEndpoint string) string {
	t.Helper()
	bin := testenv.Need(t, Var, "cognito-local")
	dir := t.TempDir()
	port := lambdatest.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := map[string]any{
		"ServerConfig": map[string]any{"hostname": "127.0.0.1", "port": port},
		"TokenConfig":  map[string]string{"IssuerDomain": base},
	}
	if lambdaEndpoint != "" {
		cfg["LambdaClient"] = map[string]any{
			"endpoint":    lambdaEndpoint,
			"region":      "local",
			"credentials": map[string]string{"accessKeyId": "local", "secretAccessKey": "local"},
		}
		cfg["TriggerFunctions"] = map[string]string{"PreTokenGeneration": "function"}
	}
	if err := os.MkdirAll(filepath.Join(dir, ".cognito"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, ".cognito", "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Dir = dir
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start cognito-local: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("cognito-local output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("cognito-local did not listen within 30s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Call calls a Cognito user pool API operation on cognito-local and returns
// its decoded answer; an error answer fails the test.
func Call(t *testing.T, base, op string, in any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, base+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSCognitoIdentityProviderService."+op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", op, resp.StatusCode, raw)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: %v: %s", op, err, raw)
		}
	}
	return out
}

// Field returns the string at path in an answer, or fails the test.
func Field(t *testing.T, m map[string]any, path ...string) string {
	t.Helper()
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %v in %v", path, m)
		}
		v = mm[p]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%v is %T in %v", path, v, m)
	}
	return s
}
