package collab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
	"unsafe"

	"github.com/collabd/collabd/ot"
)

// authorMemStore is a memStore that also keeps authors checkpoints, as
// package storage does.
type authorMemStore struct {
	*memStore
	amu sync.Mutex
	cps map[string]map[int64][]byte
}

func (m *authorMemStore) SaveAuthors(ctx context.Context, id string, cps []AuthorsCheckpoint) error {
	m.amu.Lock()
	defer m.amu.Unlock()
	if m.cps[id] == nil {
		m.cps[id] = make(map[int64][]byte)
	}
	for _, cp := range cps {
		m.cps[id][cp.Rev] = slices.Clone(cp.Data)
	}
	return nil
}

func (m *authorMemStore) AuthorsBefore(ctx context.Context, id string, rev int64) (AuthorsCheckpoint, error) {
	m.amu.Lock()
	defer m.amu.Unlock()
	best := AuthorsCheckpoint{Rev: -1}
	for r, d := range m.cps[id] {
		if r <= rev && r > best.Rev {
			best = AuthorsCheckpoint{Rev: r, Data: d}
		}
	}
	if best.Data == nil {
		return AuthorsCheckpoint{}, nil
	}
	return best, nil
}

type authorsAnswer struct {
	Rev  int64
	Runs []struct {
		Author string
		Len    int
	}
	Names map[string]string
}

func (a authorsAnswer) labels() []string {
	var out []string
	for _, r := range a.Runs {
		for range r.Len {
			out = append(out, r.Author)
		}
	}
	return out
}

// randEdit returns a random op on a text of n code points: a splice or two.
func randEdit(r *rand.Rand, n int) ot.Op {
	var op ot.Op
	pos := 0
	for range 1 + r.IntN(2) {
		at := pos + r.IntN(n-pos+1)
		del := r.IntN(min(n-at, 5) + 1)
		op = op.Retain(at - pos)
		if r.IntN(4) != 0 {
			op = op.Insert(strings.Repeat(string(rune('a'+r.IntN(26))), 1+r.IntN(6)) + "é")
		}
		op = op.Delete(del)
		pos = at + del
	}
	return op.Retain(n - pos)
}

