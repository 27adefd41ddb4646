package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `goos: linux
cpu: Test CPU
BenchmarkHandle-2   	  100	      6000 ns/op	    3520 B/op	      34 allocs/op
BenchmarkHandle-2   	  100	      9000 ns/op	    3520 B/op	      34 allocs/op
BenchmarkHandle-2   	  100	     12000 ns/op	    3520 B/op	      34 allocs/op
BenchmarkInvoke/v=2/roles=10/groups=5-2  	 10	 20000 ns/op	 100 B/op	 1 allocs/op
BenchmarkInvoke/v=2/roles=10000/groups=5-2  	 10	 40000 ns/op	 100 B/op	 1 allocs/op
BenchmarkWarm/impl=pretoken-2  	 10	 50000 ns/op	 0 ddb-req/1000inv
BenchmarkWarm/impl=baseline-2  	 10	 6000000 ns/op	 5000 ddb-req/1000inv
BenchmarkColdStart-2  	 10	 1 ns/op	 20.0 minimal-ms	 40.0 pretoken-ms	 2.0 ratio
BenchmarkVerify/impl=authz-2  	 10	 40000 ns/op
BenchmarkVerify/impl=bare-rs256-2  	 10	 32000 ns/op
ok  	x	1s
`

func TestReport(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.med("BenchmarkHandle", "ns/op"); got != 9000 {
		t.Errorf("median = %v, want 9000", got)
	}
	if got := r.med("BenchmarkMissing", "ns/op"); got != -1 {
		t.Errorf("missing median = %v, want -1", got)
	}
	var out bytes.Buffer
	write(&out, r, 3_900_000, 10_000_000)
	md := out.String()
	for _, want := range []string{
		"Machine: Test CPU",
		"| 5-group V2 event through the handler on decoded input ≤ 10 µs | 9.0 µs | yes |",
		"| V2 event, 5 group(s): 10,000-role policy within 1.5× of the 10-role one | 2.00× (40.0 µs vs 20.0 µs) | **no** |",
		"| warm pretoken vs the read-per-invocation baseline, per invocation ≥ 100× | 120× (50.0 µs vs 6000.0 µs) | yes |",
		"2.00× (40.0 ms vs 20.0 ms) | **no** |",
		"≤ 1.3× a bare RS256 signature check of the same token | 1.25× (40.0 µs vs 32.0 µs) | yes |",
		"| snapshot of a 10,000-role policy ≤ 64 MB of heap (a 128 MB Lambda suffices) | -1.0 MB | not measured |",
		"Targets not met, why, and what would fix them:",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestColdScaleFloor(t *testing.T) {
	const cold = `BenchmarkColdScale/roles=1000/mem=128/src=table-2  20  1 ns/op  180.0 pretoken-ms  100.0 minimal-ms  1.80 ratio  14.0 cpu-ms  7.0 minimal-cpu-ms  1.85 throttled  1.10 minimal-throttled  20 n
BenchmarkColdScale/roles=1000/mem=128/src=file-2  20  1 ns/op  140.0 pretoken-ms  100.0 minimal-ms  1.40 ratio  11.0 cpu-ms  7.0 minimal-cpu-ms  1.35 throttled  1.10 minimal-throttled  20 n
BenchmarkColdScale/roles=1000/mem=128/src=sdk-floor-2  20  1 ns/op  145.0 pretoken-ms  100.0 minimal-ms  1.45 ratio  12.0 cpu-ms  7.0 minimal-cpu-ms  1.50 throttled  1.10 minimal-throttled  20 n
BenchmarkColdScale/roles=10000/mem=128/src=sdk-floor-2  20  1 ns/op  165.0 pretoken-ms  100.0 minimal-ms  1.65 ratio  12.0 cpu-ms  7.0 minimal-cpu-ms  1.70 throttled  1.10 minimal-throttled  20 n
`
	report := func(in string) string {
		t.Helper()
		r, err := parse(strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		write(&out, r, 3_900_000, 10_000_000)
		return out.String()
	}
	md := report(cold)
	for _, want := range []string{
		"| 1,000 | 128 MB (7% of a CPU) | SDK floor | 145 ms | 1.45× | 100 ms | — | 12.0 ms (7.0 ms) |",
		"table 1.80×, file 1.40× (SDK floor 1.45×); 0 refused | **no** |",
		"scored 1.45× (12.0 ms of CPU, 1.50 periods a start); the same function scored 1.45–1.65× across this run's policy sizes, and pretoken from the table 1.80×.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "at or over the target") {
		t.Errorf("a floor under the target is said to be over it:\n%s", md)
	}

	// A floor at the target says so.
	if md := report(strings.Replace(cold, "1.45 ratio", "1.50 ratio", 1)); !strings.Contains(md, "The floor alone scored at or over the target in this run.") {
		t.Errorf("a floor at the target is not said so:\n%s", md)
	}

	// Without the floor, or with its ratio missing at a size, nothing of
	// it is written for that size.
	none := strings.Split(cold, "BenchmarkColdScale/roles=1000/mem=128/src=sdk-floor")[0]
	if md := report(none); strings.Contains(md, "| SDK floor |") || strings.Contains(md, "By the same method") || strings.Contains(md, "(SDK floor") {
		t.Errorf("a run without the floor reports it:\n%s", md)
	}
	md = report(strings.Replace(cold, "1.45 ratio", "", 1))
	for _, bad := range []string{"| 1,000 | 128 MB (7% of a CPU) | SDK floor |", "SDK floor 1.45", "SDK floor -1", "scored -1", "scored 1.65× (12.0 ms of CPU, 1.70 periods a start), and"} {
		if strings.Contains(md, bad) {
			t.Errorf("a run without the 1,000-role floor's ratio reports %q:\n%s", bad, md)
		}
	}
	if !strings.Contains(md, "| 10,000 | 128 MB (7% of a CPU) | SDK floor | 165 ms | 1.65× |") {
		t.Errorf("the 10,000-role floor is lost with the 1,000-role one:\n%s", md)
	}
}
