package trigger

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzInvoke feeds arbitrary bytes to the handler. Whatever comes in, the
// answer is an error that names no internals or a response that keeps the
// user's groups, sets no reserved claim and adds no malformed scope. The
// handler recovers panics into ErrInternal, so that error is a failure here.
func FuzzInvoke(f *testing.F) {
	files, _ := filepath.Glob("testdata/events/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	h := newTestHandler(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := h.Invoke(context.Background(), payload)
		switch {
		case errors.Is(err, ErrInternal):
			t.Fatalf("handler panicked or failed to encode on %q", payload)
		case err != nil:
			var safe safeError
			if !errors.As(err, &safe) {
				t.Fatalf("error %q is not one of the safe messages", err)
			}
		default:
			checkInvariants(t, payload, out)
		}
	})
}