// TestAuthorsAgreeWithOps: named HTTP writers edit and restores bring old
// text back; at every revision, asked in random order, /authors spells
// the author of each code point as a reference replay of /ops labels
// it, restored text keeping the authors it had. With a store that keeps
// checkpoints, a restarted server answers the same.
func TestAuthorsAgreeWithOps(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			mem := newMemStore()
			var store Store = mem
			if durable {
				store = &authorMemStore{memStore: mem, cps: make(map[string]map[int64][]byte)}
			}
			ts := newTestServerStore(t, mem, store, Options{RestoreBurst: 100, RestoreRate: 100})
			ts.srv.authorsEvery = 7
			id, viewID := ts.createDoc(t, "start")
			r := rand.New(rand.NewPCG(1, 2))
			names := []string{"ada", "bob", "cy"}
			restoredFrom := map[int64]int64{}
			head := int64(1)
			textLen := 5
			for i := range 120 {
				if i%30 == 29 {
					from := r.Int64N(head)
					rev := restore(t, ts, id, from)
					if rev != head {
						restoredFrom[rev] = from
						head = rev
					}
				} else {
					op := randEdit(r, textLen)
					got := mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": head, "op": op, "name": names[r.IntN(3)]})
					head = got.Rev
				}
				_, text, _ := getText(t, textURL(ts, id))
				textLen = utf8.RuneCountInString(text)
			}
			// The reference: a label per code point, per revision.
			ref := [][]string{nil}
			nameOf := map[string]string{}
			for _, o := range ts.allOps(t, id, 1000) {
				prev := ref[len(ref)-1]
				var next []string
				pos, tpos := 0, 0
				for _, c := range o.Op {
					switch {
					case c.IsRetain():
						next = append(next, prev[pos:pos+c.N]...)
						pos += c.N
						tpos += c.N
					case c.IsDelete():
						pos -= c.N
					default:
						k := utf8.RuneCountInString(c.S)
						for j := range k {
							if from, ok := restoredFrom[o.Rev]; ok {
								next = append(next, ref[from][tpos+j])
							} else {
								next = append(next, o.Author)
							}
						}
						tpos += k
					}
				}
				ref = append(ref, next)
			}
			var revs []map[string]any
			getJSONStatus(t, ts.URL+"/api/docs/"+id+"/revisions", 200, &revs)
			for _, v := range revs {
				if n, ok := v["name"].(string); ok {
					nameOf[v["author"].(string)] = n
				}
			}
			check := func(what string, rev int64) {
				t.Helper()
				var a authorsAnswer
				getJSONStatus(t, fmt.Sprintf("%s/api/docs/%s/authors?rev=%d", ts.URL, id, rev), http.StatusOK, &a)
				if a.Rev != rev || fmt.Sprint(a.labels()) != fmt.Sprint(ref[rev]) {
					t.Fatalf("%s: authors?rev=%d: got rev %d %v, want %v", what, rev, a.Rev, a.labels(), ref[rev])
				}
				for i, run := range a.Runs {
					if run.Len <= 0 || i > 0 && a.Runs[i-1].Author == run.Author {
						t.Fatalf("%s: rev %d: runs %+v not canonical", what, rev, a.Runs)
					}
					if want := nameOf[run.Author]; want != "" && a.Names[run.Author] != want {
						t.Fatalf("%s: rev %d: names %v, want %s for %s", what, rev, a.Names, want, run.Author)
					}
				}
			}
			order := r.Perm(int(head) + 1)
			for _, k := range order {
				check("first server", int64(k))
			}
			if len(restoredFrom) == 0 {
				t.Fatal("no restore changed the text")
			}
			var a authorsAnswer
			getJSONStatus(t, ts.URL+"/api/view/"+viewID+"/authors", http.StatusOK, &a)
			if a.Rev != head || fmt.Sprint(a.labels()) != fmt.Sprint(ref[head]) {
				t.Fatalf("view authors at the head: got rev %d %v, want %d %v", a.Rev, a.labels(), head, ref[head])
			}
			if !durable {
				return
			}
			// A new server on the same store: the checkpoints hold the
			// restores' authors.
			ts2 := newTestServerStore(t, mem, store, Options{})
			ts2.srv.authorsEvery = 7
			ts = ts2
			keys := make([]int64, 0, len(restoredFrom))
			for k := range restoredFrom {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool { return keys[i] > keys[j] })
			check("restarted", head)
			for _, k := range keys {
				check("restarted", k)
			}
		})
	}
}

func TestAuthorsErrors(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "x")
	for _, c := range []struct {
		url  string
		code int
	}{
		{"/api/docs/" + id + "/authors?rev=2", 404},
		{"/api/docs/" + id + "/authors?rev=-1", 400},
		{"/api/docs/" + id + "/authors?rev=x", 400},
		{"/api/docs/" + viewID + "/authors", 404},
		{"/api/view/" + id + "/authors", 404},
		{"/api/docs/" + id + "/authors?rev=0", 200},
	} {
		code, _, body := doHTTP(t, "GET", ts.URL+c.url, "", nil)
		if code != c.code {
			t.Errorf("GET %s: got %d %s, want %d", c.url, code, body, c.code)
		}
	}
	var a authorsAnswer
	getJSONStatus(t, ts.URL+"/api/docs/"+id+"/authors", 200, &a)
	if a.Rev != 1 || len(a.Runs) != 1 || a.Runs[0].Author != "" || a.Runs[0].Len != 1 {
		t.Errorf("head of a new document: got %+v, want one unknown run of 1", a)
	}
}

