package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// TestRestartMidSession restarts collabd, on the same data file and a new
// port, while editors are typing: some of their edits are in flight when
// it stops, some are made while it is down (and wait in the clients), and
// the rest after they reconnect. Every edit inserts a code point no other
// edit uses, so the end text shows that nothing was lost and nothing
// applied twice; everyone must converge on it.
func TestRestartMidSession(t *testing.T) {
	const editors = 3
	data := filepath.Join(t.TempDir(), "collab.db")
	args := []string{"-rate-limit", "1000000", "-rate-burst", "1000000"}
	s1 := startServerAt(t, data, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resp, err := http.Post(s1.URL+"/api/docs", "application/json", strings.NewReader(`{"text":"start"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: status %d, %v", resp.StatusCode, err)
	}
	wsURL := func(base string) string { return base + "/api/docs/" + created.ID + "/ws" }

	clients := make([]*client.Client, editors)
	for i := range clients {
		c, err := client.Dial(ctx, wsURL(s1.URL), client.Options{Name: fmt.Sprintf("editor %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}

	// Editor i's k-th edit inserts the astral code point base+i*4096+k at
	// a random place.
	const base = 0x20000
	made := make([]int, editors)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rngs := make([]*rand.Rand, editors)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(seed, uint64(i)))
	}
	edit := func(i int) error {
		r := rune(base + i*4096 + made[i])
		made[i]++
		return clients[i].EditFunc(func(text string) ot.Op {
			n := utf8.RuneCountInString(text)
			pos := rngs[i].IntN(n + 1)
			return ot.Op{}.Retain(pos).Insert(string(r)).Retain(n - pos)
		})
	}

	// burst makes one to three edits: one goes out, the others wait in
	// the client's buffer for its ack.
	burst := func(i int) error {
		for range 1 + rngs[i].IntN(3) {
			if err := edit(i); err != nil {
				return err
			}
		}
		return nil
	}

	// Phase 1: type online; keep typing while the server stops; then
	// type offline.
	online := make(chan struct{}, editors)
	stopped := make(chan struct{})
	errs := make(chan error, editors)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if err := burst(i); err != nil {
					errs <- err
					return
				}
				if err := clients[i].WaitSynced(ctx); err != nil {
					errs <- fmt.Errorf("editor %d: %w", i, err)
					return
				}
			}
			online <- struct{}{}
			for made[i] < 1000 {
				if err := burst(i); err != nil {
					errs <- err
					return
				}
				if clients[i].WaitSynced(ctx) != nil {
					break // the server went away
				}
			}
			<-stopped
			for range 10 {
				if err := edit(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range editors {
		select {
		case <-online:
		case err := <-errs:
			t.Fatal(err)
		}
	}
	s1.Stop(t)
	close(stopped)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, c := range clients {
		// The server said goodbye; the client holds its edits.
		if err := c.Wait(ctx, func(client.View) bool { return false }); err == nil {
			t.Fatalf("editor %d: connection still up after the server stopped", i)
		}
	}

	// Phase 2: the server comes back elsewhere; everyone reconnects and
	// types some more at once.
	s2 := startServerAt(t, data, args...)
	if s2.URL == s1.URL {
		t.Logf("the new server happens to have the old port: %s", s2.URL)
	}
	errs = make(chan error, editors)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.ReconnectTo(ctx, wsURL(s2.URL)); err != nil {
				errs <- fmt.Errorf("editor %d: reconnect: %w", i, err)
				return
			}
			for range 5 {
				if err := burst(i); err != nil {
					errs <- err
					return
				}
				if err := c.WaitSynced(ctx); err != nil {
					errs <- fmt.Errorf("editor %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var doc struct {
		Rev  int64
		Text string
	}
	resp, err = http.Get(s2.URL + "/api/docs/" + created.ID)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if err := c.WaitRev(ctx, doc.Rev); err != nil {
			t.Fatalf("editor %d: %v", i, err)
		}
		if got := c.Text(); got != doc.Text {
			t.Errorf("editor %d text differs from the server's:\n got %q\nwant %q", i, got, doc.Text)
		}
	}

	// Nothing lost, nothing twice: every inserted code point once, and
	// "start" around them in order.
	count := map[rune]int{}
	var rest []rune
	for _, r := range doc.Text {
		if r >= base {
			count[r]++
		} else {
			rest = append(rest, r)
		}
	}
	if string(rest) != "start" {
		t.Errorf("text without the inserts got %q, want %q", string(rest), "start")
	}
	total := 0
	for i := range editors {
		for k := range made[i] {
			if n := count[rune(base+i*4096+k)]; n != 1 {
				t.Errorf("editor %d's edit %d is in the text %d times, want once", i, k, n)
			}
		}
		total += made[i]
	}
	if len(count) != total {
		t.Errorf("text holds %d inserted code points, want the %d made", len(count), total)
	}
	// Each edit became at most one revision (edits made while one was in
	// flight are composed), and the op log has each editor's seqs 1..n.
	resp, err = http.Get(fmt.Sprintf("%s/api/docs/%s/ops?from=1", s2.URL, created.ID))
	if err != nil {
		t.Fatal(err)
	}
	var ops []struct {
		Rev    int64
		Author string
		Seq    int64
	}
	err = json.NewDecoder(resp.Body).Decode(&ops)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(ops)) != doc.Rev-1 || doc.Rev-1 > int64(total) {
		t.Errorf("got %d ops after the first and rev %d, want rev-1 ops and at most %d", len(ops), doc.Rev, total)
	}
	// Seqs continue per author across the restart: an author id is the
	// same for a client id before and after it.
	seqs := map[string]int64{}
	for _, op := range ops {
		if op.Seq != seqs[op.Author]+1 {
			t.Errorf("op %d: author %s seq %d after %d", op.Rev, op.Author, op.Seq, seqs[op.Author])
		}
		seqs[op.Author] = op.Seq
	}
	t.Logf("%d edits became %d revisions across the restart", total, doc.Rev-1)
}
