package proc

import (
	"os"
	"testing"
)

// TestSelf reads this test process's own figures: some CPU used, a
// resident set and a peak at least as large.
func TestSelf(t *testing.T) {
	pid := os.Getpid()
	for i := 0; i < 1e7; i++ { // use a little CPU
		_ = i * i
	}
	if cpu, err := CPU(pid); err != nil || cpu < 0 {
		t.Errorf("CPU: got %v, %v", cpu, err)
	}
	rss, err := Status(pid, "VmRSS")
	if err != nil || rss <= 0 {
		t.Fatalf("VmRSS: got %d, %v", rss, err)
	}
	if hwm, err := Status(pid, "VmHWM"); err != nil || hwm < rss {
		t.Errorf("VmHWM: got %d, %v; want at least VmRSS %d", hwm, err, rss)
	}
	if _, err := Status(pid, "NoSuchField"); err == nil {
		t.Error("a missing field: got no error")
	}
	if _, err := CPU(-1); err == nil {
		t.Error("no such process: got no error")
	}
}
