package collab

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
)

// histAlphabet makes phrases occur often, overlap ("aa" in "aaa"), differ
// by case alone, and span one-, two- and four-byte code points.
var histAlphabet = []rune("aAb é😀\n")

func randText(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteRune(histAlphabet[rng.IntN(len(histAlphabet))])
	}
	return b.String()
}

// randOp returns a random op on a text of n code points: several edits,
// often near each other, inserts next to deletes.
func randOp(rng *rand.Rand, n int) ot.Op {
	var op ot.Op
	pos := 0
	for pos < n || len(op) == 0 {
		switch k := rng.IntN(6); {
		case k < 3 && pos < n:
			r := 1 + rng.IntN(min(n-pos, 8))
			if rng.IntN(3) == 0 {
				r = n - pos // often leave the rest alone
			}
			op = op.Retain(r)
			pos += r
		case k < 5 && pos < n:
			d := 1 + rng.IntN(min(n-pos, 4))
			op = op.Delete(d)
			pos += d
		default:
			op = op.Insert(randText(rng, 1+rng.IntN(4)))
			if pos == n {
				return op
			}
		}
	}
	return op
}

// naiveCount counts the phrase in text the slow way: at every code point.
func naiveCount(text, phrase string, fold bool) int {
	if fold {
		text, phrase = strings.ToLower(text), strings.ToLower(phrase)
	}
	n := 0
	for i := range text {
		if strings.HasPrefix(text[i:], phrase) {
			n++
		}
	}
	return n
}

// TestPhraseTrackerRandom: after every random op, the tracker's count of
// the phrase is the count found by searching the whole text.
func TestPhraseTrackerRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		text := randText(rng, rng.IntN(30))
		phrase := randText(rng, 1+rng.IntN(4))
		if trial%5 == 0 {
			phrase = "aa"
		}
		fold := trial%2 == 0
		tr := newPhraseTracker(text, phrase, fold)
		doc := ot.NewDoc(text)
		for step := range 60 {
			op := randOp(rng, doc.Len())
			if err := doc.Apply(op); err != nil {
				t.Fatalf("trial %d step %d: reference apply %v: %v", trial, step, op, err)
			}
			if err := tr.apply(op); err != nil {
				t.Fatalf("trial %d step %d: apply %v: %v", trial, step, op, err)
			}
			if want := naiveCount(doc.String(), phrase, fold); tr.count != want {
				t.Fatalf("trial %d step %d: %q in %q (fold %v) after %v: got %d, want %d",
					trial, step, phrase, doc.String(), fold, op, tr.count, want)
			}
		}
	}
}

// TestPhraseTrackerRefusesMismatch: an op that does not fit the text
// changes nothing.
func TestPhraseTrackerRefusesMismatch(t *testing.T) {
	tr := newPhraseTracker("abab", "ab", false)
	if err := tr.apply(ot.Op{}.Retain(3).Delete(2)); err == nil {
		t.Fatal("apply of an op too long: got nil error")
	}
	if tr.count != 2 || tr.doc.String() != "abab" {
		t.Fatalf("after a refused op: got count %d text %q, want 2 %q", tr.count, tr.doc.String(), "abab")
	}
}

// histAnswer is the answer of GET .../history/search.
type histAnswer struct {
	Q        string
	From     int64
	Head     int64
	Scanned  int64
	Complete bool
	Spans    []struct {
		From int64
		To   *int64
	}
}

// span is a span with its end as a number: -1 for none.
type span struct{ from, to int64 }

func (a histAnswer) spans() []span {
	out := []span{}
	for _, s := range a.Spans {
		to := int64(-1)
		if s.To != nil {
			to = *s.To
		}
		out = append(out, span{s.From, to})
	}
	return out
}

// naiveSpans searches every revision's whole text, as the store rebuilds it.
func naiveSpans(t *testing.T, store Store, id string, head int64, phrase string, fold bool) []span {
	t.Helper()
	out := []span{}
	was := false
	for rev := int64(0); rev <= head; rev++ {
		d, err := store.LoadAt(context.Background(), id, rev)
		if err != nil {
			t.Fatal(err)
		}
		now := naiveCount(d.Text, phrase, fold) > 0
		switch {
		case now && !was:
			out = append(out, span{rev, -1})
		case was && !now:
			out[len(out)-1].to = rev
		}
		was = now
	}
	return out
}

