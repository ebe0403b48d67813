package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/ot"
)

// inprocWrite makes an HTTP write with a JSON body and optional headers
// (name, value pairs); it returns the status, the Retry-After header and
// the body.
func inprocWrite(t *testing.T, ctx context.Context, method, url string, body any, hdr ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(string(mustMarshal(body))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

// TestClusterInprocWritesOnFollower: POST /ops, PUT /text and POST
// /revert through a node that does not own the document are forwarded to
// the owner and answered as the owner would: the ops land for editors on
// both nodes; a strict write on an old revision conflicts with the
// owner's head; an Idempotency-Key retried through either node gets the
// first answer and applies nothing.
func TestClusterInprocWritesOnFollower(t *testing.T) {
	ctx := inprocCtx(t, 60*time.Second)
	nodes, chk := inprocCluster(t, 2)
	id, x := inprocOwnedDoc(t, ctx, nodes, "hello")
	y := inprocDial(t, ctx, nodes[1], id, collab.ClientOptions{Name: "y"})
	if err := x.Edit(inprocInsert(x.Len(), 0, ">> ")); err != nil {
		t.Fatal(err)
	}
	if err := x.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	docURL := func(n int) string { return nodes[n].http.URL + "/api/docs/" + id }
	type answer struct {
		Rev int64
		Run string
	}
	decode := func(what string, code int, body string) answer {
		t.Helper()
		var a answer
		if code != http.StatusOK || json.Unmarshal([]byte(body), &a) != nil {
			t.Fatalf("%s: got %d %s, want 200", what, code, body)
		}
		return a
	}

	// Made on rev 1 ("hello"), through the follower: transformed over the
	// owner's rev 2 by the owner.
	code, _, body := inprocWrite(t, ctx, "POST", docURL(1)+"/ops", map[string]any{"rev": 1, "op": []any{5, " world"}, "name": "bot"})
	w := decode("ops through the follower", code, body)
	if w.Rev != 3 || w.Run == "" {
		t.Fatalf("ops through the follower: got %+v, want rev 3 and a run", w)
	}
	for _, c := range []*collab.Client{x, y} {
		if err := c.WaitRev(ctx, 3); err != nil {
			t.Fatal(err)
		}
		if c.Text() != ">> hello world" {
			t.Fatalf("editor after the write: %q", c.Text())
		}
	}

	// Strict on an old revision: the owner's head in the conflict.
	code, _, body = inprocWrite(t, ctx, "POST", docURL(1)+"/ops", map[string]any{"rev": 2, "op": []any{8, "?"}, "strict": true})
	if code != http.StatusConflict || !strings.Contains(body, `"rev":3`) {
		t.Errorf("strict write on rev 2 through the follower: got %d %s, want 409 with rev 3", code, body)
	}

	// One Idempotency-Key, retried through both nodes: one answer, one op.
	keyed := map[string]any{"rev": 3, "op": []any{14, "!"}}
	var first answer
	for i, n := range []int{1, 0, 1, 0} {
		code, _, body := inprocWrite(t, ctx, "POST", docURL(n)+"/ops", keyed, "Idempotency-Key", "once")
		a := decode("keyed write", code, body)
		if i == 0 {
			first = a
		} else if a != first {
			t.Errorf("keyed write %d through node %d: got %+v, want the first answer %+v", i, n, a, first)
		}
	}
	if first.Rev != 4 {
		t.Errorf("keyed write: got rev %d, want 4", first.Rev)
	}

	// PUT /text through the follower, on rev 4.
	code, _, body = inprocWrite(t, ctx, "PUT", docURL(1)+"/text", map[string]any{"rev": 4, "text": ">> hello world!\nAGENT\n"})
	run := decode("text through the follower", code, body)
	if run.Rev != 5 {
		t.Errorf("text through the follower: got rev %d, want 5", run.Rev)
	}
	// x types meanwhile, then the run is reverted through the follower.
	if err := x.Edit(inprocInsert(x.Len(), 0, "x")); err != nil {
		t.Fatal(err)
	}
	if err := x.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	code, _, body = inprocWrite(t, ctx, "POST", docURL(1)+"/revert", map[string]any{"run": run.Run})
	rv := decode("revert through the follower", code, body)
	want := "x>> hello world!"
	d, err := chk.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Rev != rv.Rev || d.Text != want {
		t.Fatalf("store after the revert: rev %d %q, want rev %d %q", d.Rev, d.Text, rv.Rev, want)
	}
	for _, c := range []*collab.Client{x, y} {
		if err := c.WaitRev(ctx, rv.Rev); err != nil {
			t.Fatal(err)
		}
		if c.Text() != want {
			t.Errorf("editor after the revert: %q, want %q", c.Text(), want)
		}
	}
	// The keyed write once in the log.
	if n := strings.Count(d.Text, "!"); n != 1 {
		t.Errorf("text %q has %d '!', want 1", d.Text, n)
	}

	// The same key sent through both nodes at once: one op, one answer
	// (a 503 while the first is being committed, then that answer).
	raced := map[string]any{"rev": rv.Rev, "op": []any{len([]rune(want)), "?"}}
	answers := make(chan answer, 6)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				code, _, body := inprocWrite(t, ctx, "POST", docURL(i%2)+"/ops", raced, "Idempotency-Key", "raced")
				if code == http.StatusServiceUnavailable {
					time.Sleep(25 * time.Millisecond)
					continue
				}
				var a answer
				if code != http.StatusOK || json.Unmarshal([]byte(body), &a) != nil {
					t.Errorf("raced write through node %d: got %d %s", i%2, code, body)
				}
				answers <- a
				return
			}
			t.Errorf("raced write through node %d: 503 forty times", i%2)
		}()
	}
	wg.Wait()
	close(answers)
	var got []answer
	for a := range answers {
		got = append(got, a)
	}
	for _, a := range got {
		if a != got[0] {
			t.Errorf("raced writes: answers %+v, want one", got)
			break
		}
	}
	if d, err := chk.Load(ctx, id); err != nil || d.Text != want+"?" {
		t.Errorf("store after the raced writes: %q (%v), want %q", d.Text, err, want+"?")
	}
}

