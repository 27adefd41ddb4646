package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
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
		{"nothing set", nil, "set PRETOKEN_POLICY_FILE"},
		{"missing file", map[string]string{"PRETOKEN_POLICY_FILE": "/nonexistent/policy.yaml"}, "no such file"},
		{"invalid policy", map[string]string{"PRETOKEN_POLICY_FILE": bad}, `unknown role "b"`},
		{"bad log level", map[string]string{"PRETOKEN_POLICY_FILE": "../../examples/policy.yaml", "PRETOKEN_LOG_LEVEL": "loud"}, "PRETOKEN_LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := setup(zerolog.Nop(), envOf(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("setup = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestSetupServesPolicyFile(t *testing.T) {
	var logs bytes.Buffer
	h, err := setup(zerolog.New(&logs), envOf(map[string]string{"PRETOKEN_POLICY_FILE": "../../examples/policy.yaml", "PRETOKEN_LOG_LEVEL": "warn"}))
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
