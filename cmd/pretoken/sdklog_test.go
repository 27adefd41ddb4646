package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// The SDK's own log lines (its IMDS fallback warning, written straight to
// the process's stderr) stay hidden unless --debug, in every command that
// reaches AWS: attach as much as the table commands.
func TestSDKLogsHidden(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden) // no IMDSv2 token: the SDK warns and falls back
	}))
	defer imds.Close()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_EC2_METADATA_DISABLED"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	for _, args := range [][]string{
		{"attach", "--user-pool-id", "us-east-1_Example", "--detach", "--dry-run"},
		{"history", "--table", "pretoken"},
	} {
		processErr := captureStderr(t, func() {
			code, _, errOut := runCLI(t, args...)
			if code == 0 || !strings.Contains(errOut, "no AWS credentials found") {
				t.Errorf("%v: code %d, stderr %q", args, code, errOut)
			}
		})
		if strings.Contains(processErr, "IMDS") {
			t.Errorf("%v printed the SDK's log line: %q", args, processErr)
		}
	}
}

// captureStderr returns what f writes to the process's stderr.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	f()
	os.Stderr = saved
	w.Close()
	return <-done
}
