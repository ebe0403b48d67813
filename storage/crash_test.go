package storage

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// The crash test runs its own test binary as a child that writes as fast as
// it can and reports every acknowledged write on stdout, SIGKILLs it at a
// random moment, and checks that the file it left behind holds every
// acknowledged write and nothing damaged.
const (
	crashChildEnv = "CRASH_CHILD"
	crashPathEnv  = "CRASH_DB"
	crashDocs     = 4
)

func TestCrashChild(t *testing.T) {
	if os.Getenv(crashChildEnv) != "1" {
		t.Skip("helper process for TestCrash")
	}
	// A small interval so that snapshots are being written when the kill
	// comes, too.
	db, err := Open(os.Getenv(crashPathEnv), Options{SnapshotEvery: 25})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		// One write per line, so a kill cannot tear a line.
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	for i := range crashDocs {
		id := fmt.Sprint("doc", i)
		if err := db.Create(ctx, Meta{ID: id, ViewID: "view-" + id}, nil); err != nil {
			say("error create %s: %v", id, err)
			return
		}
	}
	say("ready")
	for i := range crashDocs {
		go func() {
			id := fmt.Sprint("doc", i)
			for rev := int64(1); ; {
				// Batches of one to three records, like a hub flushing.
				to := rev + rand.Int64N(3)
				if err := db.Append(ctx, id, tokenRecords(rev, to, "c-"+id)); err != nil {
					say("error append %s %d: %v", id, rev, err)
					return
				}
				for ; rev <= to; rev++ {
					say("op %s %d", id, rev)
				}
			}
		}()
	}
	go func() {
		for i := 0; ; i++ {
			id := fmt.Sprint("new", i)
			if err := db.Create(ctx, Meta{ID: id, ViewID: "view-" + id}, &tokenRecords(1, 1, "c")[0]); err != nil {
				say("error create %s: %v", id, err)
				return
			}
			say("create %s", id)
		}
	}()
	time.Sleep(20 * time.Second)
	t.Error("child was not killed")
}

func TestCrash(t *testing.T) {
	if os.Getenv(crashChildEnv) == "1" {
		t.Skip("running as the crash child")
	}
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "crash.db")
		delay := time.Duration(5+rand.IntN(300)) * time.Millisecond
		acked, created := runCrashChild(t, path, delay)
		t.Logf("round %d: killed %v after ready; acknowledged %v and %d creates", round, delay, acked, len(created))
		checkCrashFile(t, path, acked, created)
	}
}

// runCrashChild runs the child until delay after it is ready, kills it and
// returns the highest acknowledged revision per document and the documents
// whose creation was acknowledged.
func runCrashChild(t *testing.T, path string, delay time.Duration) (map[string]int64, []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashPathEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	acked := make(map[string]int64)
	var created []string
	handle := func(line string) {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "op":
			rev, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				t.Errorf("child said %q", line)
			}
			if rev != acked[f[1]]+1 {
				t.Errorf("child acknowledged %s rev %d after rev %d", f[1], rev, acked[f[1]])
			}
			acked[f[1]] = rev
		case len(f) == 2 && f[0] == "create":
			created = append(created, f[1])
		case len(f) > 0 && f[0] == "error":
			t.Errorf("child: %s", line)
		}
	}

	ready := false
	timeout := time.After(30 * time.Second)
	for !ready {
		select {
		case line, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("child exited before it was ready; stderr:\n%s", stderr.String())
			}
			handle(line)
			ready = line == "ready"
		case <-timeout:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child not ready after 30s; stderr:\n%s", stderr.String())
		}
	}
	kill := time.After(delay)
	for kill != nil {
		select {
		case line := <-lines:
			handle(line)
		case <-kill:
			kill = nil
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Everything the child printed before dying was acknowledged.
	for line := range lines {
		handle(line)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("child exit: got %v, want killed; stderr:\n%s", err, stderr.String())
	}
	return acked, created
}

func checkCrashFile(t *testing.T, path string, acked map[string]int64, created []string) {
	t.Helper()
	db, err := Open(path, Options{SnapshotEvery: -1})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer db.Close()
	ctx := context.Background()

	err = db.bolt.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt consistency check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for i := range crashDocs {
		id := fmt.Sprint("doc", i)
		m, err := db.Meta(ctx, id)
		if err != nil {
			t.Errorf("Meta(%s): %v", id, err)
			continue
		}
		if m.Rev < acked[id] {
			t.Errorf("%s: got rev %d, want at least acknowledged rev %d", id, m.Rev, acked[id])
		}
		// Every op, acknowledged or not yet, must be whole and in place.
		want := tokenRecords(1, m.Rev, "c-"+id)
		var got []Record
		for after := int64(0); ; {
			recs, err := db.Ops(ctx, id, after, 0, 0)
			if err != nil {
				t.Fatalf("Ops(%s, %d): %v", id, after, err)
			}
			if len(recs) == 0 {
				break
			}
			got = append(got, recs...)
			after = recs[len(recs)-1].Rev
		}
		if len(got) != len(want) {
			t.Errorf("%s: got %d ops, want %d", id, len(got), len(want))
			continue
		}
		for j := range want {
			got[j].Time = time.Time{}
			if !reflect.DeepEqual(got[j], want[j]) {
				t.Errorf("%s op %d: got %+v, want %+v", id, j+1, got[j], want[j])
				break
			}
		}
		doc, err := db.Load(ctx, id)
		if err != nil || doc.Text != textAt(m.Rev) {
			t.Errorf("Load(%s): got %+v, %v, want the text at rev %d", id, doc, err, m.Rev)
		}
		if seq, rev, err := db.ClientSeq(ctx, id, "c-"+id); err != nil || seq != m.Rev || rev != m.Rev {
			t.Errorf("ClientSeq(%s): got %d, %d, %v, want %d, %d", id, seq, rev, err, m.Rev, m.Rev)
		}
		// The file is writable where the child left off.
		if err := db.Append(ctx, id, tokenRecords(m.Rev+1, m.Rev+1, "c-"+id)); err != nil {
			t.Errorf("Append(%s) after crash: %v", id, err)
		}
	}
	for _, id := range created {
		doc, err := db.Load(ctx, id)
		if err != nil || doc.Rev != 1 || doc.Text != textAt(1) {
			t.Errorf("Load(%s) of acknowledged create: got %+v, %v, want rev 1", id, doc, err)
		}
		if got, err := db.ViewDoc(ctx, "view-"+id); err != nil || got != id {
			t.Errorf("ViewDoc(view-%s): got %q, %v, want %q", id, got, err, id)
		}
	}
}