// TestClusterInprocStreamOnFollower: a stream through a node that does not
// own the document is forwarded piece by piece to the owner, which keeps
// its caret: text typed by an editor on the owner right at the caret and
// before it does not split the streamed text; editors on both nodes see it
// and see the stream in presence while it is open.
func TestClusterInprocStreamOnFollower(t *testing.T) {
	ctx := inprocCtx(t, 60*time.Second)
	nodes, chk := inprocCluster(t, 2)
	id, x := inprocOwnedDoc(t, ctx, nodes, "tail")
	y := inprocDial(t, ctx, nodes[1], id, collab.ClientOptions{Name: "y"})
	if err := y.WaitRev(ctx, x.Rev()); err != nil {
		t.Fatal(err)
	}

	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, "POST", nodes[1].http.URL+"/api/docs/"+id+"/stream?at=0&name=agent", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	type line struct {
		Rev      int64
		Inserted int64
		Run      string
		Done     bool
		Error    *struct{ Code, Message string }
	}
	lines := make(chan line, 16)
	status := make(chan int, 1)
	go func() {
		defer close(lines)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			status <- 0
			return
		}
		defer resp.Body.Close()
		status <- resp.StatusCode
		dec := json.NewDecoder(resp.Body)
		for {
			var l line
			if dec.Decode(&l) != nil {
				return
			}
			lines <- l
		}
	}()
	next := func(what string) line {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s: the stream's answer ended", what)
			}
			if l.Error != nil {
				t.Fatalf("%s: error line %+v", what, *l.Error)
			}
			return l
		case <-ctx.Done():
			t.Fatalf("%s: no line", what)
		}
		return line{}
	}

	if _, err := io.WriteString(pw, "AB"); err != nil {
		t.Fatal(err)
	}
	if code := <-status; code != http.StatusOK {
		t.Fatalf("stream through the follower: status %d, want 200", code)
	}
	first := next("first piece")
	if first.Inserted != 2 {
		t.Fatalf("first piece: %+v, want 2 inserted", first)
	}
	for _, c := range []*collab.Client{x, y} {
		if err := c.WaitRev(ctx, first.Rev); err != nil {
			t.Fatal(err)
		}
		if !waitAgent(ctx, c, true) {
			t.Fatalf("the stream not in presence: peers %+v", c.Peers())
		}
	}
	if got := x.Text(); got != "ABtail" {
		t.Fatalf("owner's editor after the first piece: %q", got)
	}
	// On the owner: "Z" before the stream's text, "Q" right at its caret.
	if err := x.Edit(ot.Op{}.Insert("Z").Retain(2).Insert("Q").Retain(4)); err != nil {
		t.Fatal(err)
	}
	if err := x.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(pw, "CD"); err != nil {
		t.Fatal(err)
	}
	second := next("second piece")
	if second.Inserted != 4 {
		t.Fatalf("second piece: %+v, want 4 inserted", second)
	}
	pw.Close()
	last := next("end")
	if !last.Done || last.Run == "" || last.Inserted != 4 {
		t.Fatalf("last line %+v, want done with a run and 4 inserted", last)
	}
	const want = "ZABCDQtail"
	d, err := chk.Load(ctx, id)
	if err != nil || d.Text != want {
		t.Fatalf("store after the stream: %q (%v), want %q", d.Text, err, want)
	}
	for _, c := range []*collab.Client{x, y} {
		if err := c.WaitRev(ctx, d.Rev); err != nil {
			t.Fatal(err)
		}
		if c.Text() != want {
			t.Errorf("editor after the stream: %q, want %q", c.Text(), want)
		}
		// The stream left presence when it ended.
		if !waitAgent(ctx, c, false) {
			t.Errorf("the stream still in presence after its end: %+v", c.Peers())
		}
	}
}

// waitAgent waits until c sees a peer named "agent" (in) or none (!in),
// polling: Peers takes the lock a Wait condition is called with.
func waitAgent(ctx context.Context, c *collab.Client, in bool) bool {
	for {
		found := false
		for _, p := range c.Peers() {
			found = found || p.Name == "agent"
		}
		if found == in {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}
