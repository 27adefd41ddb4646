package main

import (
	"context"
	"runtime/debug"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
)

type echo struct{}

func (echo) Invoke(_ context.Context, payload []byte) ([]byte, error) { return payload, nil }

// TestColdStartGC: the collector is off from main until the first token
// has been answered, and back as it was from the second invocation on.
func TestColdStartGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	h := &afterFirst{Handler: lambda.Handler(echo{}), then: coldStartGC()}
	gcPercent := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	for i, want := range []int{-1, 100, 100} {
		if _, err := h.Invoke(context.Background(), []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if got := gcPercent(); got != want {
			t.Fatalf("after invocation %d: GC percent %d, want %d", i+1, got, want)
		}
	}
}
