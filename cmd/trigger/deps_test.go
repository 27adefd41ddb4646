package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestColdStartDependencies keeps the SDK's configuration chain out of the
// function: it takes its settings from the environment Lambda sets, and
// every package it links is initialised at every cold start, at 7% of a
// CPU at 128 MB (see "Cold start" in docs/runtime.md).
func TestColdStartDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := []struct{ prefix, why string }{
		{"github.com/aws/aws-sdk-go-v2/config", "the SDK's configuration chain (profiles, SSO, IMDS)"},
		{"github.com/aws/aws-sdk-go-v2/feature/ec2/imds", "IMDS, which Lambda has not got"},
		{"github.com/aws/aws-sdk-go-v2/service/sso", "SSO, which the function does not use"},
		{"github.com/aws/aws-sdk-go-v2/service/sts", "STS, which the function does not call"},
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, b := range banned {
			if pkg == b.prefix || strings.HasPrefix(pkg, b.prefix+"/") {
				t.Errorf("the trigger links %s: %s", pkg, b.why)
			}
		}
	}
}
