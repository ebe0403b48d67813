package main

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// memoryBudgetShare is the part of the memory collabd may use that the
// documents' budget (-memory-budget, collab.Options.MemoryBudget) gets by
// default. A quarter, because the process takes well over its budget:
// flooding 64 documents with 1 MB inserts under a 256 MiB budget, its
// anonymous RSS peaked at 2.8 times that (the garbage collector's
// headroom, as much again as the live heap with the default GOGC, and
// the connections' buffers), and the data file's pages come on top.
const memoryBudgetShare = 4

// minMemoryBudget is the least default budget, however little memory.
const minMemoryBudget = 64 << 20

// defaultMemoryBudget returns the -memory-budget to use when none is
// given: a quarter of the memory limit of collabd's cgroup (v2 or v1) or,
// without one, of the machine's memory; 0 (collab's own default, 1 GiB)
// when neither can be read. readFile is os.ReadFile but in tests.
func defaultMemoryBudget(readFile func(string) ([]byte, error)) int64 {
	limit := memTotal(readFile)
	if c := cgroupLimit(readFile); c > 0 && (limit == 0 || c < limit) {
		limit = c
	}
	if limit == 0 {
		return 0
	}
	return max(limit/memoryBudgetShare, minMemoryBudget)
}

// cgroupLimit returns the memory limit of this process's cgroup, or 0 if
// it has none or it cannot be read.
func cgroupLimit(readFile func(string) ([]byte, error)) int64 {
	var paths []string
	if b, err := readFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok { // cgroup v2
				paths = append(paths, "/sys/fs/cgroup"+strings.TrimSuffix(p, "/")+"/memory.max")
			}
		}
	}
	paths = append(paths, "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	for _, p := range paths {
		b, err := readFile(p)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // "max", or v1's "unlimited"
			return 0
		}
		return n
	}
	return 0
}

// memTotal returns the machine's memory from /proc/meminfo, or 0.
func memTotal(readFile func(string) ([]byte, error)) int64 {
	b, err := readFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb > 0 {
				return kb << 10
			}
		}
	}
	return 0
}
