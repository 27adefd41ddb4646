//go:build !linux

package authz

import "time"

// threadCPU is not measured here; the benchmark reports wall time.
func threadCPU() (time.Duration, bool) { return 0, false }
