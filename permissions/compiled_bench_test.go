package permissions_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/pretoken/pretoken/internal/benchdata"
	"github.com/pretoken/pretoken/permissions"
)

// BenchmarkDecodeSnapshot is a cold container's load from the compiled
// form; bytes is the snapshot's size and heap-MB the live heap it holds.
func BenchmarkDecodeSnapshot(b *testing.B) {
	for _, n := range []int{1000, 10000, 30000} {
		b.Run(fmt.Sprintf("roles=%d", n), func(b *testing.B) {
			snap, err := permissions.Compile(benchdata.Policy(n), "v")
			if err != nil {
				b.Fatal(err)
			}
			data := permissions.EncodeSnapshot(snap, "label")
			snap = nil
			heap := func() uint64 {
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				return m.HeapAlloc
			}
			before := heap()
			held, err := permissions.DecodeSnapshot(data, "v")
			if err != nil {
				b.Fatal(err)
			}
			live := heap() - before
			runtime.KeepAlive(held)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := permissions.DecodeSnapshot(data, "v"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "bytes")
			b.ReportMetric(float64(live)/(1<<20), "heap-MB")
		})
	}
}
