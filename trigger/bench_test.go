package trigger

import (
	"context"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/internal/benchdata"
	"github.com/pretoken/pretoken/permissions"
)

// benchHandler serves the generated policy of roles as a container does:
// compiled, encoded, and decoded from its compiled form, read in place.
func benchHandler(b *testing.B, roles int) *Handler {
	compiled, err := permissions.Compile(benchdata.Policy(roles), "bench")
	if err != nil {
		b.Fatal(err)
	}
	snap, err := permissions.DecodeSnapshot(permissions.EncodeSnapshot(compiled, "bench"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	return New(Static{S: snap}, zerolog.Nop())
}

// BenchmarkHandle is the handler on a decoded V2 event: a user in 5 groups,
// a 100-role policy.
func BenchmarkHandle(b *testing.B) {
	h := benchHandler(b, 100)
	ev, err := DecodeEvent(benchdata.Event("2", 5))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Handle(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvoke is the handler from raw event JSON to raw response JSON,
// as the Lambda runtime calls it, by event version, policy size and number
// of groups (V3 is a client-credentials token: groups do not apply).
func BenchmarkInvoke(b *testing.B) {
	for _, v := range []string{"1", "2", "3"} {
		for _, roles := range []int{10, 100, 1000, 10000} {
			h := benchHandler(b, roles)
			for _, groups := range []int{1, 5, 50} {
				if v == "3" && groups != 1 {
					continue
				}
				payload := benchdata.Event(v, groups)
				b.Run(fmt.Sprintf("v=%s/roles=%d/groups=%d", v, roles, groups), func(b *testing.B) {
					ctx := context.Background()
					b.ReportAllocs()
					for b.Loop() {
						if _, err := h.Invoke(ctx, payload); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
