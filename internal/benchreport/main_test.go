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
`
	r, err := parse(strings.NewReader(cold))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	write(&out, r, 3_900_000, 10_000_000)
	md := out.String()
	for _, want := range []string{
		"| 1,000 | 128 MB (7% of a CPU) | SDK floor | 145 ms | 1.45× | 100 ms | — | 12.0 ms (7.0 ms) |",
		"table 1.80×, file 1.40×, (SDK floor 1.45×); 0 refused | **no** |",
		"came in at 1.45× the minimal function in the same run (12.0 ms of CPU, 1.50 periods a start); pretoken from the table at 1.80×",
		"leaves pretoken's own work 0.05× of the minimal function above that floor",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}

	// A floor over the target says so, instead of a negative margin.
	r, err = parse(strings.NewReader(strings.Replace(cold, "1.45 ratio", "1.55 ratio", 1)))
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	write(&out, r, 3_900_000, 10_000_000)
	if md := out.String(); !strings.Contains(md, "The floor alone is over the target") || strings.Contains(md, "-0.05×") {
		t.Errorf("a floor over the target is not said so:\n%s", md)
	}
}
