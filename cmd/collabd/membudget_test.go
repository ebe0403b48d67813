package main

import (
	"io"
	"io/fs"
	"testing"
)

func TestParseMemoryBudget(t *testing.T) {
	env := map[string]string{}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		env  string
		args []string
		want int64
	}{
		{"", nil, 0}, // run picks defaultMemoryBudget
		{"1048576", nil, 1 << 20},
		{"1048576", []string{"-memory-budget", "-1"}, -1},
	} {
		env["COLLABD_MEMORY_BUDGET"] = tc.env
		if tc.env == "" {
			delete(env, "COLLABD_MEMORY_BUDGET")
		}
		cfg, err := parseConfig(tc.args, lookup, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.collab.MemoryBudget; got != tc.want {
			t.Errorf("env %q args %q: got %d, want %d", tc.env, tc.args, got, tc.want)
		}
	}
}

func TestDefaultMemoryBudget(t *testing.T) {
	const meminfo = "MemTotal:       16384000 kB\nMemFree:         1000 kB\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"machine", map[string]string{"/proc/meminfo": meminfo}, 16384000 << 10 / 4},
		{"cgroup v2", map[string]string{
			"/proc/meminfo":     meminfo,
			"/proc/self/cgroup": "0::/app.slice/collabd.service\n",
			"/sys/fs/cgroup/app.slice/collabd.service/memory.max": "2147483648\n",
		}, 512 << 20},
		{"cgroup v2 without a limit", map[string]string{
			"/proc/meminfo":             meminfo,
			"/proc/self/cgroup":         "0::/\n",
			"/sys/fs/cgroup/memory.max": "max\n",
		}, 16384000 << 10 / 4},
		{"cgroup v1", map[string]string{
			"/proc/meminfo": meminfo,
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824\n",
		}, 256 << 20},
		{"cgroup v1 without a limit", map[string]string{
			"/proc/meminfo": meminfo,
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, 16384000 << 10 / 4},
		{"tiny container", map[string]string{
			"/proc/meminfo":             meminfo,
			"/sys/fs/cgroup/memory.max": "134217728\n",
		}, 64 << 20},
		{"nothing readable", nil, 0},
	} {
		read := func(name string) ([]byte, error) {
			if s, ok := tc.files[name]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		}
		if got := defaultMemoryBudget(read); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}
