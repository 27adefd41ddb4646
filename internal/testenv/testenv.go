// Package testenv tells a test whether a server or file it needs is there,
// after Go's own internal/testenv: outside `make test` a missing one skips
// the test and says how to get it; under `make test` it fails the test, so
// CI can never pass by skipping.
package testenv

import (
	"os"
	"testing"
)

// RequireVar, when set (make test sets it), turns a missing service into a
// failure instead of a skip.
const RequireVar = "PRETOKEN_REQUIRE_SERVICES"

// Need returns the value of the variable that make test sets for a test
// server or file (what names it), or skips the test saying how to get it.
// Under RequireVar a missing one fails the test instead.
func Need(t testing.TB, variable, what string) string {
	t.Helper()
	v := os.Getenv(variable)
	if v == "" {
		if os.Getenv(RequireVar) != "" {
			t.Fatalf("%s is not set but %s is: %s is missing", variable, RequireVar, what)
		}
		t.Skipf("needs %s: run `make test`, which provides it and sets %s", what, variable)
	}
	return v
}