// searchAll pages through a search from revision 0, joining the span
// that one page leaves open and the next opens at its start.
func searchAll(t *testing.T, base, phrase string, fold bool) (spans []span, pages int) {
	t.Helper()
	spans = []span{}
	from := int64(0)
	for {
		a := searchHistoryHTTP(t, base, phrase, fold, from, 200)
		pages++
		got := a.spans()
		if len(got) > 0 && len(spans) > 0 && spans[len(spans)-1].to == -1 && got[0].from == from {
			spans[len(spans)-1].to = got[0].to
			got = got[1:]
		}
		spans = append(spans, got...)
		if a.Complete {
			return spans, pages
		}
		if a.Scanned <= from {
			t.Fatalf("page from %d: scanned %d, no progress", from, a.Scanned)
		}
		from = a.Scanned
	}
}

func searchHistoryHTTP(t *testing.T, base, phrase string, fold bool, from int64, status int) histAnswer {
	t.Helper()
	u := fmt.Sprintf("%s/history/search?q=%s&from=%d", base, url.QueryEscape(phrase), from)
	if !fold {
		u += "&case=match"
	}
	var a histAnswer
	getJSONStatus(t, u, status, &a)
	return a
}

// makeHistory makes a document with ops random edits over HTTP and
// returns its ids and head.
func makeHistory(t *testing.T, ts *testServer, rng *rand.Rand, ops int) (id, viewID string, head int64) {
	t.Helper()
	text := randText(rng, 20)
	id, viewID = ts.createDoc(t, text)
	head = 1
	n := utf8.RuneCountInString(text)
	for range ops {
		op := randOp(rng, n)
		b, _ := json.Marshal(op)
		if rev := postOp(t, ts.URL, id, head, string(b)); rev == head+1 {
			head = rev
			n = op.TargetLen()
		}
	}
	return id, viewID, head
}

// TestHistorySearchAgainstNaive: the spans a search answers, in one page
// or in many (a budget of a few ops, or of time), by the edit id or the
// view id, are those found by searching every revision's whole text.
func TestHistorySearchAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		name string
		opts Options
	}{
		{"one page", Options{}},
		{"7 ops a request", Options{HistorySearchOps: 7}},
		// Every page of the store is one op (the first is returned
		// whatever its size), and every request one page.
		{"one op a request", Options{HistorySearchTime: 1, MaxOpsPageBytes: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.WriteRate = -1
			ts := newTestServer(t, tc.opts)
			id, viewID, head := makeHistory(t, ts, rng, 80)
			for k := range 12 {
				phrase := randText(rng, 1+rng.IntN(3))
				fold := k%2 == 0
				want := naiveSpans(t, ts.store, id, head, phrase, fold)
				base := ts.URL + "/api/docs/" + id
				if k%3 == 2 {
					base = ts.URL + "/api/view/" + viewID
				}
				got, pages := searchAll(t, base, phrase, fold)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%q (fold %v) in %d revisions, %d pages: got %v, want %v", phrase, fold, head, pages, got, want)
				}
				if tc.name == "one page" && pages != 1 {
					t.Errorf("%q: got %d pages, want 1", phrase, pages)
				}
			}
		})
	}
}

// TestHistorySearchAnswer: the fields of an answer, its first page's and
// a resumed one's.
func TestHistorySearchAnswer(t *testing.T) {
	ts := newTestServer(t, Options{WriteRate: -1, HistorySearchOps: 2})
	id, _ := ts.createDoc(t, "hello")               // rev 1
	rev := postOp(t, ts.URL, id, 1, `[5," world"]`) // 2: "hello world"
	rev = postOp(t, ts.URL, id, rev, `[-5,6]`)      // 3: " world"
	rev = postOp(t, ts.URL, id, rev, `["Hello",6]`) // 4: "Hello world"
	base := ts.URL + "/api/docs/" + id
	a := searchHistoryHTTP(t, base, "hello", true, 0, 200)
	if a.Q != "hello" || a.From != 0 || a.Head != rev || a.Scanned != 2 || a.Complete || !reflect.DeepEqual(a.spans(), []span{{1, -1}}) {
		t.Fatalf("first page: got %+v %v, want scanned 2 of 4, spans [{1 -1}]", a, a.spans())
	}
	a = searchHistoryHTTP(t, base, "hello", true, 2, 200)
	if a.Scanned != 4 || !a.Complete || !reflect.DeepEqual(a.spans(), []span{{2, 3}, {4, -1}}) {
		t.Fatalf("second page: got %+v %v, want complete, spans [{2 3} {4 -1}]", a, a.spans())
	}
	a = searchHistoryHTTP(t, base, "hello", false, 0, 200)
	if !reflect.DeepEqual(a.spans(), []span{{1, -1}}) || a.Scanned != 2 {
		t.Fatalf("case=match, first page: got %+v %v", a, a.spans())
	}
	a = searchHistoryHTTP(t, base, "hello", false, 2, 200)
	if !reflect.DeepEqual(a.spans(), []span{{2, 3}}) || !a.Complete {
		t.Fatalf("case=match, second page: got %+v %v, want spans [{2 3}]", a, a.spans())
	}
	a = searchHistoryHTTP(t, base, "world", true, 4, 200)
	if a.Scanned != 4 || !a.Complete || !reflect.DeepEqual(a.spans(), []span{{4, -1}}) {
		t.Fatalf("from the head: got %+v %v", a, a.spans())
	}
}

