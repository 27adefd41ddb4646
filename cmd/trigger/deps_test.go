package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestColdStartDependencies keeps out of the function the packages whose
// cost every cold start would pay, at 7% of a CPU at 128 MB (see "Cold
// start" in docs/runtime.md).
func TestColdStartDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const serde = "the SDK's schema-based serialisation, in service/dynamodb from v1.69.0 and dynamodbstreams from v1.42.0: " +
		"its package initialisation and first request cost a cold start about 2 ms of CPU; keep go.mod below those versions"
	banned := []struct{ prefix, why string }{
		{"github.com/aws/aws-sdk-go-v2/config", "the SDK's configuration chain: the function takes its settings from the environment Lambda sets"},
		{"github.com/aws/aws-sdk-go-v2/feature/ec2/imds", "IMDS, which Lambda has not got"},
		{"github.com/aws/aws-sdk-go-v2/service/sso", "SSO, which the function does not use"},
		{"github.com/aws/aws-sdk-go-v2/service/sts", "STS, which the function does not call"},
		{"github.com/aws/smithy-go/prelude", serde},
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/aws/aws-sdk-go-v2/service/") && strings.HasSuffix(pkg, "/schemas") {
			t.Errorf("the trigger links %s: %s", pkg, serde)
		}
		for _, b := range banned {
			if pkg == b.prefix || strings.HasPrefix(pkg, b.prefix+"/") {
				t.Errorf("the trigger links %s: %s", pkg, b.why)
			}
		}
	}
}
