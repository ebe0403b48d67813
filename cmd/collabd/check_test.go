package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// checkCmd runs `collabd check args...` as main would and returns its exit
// status and output.
func checkCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"check"}, args...), &out, &errOut)
	if err != nil {
		code = exitCode(err)
		errOut.WriteString(err.Error())
	}
	return code, out.String(), errOut.String()
}

func TestCheckCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "collab.db")
	s := startServerAt(t, good)
	ctx := context.Background()
	for _, text := range []string{"first", "second 😀", ""} {
		// Edited, so that the server has it loaded and snapshots it on
		// shutdown.
		c, err := client.Dial(ctx, s.URL+"/api/docs/"+createDoc(t, s.URL, text)+"/ws", client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.EditFunc(func(text string) ot.Op { return ot.Op{{S: "> "}}.Retain(utf8.RuneCountInString(text)) }); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// A server holds the lock: check waits -lock-timeout, then says why.
	code, _, stderr := checkCmd(t, "-data", good, "-lock-timeout", "200ms")
	if code != exitNoCheck || !strings.Contains(stderr, "locked") {
		t.Errorf("check of a served file: got status %d, %q; want %d and a word about the lock", code, stderr, exitNoCheck)
	}
	s.Stop(t) // snapshots every loaded document

	code, stdout, stderr := checkCmd(t, "-data", good)
	if code != 0 || !strings.Contains(stdout, ": ok: 3 documents") {
		t.Fatalf("check of a good file: got status %d, stdout %q, stderr %q; want 0 and ok", code, stdout, stderr)
	}

	// Damage every stored snapshot: flip one bit in the middle of each
	// value, as a bad disk would.
	damaged := filepath.Join(dir, "damaged.db")
	copyFile(t, good, damaged)
	b, err := bbolt.Open(damaged, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	flipped := 0
	err = b.Update(func(tx *bbolt.Tx) error {
		snaps := tx.Bucket([]byte("snaps"))
		var keys, vals [][]byte
		snaps.ForEach(func(k, v []byte) error {
			keys, vals = append(keys, append([]byte(nil), k...)), append(vals, append([]byte(nil), v...))
			return nil
		})
		for i, v := range vals {
			v[len(v)/2] ^= 0x04
			if err := snaps.Put(keys[i], v); err != nil {
				return err
			}
			flipped++
		}
		return nil
	})
	b.Close()
	if err != nil || flipped == 0 {
		t.Fatalf("damaging snapshots: %v, %d flipped; want some", err, flipped)
	}
	code, stdout, stderr = checkCmd(t, "-data", damaged)
	if code != exitProblems || strings.Count(stdout, "checksum mismatch") != flipped {
		t.Errorf("check of a damaged file: got status %d, stdout %q, stderr %q; want %d and %d checksum mismatches",
			code, stdout, stderr, exitProblems, flipped)
	}

	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not bbolt "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := checkCmd(t, "-data", junk); code != exitProblems {
		t.Errorf("check of a file that is not a data file: got status %d (%q), want %d", code, stdout, exitProblems)
	}
	missing := filepath.Join(dir, "missing.db")
	if code, _, stderr := checkCmd(t, "-data", missing); code != exitNoCheck || !strings.Contains(stderr, "does not exist") {
		t.Errorf("check of a missing file: got status %d, %q; want %d, does not exist", code, stderr, exitNoCheck)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("check created the missing file")
	}
	if code, _, _ := checkCmd(t, "-data", good, "extra"); code != exitNoCheck {
		t.Errorf("check with a stray argument: got status %d, want %d", code, exitNoCheck)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
