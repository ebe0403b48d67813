package main

import (
	"runtime"
	"strings"
)

// procsPerCPU is how many Go processors (GOMAXPROCS) collabd runs per CPU
// the runtime would give it, unless the environment sets GOMAXPROCS.
//
// Every write transaction on the data file ends in two fdatasync calls,
// and the goroutine making them keeps its processor while the kernel
// waits for the disk: at 1,000 documents × 2 editors, half of the
// committer's time. With one processor per CPU that processor is lost
// to everything else meanwhile, and the goroutines the committer has
// just woken (the appends it answered) wait in its run queue until
// another processor steals them or the runtime takes the processor back.
// With spare processors they run at once on a CPU the disk wait left
// idle, and the kernel shares the CPUs. On 2 cores this took the
// median 1,000 × 2 ack p99 from 12.0 to 10.2 ms over 27 runs, and from
// 14–21 to 11–17 ms with another process using half a core, and left
// the one-document runs unchanged (docs/performance.md, "Processors
// blocked in fdatasync").
const procsPerCPU = 2

// setProcs raises GOMAXPROCS to procsPerCPU times the runtime's default
// (the CPUs, or the container's CPU limit) unless env, the environment's
// GOMAXPROCS, is set: then the operator's value stands. Only main calls
// it, so tests running run in this process keep the runtime's setting.
func setProcs(env string) {
	if strings.TrimSpace(env) != "" {
		return
	}
	runtime.GOMAXPROCS(procsFor(runtime.GOMAXPROCS(0)))
}

// procsFor returns the processors collabd runs with when the runtime's
// default is def.
func procsFor(def int) int {
	return max(def, 1) * procsPerCPU
}
