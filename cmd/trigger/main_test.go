package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/trigger"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSetupErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("roles: {a: {inherits: [b]}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"nothing set", nil, "set PRETOKEN_TABLE (a DynamoDB table) or PRETOKEN_POLICY_FILE"},
		{"both set", map[string]string{"PRETOKEN_TABLE": "t", "PRETOKEN_POLICY_FILE": "p"}, "not both"},
		{"bad interval", map[string]string{"PRETOKEN_TABLE": "t", "PRETOKEN_REFRESH_INTERVAL": "10"}, `PRETOKEN_REFRESH_INTERVAL must be a positive duration such as 10s or 15m, not "10"`},
		{"negative staleness", map[string]string{"PRETOKEN_TABLE": "t", "PRETOKEN_MAX_STALENESS": "-1m"}, "PRETOKEN_MAX_STALENESS must be"},
		{"bad failure mode", map[string]string{"PRETOKEN_TABLE": "t", "PRETOKEN_FAILURE_MODE": "ajar"}, `PRETOKEN_FAILURE_MODE must be closed or open, not "ajar"`},
		{"bad assignments flag", map[string]string{"PRETOKEN_TABLE": "t", "PRETOKEN_USER_ASSIGNMENTS": "yes please"}, "PRETOKEN_USER_ASSIGNMENTS must be true or false"},
		{"assignments without a table", map[string]string{"PRETOKEN_POLICY_FILE": "../../examples/policy.yaml", "PRETOKEN_USER_ASSIGNMENTS": "true"}, "needs PRETOKEN_TABLE"},
		{"missing file", map[string]string{"PRETOKEN_POLICY_FILE": "/nonexistent/policy.yaml"}, "no such file"},
		{"invalid policy", map[string]string{"PRETOKEN_POLICY_FILE": bad}, `unknown role "b"`},
		{"bad log level", map[string]string{"PRETOKEN_POLICY_FILE": "../../examples/policy.yaml", "PRETOKEN_LOG_LEVEL": "loud"}, "PRETOKEN_LOG_LEVEL"},
		{"log turned off", map[string]string{"PRETOKEN_POLICY_FILE": "../../examples/policy.yaml", "PRETOKEN_LOG_LEVEL": "disabled"}, "the error log cannot be turned off"},
		{"log above error", map[string]string{"PRETOKEN_POLICY_FILE": "../../examples/policy.yaml", "PRETOKEN_LOG_LEVEL": "fatal"}, "the error log cannot be turned off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := setup(context.Background(), zerolog.Nop(), envOf(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("setup = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestSetupServesPolicyFile(t *testing.T) {
	var logs bytes.Buffer
	h, err := setup(context.Background(), zerolog.New(&logs), envOf(map[string]string{"PRETOKEN_POLICY_FILE": "../../examples/policy.yaml", "PRETOKEN_LOG_LEVEL": "warn"}))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := os.ReadFile("../../examples/events/v2-signin-staff.json")
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Response struct {
			D struct {
				Access struct {
					Scopes []string `json:"scopesToAdd"`
				} `json:"accessTokenGeneration"`
			} `json:"claimsAndScopeOverrideDetails"`
		} `json:"response"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(r.Response.D.Access.Scopes, " "), "orders-api/orders:write") {
		t.Errorf("scopes = %v, want the staff scopes", r.Response.D.Access.Scopes)
	}
	if logs.Len() != 0 {
		t.Errorf("PRETOKEN_LOG_LEVEL=warn still logged info lines:\n%s", logs.String())
	}
}

func TestLoadConfig(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{"PRETOKEN_TABLE": "policies", "PRETOKEN_REFRESH_INTERVAL": "2s",
		"PRETOKEN_MAX_STALENESS": "1h", "PRETOKEN_FAILURE_MODE": "open", "PRETOKEN_USER_ASSIGNMENTS": "true", "PRETOKEN_LOG_LEVEL": "debug"}))
	if err != nil {
		t.Fatal(err)
	}
	want := config{table: "policies", refresh: 2 * time.Second, maxStale: time.Hour, mode: trigger.FailOpen, assignments: true, level: zerolog.DebugLevel}
	if c != want {
		t.Errorf("config = %+v, want %+v", c, want)
	}
	c, err = loadConfig(envOf(map[string]string{"PRETOKEN_TABLE": "policies"}))
	if err != nil {
		t.Fatal(err)
	}
	want = config{table: "policies", refresh: 10 * time.Second, maxStale: 15 * time.Minute, mode: trigger.FailClosed, level: zerolog.InfoLevel}
	if c != want {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
}

// TestSetupServesCompiledFile: a bundled compiled snapshot answers every
// example event exactly as the YAML policy it was compiled from, under the
// same version label; a damaged one stops the function at init.
func TestSetupServesCompiledFile(t *testing.T) {
	data, err := permissions.CompileFile("../../examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	compiled := filepath.Join(t.TempDir(), "policy.snapshot")
	if err := os.WriteFile(compiled, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var yamlLogs, compiledLogs bytes.Buffer
	fromYAML, err := setup(context.Background(), zerolog.New(&yamlLogs), envOf(map[string]string{"PRETOKEN_POLICY_FILE": "../../examples/policy.yaml"}))
	if err != nil {
		t.Fatal(err)
	}
	fromCompiled, err := setup(context.Background(), zerolog.New(&compiledLogs), envOf(map[string]string{"PRETOKEN_POLICY_FILE": compiled}))
	if err != nil {
		t.Fatal(err)
	}
	if v := permissions.CompiledLabel(data); !strings.Contains(yamlLogs.String(), v) || !strings.Contains(compiledLogs.String(), v) {
		t.Errorf("both should log version %s:\n%s\n%s", v, yamlLogs.String(), compiledLogs.String())
	}
	events, err := filepath.Glob("../../examples/events/*.json")
	if err != nil || len(events) == 0 {
		t.Fatal("no example events", err)
	}
	for _, ev := range events {
		payload, err := os.ReadFile(ev)
		if err != nil {
			t.Fatal(err)
		}
		want, werr := fromYAML.Invoke(context.Background(), payload)
		got, gerr := fromCompiled.Invoke(context.Background(), payload)
		if string(got) != string(want) || fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Errorf("%s: compiled %s (%v), YAML %s (%v)", ev, got, gerr, want, werr)
		}
	}
	damaged := filepath.Join(t.TempDir(), "damaged.snapshot")
	if err := os.WriteFile(damaged, data[:len(data)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = setup(context.Background(), zerolog.Nop(), envOf(map[string]string{"PRETOKEN_POLICY_FILE": damaged}))
	if !errors.Is(err, permissions.ErrSnapshotDamaged) || !strings.Contains(err.Error(), "run pretoken apply") {
		t.Errorf("damaged snapshot: %v", err)
	}
}