func TestAuthorsCheckpointCodec(t *testing.T) {
	a := &authorsAt{rev: 9, runs: []ot.Run{{Label: "A", Len: 3}, {Label: "", Len: 2}, {Label: "B", Len: 1}, {Label: "A", Len: 4}}, names: map[string]string{"A": "Ada \"x\""}}
	got, err := decodeAuthors(encodeAuthors(a))
	if err != nil || got.rev != 9 || fmt.Sprint(got.runs) != fmt.Sprint(a.runs) || fmt.Sprint(got.names) != fmt.Sprint(a.names) {
		t.Fatalf("round trip: got %+v, %v; want %+v", got, err, a)
	}
	enc := encodeAuthors(a).Data
	for i := range enc {
		if _, err := decodeAuthors(AuthorsCheckpoint{Rev: 9, Data: enc[:i]}); err == nil {
			t.Errorf("decoding the first %d bytes: no error", i)
		}
	}
}

// TestAuthorsRevert: a revert puts back deleted text with the authors it
// had, and its own new text is the reverter's.
func TestAuthorsRevert(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "")
	a := mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": 0, "op": []any{"hello world"}, "name": "ada"})
	b := mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": a.Rev, "op": []any{"bob says ", 5, -6}, "name": "bob"})
	code, _, body := httpWrite(t, "POST", ts.URL+"/api/docs/"+id+"/revert", map[string]any{"run": b.Run, "name": "carol"})
	if code != http.StatusOK {
		t.Fatalf("revert: got %d %s", code, body)
	}
	_, text, _ := getText(t, textURL(ts, id))
	if text != "hello world" {
		t.Fatalf("text after the revert: got %q", text)
	}
	var got authorsAnswer
	getJSONStatus(t, ts.URL+"/api/docs/"+id+"/authors", http.StatusOK, &got)
	if len(got.Runs) != 1 || got.Runs[0].Len != 11 || got.Names[got.Runs[0].Author] != "ada" {
		t.Fatalf("authors after reverting bob's edit: got %+v, want all 11 ada's", got)
	}
}

// TestAuthorCacheBound: the checkpoints kept in memory stay within their
// bytes, the least recently used going first.
func TestAuthorCacheBound(t *testing.T) {
	c := newAuthorCache(1000)
	for i := range 50 {
		c.add("doc", &authorsAt{rev: int64(i), size: 100})
		if c.size > 1000 {
			t.Fatalf("after %d entries: %d bytes, want <= 1000", i+1, c.size)
		}
	}
	if a := c.before("doc", 49); a == nil || a.rev != 49 {
		t.Errorf("newest entry: got %+v", a)
	}
	if a := c.before("doc", 20); a != nil {
		t.Errorf("rev 20 should have gone, got %+v", a)
	}
	c.add("big", &authorsAt{rev: 1, size: 5000}) // larger than all: goes at once
	if c.size > 1000 {
		t.Errorf("after an entry past the bound: %d bytes", c.size)
	}
	c.forget("doc")
	if c.size != 0 || len(c.m) != 0 {
		t.Errorf("after forget: %d bytes, %d docs", c.size, len(c.m))
	}
}

// TestAuthorsHeldLimit: an answer that does not fit what is left of the
// budget of held response bytes is refused with 503, not built.
func TestAuthorsHeldLimit(t *testing.T) {
	ts := newTestServer(t, Options{MaxHeldResponseBytes: 4096})
	id, _ := ts.createDoc(t, "some text")
	// Other responses hold most of the budget.
	other := new(byte)
	if !ts.srv.held.hold(unsafe.Pointer(other), 4000) {
		t.Fatal("could not hold 4000 of 4096 bytes")
	}
	defer ts.srv.held.release(unsafe.Pointer(other))
	code, hdr, body := doHTTP(t, "GET", ts.URL+"/api/docs/"+id+"/authors", "", nil)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("got %d %s, want 503 with Retry-After", code, body)
	}
}
