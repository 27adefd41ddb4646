package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pretoken/pretoken/internal/benchdata"
	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// cpuCgroups is where cgroup v1 keeps the cpu controller.
const cpuCgroups = "/sys/fs/cgroup/cpu"

// fullCPU is the memory setting at which Lambda gives a function one vCPU.
const fullCPU = 1769

// cpuShare makes a cgroup v1 group whose CPU quota is what Lambda gives a
// function of mem MB (mem/1769 of one CPU), and returns it; it is removed
// when the benchmark ends. It needs root and cgroup v1's cpu controller.
func cpuShare(b *testing.B, mem int) string {
	b.Helper()
	dir := filepath.Join(cpuCgroups, fmt.Sprintf("pretoken-bench-%d-%d", os.Getpid(), mem))
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		b.Skipf("cgroup v1 cpu controller not writable (needs root): %v", err)
	}
	b.Cleanup(func() { _ = os.Remove(dir) })
	period, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(period)))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu.cfs_quota_us"), []byte(strconv.Itoa(p*mem/fullCPU)), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// confined writes a wrapper that moves itself into cgroup and then becomes
// bin, so that the function alone (not the emulator) runs at the share,
// and that leaves its process id in the returned file.
func confined(b *testing.B, cgroup, bin string) (wrapper, pidFile string) {
	b.Helper()
	dir := b.TempDir()
	wrapper, pidFile = filepath.Join(dir, "bootstrap"), filepath.Join(dir, "pid")
	script := fmt.Sprintf("#!/bin/sh\necho $$ > %s/cgroup.procs || exit 1\necho $$ > %s\nexec %s\n", cgroup, pidFile, bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	return wrapper, pidFile
}

// procDir is /proc's directory of the process whose id is in pidFile.
func procDir(pidFile string) (string, bool) {
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		return "", false
	}
	return "/proc/" + strings.TrimSpace(string(pid)), true
}

// peakRSS is the process's peak resident set, in MiB.
func peakRSS(pidFile string) float64 {
	dir, ok := procDir(pidFile)
	if !ok {
		return -1
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return -1
	}
	m := vmHWM.FindSubmatch(status)
	if m == nil {
		return -1
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return float64(kb) / 1024
}

// cpuTime is the CPU time the process has used so far, in ms: the sum over
// its threads of the kernel's scheduler accounting (nanoseconds), which is
// what the quota throttles and far steadier than wall time.
func cpuTime(pidFile string) float64 {
	dir, ok := procDir(pidFile)
	if !ok {
		return -1
	}
	stats, _ := filepath.Glob(dir + "/task/*/schedstat")
	var ns float64
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if fields := strings.Fields(string(b)); len(fields) > 0 {
			v, _ := strconv.ParseFloat(fields[0], 64)
			ns += v
		}
	}
	return ns / 1e6
}

// pageFaults is the number of minor page faults the process has taken so
// far: every page of memory or of the binary it touched for the first time.
func pageFaults(pidFile string) float64 {
	dir, ok := procDir(pidFile)
	if !ok {
		return -1
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return -1
	}
	// pid (comm) state ppid pgrp session tty tpgid flags minflt ...
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 8 {
		return -1
	}
	v, _ := strconv.ParseFloat(fields[7], 64)
	return v
}

// The figures the benchmark reads from /proc, cgroup files and the
// function's log.
var (
	vmHWM       = regexp.MustCompile(`VmHWM:\s+(\d+) kB`)
	nrThrottled = regexp.MustCompile(`(?m)^nr_throttled (\d+)$`)
	loadedIn    = regexp.MustCompile(`"duration_ms":([0-9.]+)[^\n]*"policy loaded"|"policy loaded"[^\n]*"duration_ms":([0-9.]+)`)
)