// TestHistorySearchLimits: bad requests are 400, an unknown revision or
// document 404, and past MaxHistorySearches running at once, 429.
func TestHistorySearchLimits(t *testing.T) {
	mem := newMemStore()
	bs := &blockingOps{memStore: mem}
	ts := newTestServerStore(t, mem, bs, Options{MaxHistorySearches: 2})
	id, viewID := ts.createDoc(t, "hello")
	base := ts.URL + "/api/docs/" + id
	long := strings.Repeat("é", maxHistoryQuery)
	for _, tc := range []struct {
		query  string
		status int
	}{
		{"", 400},
		{"q=", 400},
		{"q=" + url.QueryEscape(long+"x"), 400},
		{"q=" + url.QueryEscape(long), 200},
		{"q=%FF", 400},
		{"q=he&case=upper", 400},
		{"q=he&case=match", 200},
		{"q=he&case=ignore", 200},
		{"q=he&from=-1", 400},
		{"q=he&from=x", 400},
		{"q=he&from=1", 200},
		{"q=he&from=2", 404},
	} {
		getJSONStatus(t, base+"/history/search?"+tc.query, tc.status, nil)
	}
	getJSONStatus(t, ts.URL+"/api/docs/00000000-0000-4000-8000-000000000000/history/search?q=he", 404, nil)
	getJSONStatus(t, ts.URL+"/api/view/00000000-0000-4000-8000-000000000000/history/search?q=he", 404, nil)

	// Two searches stuck in the store; a third is refused, and goes
	// through once they end.
	bs.block()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(base + "/history/search?q=he")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	bs.waitBlocked(t, 2)
	resp, err := http.Get(ts.URL + "/api/view/" + viewID + "/history/search?q=he")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third search at once: got %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	bs.unblock()
	wg.Wait()
	getJSONStatus(t, base+"/history/search?q=he", 200, nil)
}

// blockingOps is a Store whose Ops waits, once block is called, until
// unblock.
type blockingOps struct {
	*memStore
	mu      sync.Mutex
	gate    chan struct{} // nil: not blocking
	waiting int
	changed chan struct{}
}

func (b *blockingOps) block() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gate = make(chan struct{})
	b.changed = make(chan struct{}, 16)
}

func (b *blockingOps) unblock() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.gate)
	b.gate = nil
}

func (b *blockingOps) waitBlocked(t *testing.T, n int) {
	t.Helper()
	ctx := guardCtx(t)
	for {
		b.mu.Lock()
		w, ch := b.waiting, b.changed
		b.mu.Unlock()
		if w >= n {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("got %d calls waiting in Ops, want %d", w, n)
		}
	}
}

func (b *blockingOps) Ops(ctx context.Context, id string, after int64, limit, maxBytes int) ([]Record, error) {
	b.mu.Lock()
	gate := b.gate
	if gate != nil {
		b.waiting++
		b.changed <- struct{}{}
	}
	b.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.memStore.Ops(ctx, id, after, limit, maxBytes)
}

