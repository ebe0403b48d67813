package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

func httpGet(t testing.TB, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// replayAll returns the text at every revision, replaying GET /ops.
func replayAll(t *testing.T, base, id string) []string {
	t.Helper()
	texts := []string{""}
	for {
		code, body, _ := httpGet(t, fmt.Sprintf("%s/api/docs/%s/ops?from=%d", base, id, len(texts)-1))
		if code != http.StatusOK {
			t.Fatalf("GET ops: %d %s", code, body)
		}
		var page []struct {
			Rev int64
			Op  ot.Op
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return texts
		}
		for _, r := range page {
			next, err := ot.Apply(texts[len(texts)-1], r.Op)
			if err != nil || r.Rev != int64(len(texts)) {
				t.Fatalf("replay op %d: %v", r.Rev, err)
			}
			texts = append(texts, next)
		}
	}
}

// TestHistoryOnDisk edits a document on the real storage with milestones
// every 25 ops, then reads it back at thousands of revisions, across
// milestones, before and after a restart, and moves it out and in with
// export and import.
func TestHistoryOnDisk(t *testing.T) {
	data := filepath.Join(t.TempDir(), "collab.db")
	args := []string{"-snapshot-every", "25", "-rate-limit", "1000000", "-rate-burst", "1000000"}
	s := startServerAt(t, data, args...)
	id := createDoc(t, s.URL, "start ")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, s.URL+"/api/docs/"+id+"/ws", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	pieces := []string{"a", "bc", "é", "😀", "\n", "lorem ipsum "}
	for range 1200 {
		err := c.EditFunc(func(text string) ot.Op {
			n := utf8.RuneCountInString(text)
			pos := rng.IntN(n + 1)
			if n > 0 && rng.IntN(3) == 0 {
				del := min(1+rng.IntN(5), n-pos)
				return ot.Op{}.Retain(pos).Delete(del).Retain(n - pos - del)
			}
			return ot.Op{}.Retain(pos).Insert(pieces[rng.IntN(len(pieces))]).Retain(n - pos)
		})
		if err == nil {
			err = c.WaitSynced(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	texts := replayAll(t, s.URL, id)
	head := int64(len(texts) - 1)
	check := func(when string, base string) {
		t.Helper()
		revs := []int64{0, 1, head}
		for m := int64(25); m <= head; m += 25 {
			revs = append(revs, m-1, m, m+1)
		}
		for range 1000 {
			revs = append(revs, rng.Int64N(head+1))
		}
		for _, rev := range revs {
			rev = min(rev, head)
			code, body, hdr := httpGet(t, fmt.Sprintf("%s/api/docs/%s/text?rev=%d", base, id, rev))
			if code != http.StatusOK || body != texts[rev] || hdr.Get("X-Collab-Rev") != strconv.FormatInt(rev, 10) {
				t.Fatalf("%s: text at rev %d: got %d, %d bytes, want %d bytes", when, rev, code, len(body), len(texts[rev]))
			}
		}
	}
	check("before restart", s.URL)
	if code, _, _ := httpGet(t, fmt.Sprintf("%s/api/docs/%s/text?rev=%d", s.URL, id, head+1)); code != http.StatusNotFound {
		t.Errorf("text past the head: got %d, want 404", code)
	}
	// export -from the running server, at a revision and at the head.
	var out bytes.Buffer
	if err := run(ctx, []string{"export", "-from", s.URL, "-doc", id, "-rev", "300"}, &out, io.Discard); err != nil || out.String() != texts[300] {
		t.Errorf("export -from -rev 300: got %d bytes, %v", out.Len(), err)
	}
	out.Reset()
	if err := run(ctx, []string{"export", "-data", data, "-doc", id, "-lock-timeout", "50ms"}, &out, io.Discard); err == nil {
		t.Errorf("export -data of a file the server holds: got nil error")
	}
	s.Stop(t)

	// export -data of the unused file, to a file.
	file := filepath.Join(t.TempDir(), "out.txt")
	if err := run(ctx, []string{"export", "-data", data, "-doc", id, "-o", file}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(file); err != nil || string(got) != texts[head] {
		t.Errorf("export -data -o: got %d bytes, %v, want %d", len(got), err, len(texts[head]))
	}
	out.Reset()
	if err := run(ctx, []string{"export", "-data", data, "-doc", id, "-rev", "777"}, &out, io.Discard); err != nil || out.String() != texts[777] {
		t.Errorf("export -data -rev 777: got %d bytes, %v", out.Len(), err)
	}
	// import -data, then read it back over HTTP after the restart.
	out.Reset()
	if err := run(ctx, []string{"import", "-data", data, file}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var imported struct{ ID, ViewID string }
	if err := json.Unmarshal(out.Bytes(), &imported); err != nil || imported.ID == "" {
		t.Fatalf("import printed %q: %v", out.String(), err)
	}

	s = startServerAt(t, data, args...)
	check("after restart", s.URL)
	if code, body, _ := httpGet(t, s.URL+"/api/view/"+imported.ViewID+"/text"); code != 200 || body != texts[head] {
		t.Errorf("imported document: got %d, %d bytes", code, len(body))
	}
	// import -from the running server, and export it by its view id.
	out.Reset()
	if err := run(ctx, []string{"import", "-from", s.URL, file}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &imported); err != nil || imported.ViewID == "" {
		t.Fatalf("import -from printed %q: %v", out.String(), err)
	}
	out.Reset()
	if err := run(ctx, []string{"export", "-from", s.URL, "-doc", imported.ViewID}, &out, io.Discard); err != nil || out.String() != texts[head] {
		t.Errorf("export -from by view id: got %d bytes, %v", out.Len(), err)
	}
	for _, bad := range [][]string{
		{"export", "-doc", id},
		{"export", "-from", s.URL},
		{"export", "-from", s.URL, "-doc", uuid.NewString()},
		{"import", "-from", s.URL},
		{"import", "-from", s.URL, filepath.Join(t.TempDir(), "missing")},
	} {
		if err := run(ctx, bad, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: got nil error", bad)
		}
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte{0xff, 0xfe}, 0o600)
	if err := run(ctx, []string{"import", "-from", s.URL, junk}, io.Discard, io.Discard); err == nil {
		t.Error("import of invalid UTF-8: got nil error")
	}
}

// typingDoc stores a document of n one-character ops straight into a data
// file, as if typed, and returns its ids and text.
func typingDoc(tb testing.TB, data string, n int) (id, viewID, text string) {
	tb.Helper()
	db, err := storage.Open(data, storage.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	id, viewID = uuid.NewString(), uuid.NewString()
	if err := db.Create(ctx, storage.Meta{ID: id, ViewID: viewID}, nil); err != nil {
		tb.Fatal(err)
	}
	client := uuid.NewString()
	var b strings.Builder
	for from := 0; from < n; from += 500 {
		var recs []storage.Record
		for i := from; i < min(from+500, n); i++ {
			ch := string(rune('a' + i%26))
			recs = append(recs, storage.Record{Rev: int64(i + 1), Op: ot.Op{}.Retain(i).Insert(ch), Client: client, Seq: int64(i + 1)})
			b.WriteString(ch)
		}
		if err := db.Append(ctx, id, recs); err != nil {
			tb.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	return id, viewID, b.String()
}

// resumeEditor says hello at rev from and reads the welcome; it returns
// the number of catch-up ops, whether a text came, and the welcome's size.
func resumeEditor(tb testing.TB, ctx context.Context, base, id string, from int64) (ops int, text bool, size int) {
	tb.Helper()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/docs/"+id+"/ws", nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(256 << 20)
	hello := fmt.Sprintf(`{"type":"hello","client":%q,"name":"bench","rev":%d}`, uuid.NewString(), from)
	if err := ws.Write(ctx, websocket.MessageText, []byte(hello)); err != nil {
		tb.Fatal(err)
	}
	_, msg, err := ws.Read(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var w struct {
		Type string
		Text *string
		Ops  []struct{ Rev int64 }
	}
	if err := json.Unmarshal(msg, &w); err != nil || w.Type != "welcome" {
		tb.Fatalf("welcome: %v %.200s", err, msg)
	}
	for i, r := range w.Ops {
		if r.Rev != from+1+int64(i) {
			tb.Fatalf("catch-up op %d has rev %d, want %d", i, r.Rev, from+1+int64(i))
		}
	}
	ws.Close(websocket.StatusNormalClosure, "")
	return len(w.Ops), w.Text != nil, len(msg)
}

// TestResumeFarBehindOnDisk: on the real storage, an editor and a viewer
// 50,000 ops behind get those ops, read from bbolt, not the text.
func TestResumeFarBehindOnDisk(t *testing.T) {
	data := filepath.Join(t.TempDir(), "collab.db")
	const n = 60_000
	id, viewID, want := typingDoc(t, data, n)
	s := startServerAt(t, data)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ops, text, _ := resumeEditor(t, ctx, s.URL, id, n-50_000); ops != 50_000 || text {
		t.Errorf("editor 50,000 ops behind: got %d ops and text %v, want 50,000 ops", ops, text)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/view/"+viewID+"/events", nil)
	req.Header.Set("Last-Event-ID", strconv.Itoa(n-50_000))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc := ot.NewDoc(want[:n-50_000])
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	next := int64(n - 50_000 + 1)
	for next <= n && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: ") && line != "event: op":
			t.Fatalf("viewer got %q, want only op events", line)
		case strings.HasPrefix(line, "data: "):
			var ev struct {
				Rev int64
				Op  ot.Op
			}
			if err := json.Unmarshal([]byte(line[6:]), &ev); err != nil || ev.Rev != next {
				t.Fatalf("event %q: %v, want rev %d", line, err, next)
			}
			if err := doc.Apply(ev.Op); err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
	if next != n+1 || doc.String() != want {
		t.Errorf("viewer: reached rev %d, text right: %v", next-1, doc.String() == want)
	}
}

// BenchmarkResumeEditor50k measures an editor's resume 50,000 ops behind
// on a bbolt file: from its hello to the whole welcome read, over
// loopback. The ops are one-character typing; the welcome is about 4 MB.
func BenchmarkResumeEditor50k(b *testing.B) {
	data := filepath.Join(b.TempDir(), "collab.db")
	const n = 60_000
	id, _, _ := typingDoc(b, data, n)
	ctx := context.Background()
	srvCtx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(srvCtx, []string{"-addr", "127.0.0.1:0", "-data", data}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	_, base, _ := strings.Cut(strings.TrimSpace(line), " on ")
	defer func() { stop(); <-done }()
	var size int
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		ops, text, sz := resumeEditor(b, ctx, base, id, n-50_000)
		lat = append(lat, time.Since(start))
		if ops != 50_000 || text {
			b.Fatalf("got %d ops, text %v", ops, text)
		}
		size = sz
	}
	b.StopTimer()
	b.ReportMetric(float64(size)/1e6, "welcome-MB")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "p50-ms")
}