// BenchmarkColdScale is the first token of a cold container at the CPU
// share of a 128 MB and of a 1,769 MB function (a cgroup v1 quota on the
// function alone), for generated policies of 1,000, 10,000 and 30,000
// roles, each iteration interleaved with the minimal aws-lambda-go function
// at the same share. Sources: the table (compiled snapshot), a bundled
// compiled file, and the old paths (the table's items compiled at load, a
// YAML file), for comparison; and the SDK floor (bench/sdkfloor, the
// minimal function that builds the SDK's DynamoDB client and reads one
// item: what any table-backed function pays before its own work), in
// pretoken's place. ms is process start to first response,
// rss-MiB the function's peak resident set, load-ms the policy load as the
// function logs it (from init), cpu-ms the CPU time the function used (all
// its threads) up to its first response and faults its minor page faults
// (each a page first touched), throttled the quota periods it waited for
// (the minimal function's beside each), refused the first tokens refused.
func BenchmarkColdScale(b *testing.B) {
	shares := map[int]string{128: cpuShare(b, 128), fullCPU: cpuShare(b, fullCPU)}
	pretoken, minimal, floor := lambdatest.Build(b, "../cmd/trigger"), lambdatest.Build(b, "./minimal"), lambdatest.Build(b, "./sdkfloor")
	payload := benchdata.Event("2", 5)
	client := dynamotest.Client(b)
	base := map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": dynamotest.Endpoint(b), "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_EC2_METADATA_DISABLED": "true"}
	sizes := []int{1000, 10000, 30000}
	if s := os.Getenv("COLD_ROLES"); s != "" { // for a quick look: COLD_ROLES=1000
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("COLD_ROLES: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		p := benchdata.Policy(n)
		name := dynamotest.Table(b, client)
		store := dynamo.New(client, name)
		store.CallTimeout = time.Minute
		if _, err := store.Apply(context.Background(), p, dynamo.ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		yamlFile, snapFile := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "policy.snapshot")
		y, err := permissions.MarshalFile(p, "")
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(yamlFile, y, 0o644); err != nil {
			b.Fatal(err)
		}
		snap, err := permissions.CompileFile(yamlFile)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(snapFile, snap, 0o644); err != nil {
			b.Fatal(err)
		}
		sources := []struct {
			name string
			env  map[string]string
		}{
			{"table", map[string]string{"PRETOKEN_TABLE": name}},
			{"file", map[string]string{"PRETOKEN_POLICY_FILE": snapFile}},
			{"file-old", map[string]string{"PRETOKEN_POLICY_FILE": yamlFile}},
			{"table-old", map[string]string{"PRETOKEN_TABLE": name}},
			// The floor of any table-backed function built with the SDK:
			// the minimal function plus one GetItem (bench/sdkfloor). It
			// reads the version item after table-old has taken the
			// snapshot's two attributes off it: a few bytes fewer.
			{"sdk-floor", map[string]string{"PRETOKEN_TABLE": name}},
		}
		for _, src := range sources {
			bin := pretoken
			if src.name == "sdk-floor" {
				bin = floor
			}
			if src.name == "table-old" {
				// What a table applied before compiled snapshots serves:
				// the policy's items, compiled at load.
				removeSnapshot(b, client, name)
			}
			for _, mem := range []int{128, fullCPU} {
				if src.name == "file-old" && n > 10000 && mem < fullCPU {
					continue // over a minute a start: not worth a run
				}
				b.Run(fmt.Sprintf("roles=%d/mem=%d/src=%s", n, mem, src.name), func(b *testing.B) {
					env := map[string]string{}
					for k, v := range base {
						env[k] = v
					}
					for k, v := range src.env {
						env[k] = v
					}
					if refused := coldPair(b, shares[mem], bin, minimal, env, payload); refused > 0 && bin == floor {
						b.Fatalf("the SDK floor failed %d of its starts: see its log", refused)
					}
				})
			}
		}
	}
}

func removeSnapshot(b *testing.B, client *dynamodb.Client, table string) {
	b.Helper()
	_, err := client.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: &table,
		Key:              map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "META"}, "SK": &types.AttributeValueMemberS{Value: "VERSION"}},
		UpdateExpression: new("REMOVE snapshotChunks, snapshotFormat")})
	if err != nil {
		b.Fatal(err)
	}
}

// coldPair starts pretoken (or the SDK floor) and the minimal function at
// the share of cgroup, in turn, once per iteration, and returns how many of
// pretoken's first tokens were refused.
func coldPair(b *testing.B, cgroup, pretoken, minimal string, env map[string]string, payload []byte) (refused int) {
	type run struct {
		ms, rss, load, cpu, faults, periods float64
		refused                             bool
	}
	first := func(bin string) run {
		wrapper, pidFile := confined(b, cgroup, bin)
		throttled := throttledPeriods(b, cgroup)
		f := lambdatest.StartIsolated(b, wrapper, env)
		ans := f.Invoke(b, payload)
		r := run{ms: float64(time.Since(f.Started).Microseconds()) / 1000, rss: peakRSS(pidFile), cpu: cpuTime(pidFile), faults: pageFaults(pidFile), refused: ans.ErrorMessage != "", load: -1,
			periods: throttledPeriods(b, cgroup) - throttled}
		if m := loadedIn.FindStringSubmatch(f.Logs()); m != nil {
			r.load, _ = strconv.ParseFloat(m[1]+m[2], 64)
		}
		f.Stop()
		return r
	}
	var p, m run
	for b.Loop() {
		pr, mr := first(pretoken), first(minimal)
		p.ms, p.rss, p.load, p.cpu, p.faults, p.periods = p.ms+pr.ms, max(p.rss, pr.rss), max(p.load, pr.load), p.cpu+pr.cpu, p.faults+pr.faults, p.periods+pr.periods
		m.ms, m.rss, m.cpu, m.faults, m.periods = m.ms+mr.ms, max(m.rss, mr.rss), m.cpu+mr.cpu, m.faults+mr.faults, m.periods+mr.periods
		if pr.refused {
			refused++
		}
	}
	n := float64(b.N)
	b.ReportMetric(p.ms/n, "pretoken-ms")
	b.ReportMetric(m.ms/n, "minimal-ms")
	b.ReportMetric(p.ms/m.ms, "ratio")
	b.ReportMetric(p.rss, "rss-MiB")
	b.ReportMetric(m.rss, "minimal-rss-MiB")
	b.ReportMetric(p.load, "load-ms")
	b.ReportMetric(p.cpu/n, "cpu-ms")
	b.ReportMetric(m.cpu/n, "minimal-cpu-ms")
	b.ReportMetric(p.faults/n, "faults")
	b.ReportMetric(m.faults/n, "minimal-faults")
	b.ReportMetric(p.periods/n, "throttled")
	b.ReportMetric(m.periods/n, "minimal-throttled")
	b.ReportMetric(float64(refused), "refused")
	return refused
}

// throttledPeriods is how many of its quota's periods cgroup has been
// throttled in so far (cgroup v1 cpu.stat nr_throttled): across one start,
// alone in the cgroup, the periods it waited for because its quota ran out.
func throttledPeriods(b *testing.B, cgroup string) float64 {
	b.Helper()
	stat, err := os.ReadFile(filepath.Join(cgroup, "cpu.stat"))
	if err != nil {
		b.Fatal(err)
	}
	m := nrThrottled.FindSubmatch(stat)
	if m == nil {
		b.Fatalf("no nr_throttled in %s/cpu.stat", cgroup)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}