// TestHistorySearchTokens: with access tokens on, the search is a read:
// an edit or comment token searches by the edit id, a view token only by
// the view id (403 by the edit id).
func TestHistorySearchTokens(t *testing.T) {
	keys := newTestKeys(t)
	ts := newTestServer(t, Options{Auth: keys.auth(t, "c", -1)})
	id, viewID := ts.createDocAuth(t, "hello", "c")
	byID := ts.URL + "/api/docs/" + id + "/history/search?q=hell&token="
	byView := ts.URL + "/api/view/" + viewID + "/history/search?q=hell&token="
	for _, tc := range []struct {
		name         string
		token        string
		byID, byView int
	}{
		{"edit", keys.sign(t, "HS256", claims(id, RoleEdit)), 200, 200},
		{"comment", keys.sign(t, "HS256", claims(id, RoleComment)), 200, 200},
		{"view", keys.sign(t, "HS256", claims(viewID, RoleView)), 403, 200},
		{"none", "", 401, 401},
	} {
		var a histAnswer
		getJSONStatus(t, byView+tc.token, tc.byView, &a)
		if tc.byView == 200 && !reflect.DeepEqual(a.spans(), []span{{1, -1}}) {
			t.Errorf("%s token by view id: got spans %v, want [{1 -1}]", tc.name, a.spans())
		}
		getJSONStatus(t, byID+tc.token, tc.byID, nil)
	}
}

// TestHistorySearchSpanLimit: an answer holds at most maxHistorySpans
// spans; the rest come on the next pages, and joined they are all of
// them.
func TestHistorySearchSpanLimit(t *testing.T) {
	ts := newTestServer(t, Options{})
	ctx := context.Background()
	id, viewID := "6f1c2a3e-0000-4000-8000-000000000001", "6f1c2a3e-0000-4000-8000-000000000002"
	// A document stored with its history, as a server before this one
	// left it: "x", then "q" typed and deleted over and over.
	if err := ts.store.Create(ctx, DocMeta{ID: id, ViewID: viewID}, &Record{Rev: 1, Op: ot.Op{}.Insert("x")}); err != nil {
		t.Fatal(err)
	}
	const toggles = maxHistorySpans + 50
	var recs []Record
	for i := range 2 * toggles {
		op := ot.Op{}.Retain(1).Insert("q")
		if i%2 == 1 {
			op = ot.Op{}.Retain(1).Delete(1)
		}
		recs = append(recs, Record{Rev: int64(i + 2), Op: op})
	}
	if err := ts.store.Append(ctx, id, recs); err != nil {
		t.Fatal(err)
	}
	base := ts.URL + "/api/docs/" + id
	a := searchHistoryHTTP(t, base, "q", true, 0, 200)
	if len(a.Spans) != maxHistorySpans || a.Complete || a.Scanned != 2*maxHistorySpans {
		t.Fatalf("first page: got %d spans, scanned %d, complete %v; want %d, %d, false", len(a.Spans), a.Scanned, a.Complete, maxHistorySpans, 2*maxHistorySpans)
	}
	got, pages := searchAll(t, base, "q", true)
	want := naiveSpans(t, ts.store, id, 1+2*toggles, "q", true)
	if pages != 2 || !reflect.DeepEqual(got, want) {
		t.Fatalf("all pages: got %d spans in %d pages, want %d in 2", len(got), pages, len(want))
	}
}

// TestHistorySearchHeldBytes: a search holds room for its text under the
// budget of held bytes while it runs; one that finds no room within a
// little while is answered 503, and a finished search gives its room
// back.
func TestHistorySearchHeldBytes(t *testing.T) {
	mem := newMemStore()
	bs := &blockingOps{memStore: mem}
	// A search reserves 1000*8 + 2*1000 bytes: one fits, two do not.
	ts := newTestServerStore(t, mem, bs, Options{MaxDocChars: 1000, MaxOpsPageBytes: 1000, MaxHeldResponseBytes: 15_000, MaxHistorySearches: 4})
	id, _ := ts.createDoc(t, "hello")
	url := ts.URL + "/api/docs/" + id + "/history/search?q=he"
	bs.block()
	done := make(chan int, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	bs.waitBlocked(t, 1)
	code, hdr, body := doHTTP(t, http.MethodGet, url, "", nil)
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("a second search with no room: got %d %s, want 503 with Retry-After", code, body)
	}
	bs.unblock()
	if code := <-done; code != 200 {
		t.Errorf("the first search: got %d, want 200", code)
	}
	getJSONStatus(t, url, 200, nil)
	if n := ts.srv.held.inUse(); n != 0 {
		t.Errorf("after the searches: %d bytes still held, want 0", n)
	}
}
