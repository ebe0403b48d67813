package collab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// typingPieces are what the random editors type: ASCII, accented letters
// (precomposed and combining), CJK, astral code points (emoji, a musical
// symbol) and multi-code-point emoji, so that every position counts code
// points, not bytes or UTF-16 units.
var typingPieces = []string{
	"a", "hello ", "é", "e\u0301", "ñandú", "漢字", "かな", "😀", "👩‍💻", "🇫🇷", "𝄞", "\n", "ü", " ",
}

// randomEdit makes a random op on text: an insert, a delete or both, at a
// random position.
func randomEdit(rng *rand.Rand, text string) ot.Op {
	n := utf8.RuneCountInString(text)
	pos := rng.IntN(n + 1)
	del := 0
	if pos < n && rng.IntN(5) < 2 {
		del = 1 + rng.IntN(min(6, n-pos))
	}
	ins := ""
	if del == 0 || rng.IntN(3) == 0 {
		for k := 1 + rng.IntN(3); k > 0; k-- {
			ins += typingPieces[rng.IntN(len(typingPieces))]
		}
	}
	return ot.Op{}.Retain(pos).Insert(ins).Delete(del).Retain(n - pos - del)
}

// TestConcurrentEditorsConverge has many editors type random edits at
// once, with cursors now and then, and checks that they all end with the
// server's text, that the op log replays to it, and that the revision
// counts exactly the acknowledged ops.
func TestConcurrentEditorsConverge(t *testing.T) {
	const editors, edits = 8, 120
	ts := newTestServer(t, Options{RateLimit: 1e6, RateBurst: 1e6})
	id, _ := ts.createDoc(t, "Grüße, 世界 🌍!")
	ctx := guardCtx(t)

	clients := make([]*Client, editors)
	for i := range clients {
		clients[i] = ts.dial(t, id, ClientOptions{Name: fmt.Sprintf("editor %d", i)})
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	errs := make(chan error, editors)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for k := range edits {
				if err := c.EditFunc(func(text string) ot.Op { return randomEdit(rng, text) }); err != nil {
					errs <- fmt.Errorf("editor %d edit %d: %w", i, k, err)
					return
				}
				if rng.IntN(10) == 0 {
					if err := c.SetCursor([]ClientRange{{rng.IntN(5), rng.IntN(5)}}); err != nil {
						errs <- fmt.Errorf("editor %d cursor: %w", i, err)
						return
					}
				}
				if rng.IntN(20) == 0 {
					// Now and then let the acks catch up, so that some
					// edits go out alone and some are composed.
					if err := c.WaitSynced(ctx); err != nil {
						errs <- fmt.Errorf("editor %d: %w", i, err)
						return
					}
				}
			}
			if err := c.WaitSynced(ctx); err != nil {
				errs <- fmt.Errorf("editor %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	d := ts.docState(t, id)
	for i, c := range clients {
		if err := c.WaitRev(ctx, d.Rev); err != nil {
			t.Fatalf("editor %d: %v", i, err)
		}
		if ok, text, rev := c.Synced(); !ok || text != d.Text || rev != d.Rev {
			t.Errorf("editor %d: got synced=%v rev %d text %q, want rev %d text %q", i, ok, rev, text, d.Rev, d.Text)
		}
	}
	code, _, body := doHTTP(t, http.MethodGet, ts.URL+"/api/docs/"+id+"/text", "", nil)
	if code != http.StatusOK || string(body) != d.Text {
		t.Errorf("GET text: got %d %q, want 200 %q", code, body, d.Text)
	}

	// The op log: every editor's seqs 1..n in order, n being how many of
	// its ops were acknowledged, and nothing else but the creating op.
	ops := ts.allOps(t, id, 97)
	if int64(len(ops)) != d.Rev {
		t.Fatalf("op log has %d ops, want rev %d", len(ops), d.Rev)
	}
	seqs := map[string]int64{}
	text := ""
	for i, r := range ops {
		if r.Rev != int64(i+1) {
			t.Fatalf("op %d has rev %d", i+1, r.Rev)
		}
		if i > 0 {
			if r.Seq != seqs[r.Author]+1 {
				t.Fatalf("op %d: author %s seq %d after %d", r.Rev, r.Author, r.Seq, seqs[r.Author])
			}
			seqs[r.Author] = r.Seq
		}
		var err error
		if text, err = ot.Apply(text, r.Op); err != nil {
			t.Fatalf("replaying op %d: %v", r.Rev, err)
		}
	}
	if text != d.Text {
		t.Errorf("op log replays to %q, want %q", text, d.Text)
	}
	acked := int64(1) // the op that created the document
	for i, c := range clients {
		n, _ := c.Seqs()
		if seqs[c.Author()] != n {
			t.Errorf("editor %d: the log has %d of its ops, it had %d acknowledged", i, seqs[c.Author()], n)
		}
		acked += n
	}
	if d.Rev != acked {
		t.Errorf("got rev %d, want %d: one per acknowledged op", d.Rev, acked)
	}
	if len(seqs) != editors {
		t.Errorf("op log has ops of %d clients, want %d", len(seqs), editors)
	}
}

// TestReconnectAfterServerApplied drops a client's connection after the
// server applied its op but before the ack arrived: on reconnecting, the
// client learns from the catch-up that its op went through, and neither
// resends nor reapplies it. With an edit buffered behind it, the buffer
// goes out once.
func TestReconnectAfterServerApplied(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		t.Run(fmt.Sprintf("buffered=%v", buffered), func(t *testing.T) {
			gs := newGateStore()
			ts := newTestServerStore(t, gs.memStore, gs, Options{})
			id, _ := ts.createDoc(t, "abc")
			ctx := guardCtx(t)
			// An upper-case client id, which the server canonicalizes: the
			// client must still know its own op in the catch-up.
			a := ts.dial(t, id, ClientOptions{Name: "A", ClientID: strings.ToUpper(uuid.NewString())})
			b := ts.dial(t, id, ClientOptions{Name: "B"})

			entered, release := gs.hold()
			defer release()
			if err := a.Edit(ot.Op{ot.Insert("X"), ot.Retain(3)}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-entered: // applied in memory, commit held: no ack yet
			case <-ctx.Done():
				t.Fatal("the op never reached the store")
			}
			want := "Xabc"
			if buffered {
				if err := a.Edit(ot.Op{ot.Retain(4), ot.Insert("Y")}); err != nil {
					t.Fatal(err)
				}
				want = "XabcY"
			}
			a.Drop()
			release()
			ts.waitDocRev(t, id, 2)

			if err := a.Reconnect(ctx); err != nil {
				t.Fatalf("reconnect: %v", err)
			}
			if !buffered {
				// The catch-up acknowledged the op: nothing is in flight,
				// so nothing was resent.
				if ok, text, rev := a.Synced(); !ok || rev != 2 || text != want {
					t.Fatalf("after reconnect: got synced=%v rev %d text %q, want synced rev 2 %q", ok, rev, text, want)
				}
			}
			if err := a.WaitSynced(ctx); err != nil {
				t.Fatal(err)
			}
			wantRev := int64(2)
			if buffered {
				wantRev = 3
			}
			// A later edit by someone else orders everything before it.
			if err := b.WaitRev(ctx, wantRev); err != nil {
				t.Fatal(err)
			}
			if err := b.EditFunc(func(text string) ot.Op { return ot.Op{ot.Insert("<"), ot.Retain(utf8.RuneCountInString(text))} }); err != nil {
				t.Fatal(err)
			}
			want = "<" + want
			wantRev++
			for _, c := range []*Client{a, b} {
				if err := c.WaitRev(ctx, wantRev); err != nil {
					t.Fatal(err)
				}
				if got := c.Text(); got != want {
					t.Errorf("client text got %q, want %q", got, want)
				}
			}
			d := ts.docState(t, id)
			if d.Rev != wantRev || d.Text != want {
				t.Errorf("server got rev %d %q, want rev %d %q", d.Rev, d.Text, wantRev, want)
			}
			var seqs []int64
			for _, r := range ts.allOps(t, id, 1000) {
				if r.Author == a.Author() {
					seqs = append(seqs, r.Seq)
				}
			}
			wantSeqs := []int64{1}
			if buffered {
				wantSeqs = []int64{1, 2}
			}
			if !slices.Equal(seqs, wantSeqs) {
				t.Errorf("client A's ops in the log have seqs %v, want %v", seqs, wantSeqs)
			}
		})
	}
}

// TestReconnectOpNeverArrived drops the connection before an edit is
// sent: the edit waits locally and goes out once after the reconnect.
func TestReconnectOpNeverArrived(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "abc")
	ctx := guardCtx(t)
	a := ts.dial(t, id, ClientOptions{Name: "A"})
	a.Drop()
	if err := a.Edit(ot.Op{ot.Retain(3), ot.Insert("!")}); err != nil {
		t.Fatal(err)
	}
	if err := a.Edit(ot.Op{ot.Insert("¡"), ot.Retain(4)}); err != nil {
		t.Fatal(err)
	}
	if d := ts.docState(t, id); d.Rev != 1 {
		t.Fatalf("server at rev %d while the client was away, want 1", d.Rev)
	}
	if err := a.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	// The first edit was in flight, the second buffered: two ops.
	d := ts.docState(t, id)
	if d.Rev != 3 || d.Text != "¡abc!" {
		t.Errorf("server got rev %d %q, want rev 3 %q", d.Rev, d.Text, "¡abc!")
	}
	if got := a.Text(); got != d.Text {
		t.Errorf("client text got %q, want %q", got, d.Text)
	}
}

// TestRawResendAfterDrop plays the reconnect by hand: hello and op, then
// the connection is cut without reading the ack. The server applied the
// op; the reconnect's welcome says so (lastSeq, catch-up ops), and a
// resend of the same seq gets the original revision without a new one.
func TestRawResendAfterDrop(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "hello")
	ctx := guardCtx(t)
	client := uuid.NewString()
	op := ot.Op{ot.Retain(5), ot.Insert(" wörld 🌍")}

	r1 := ts.raw(t, id)
	if w := r1.hello(t, ctx, client, -1); w.Rev != 1 || w.LastSeq != 0 {
		t.Fatalf("welcome got rev %d lastSeq %d, want rev 1 lastSeq 0", w.Rev, w.LastSeq)
	}
	r1.sendOp(t, ctx, 1, 1, op)
	r1.ws.CloseNow()
	ts.waitDocRev(t, id, 2)

	r2 := ts.raw(t, id)
	w := r2.hello(t, ctx, client, 1)
	if w.LastSeq != 1 || w.Rev != 2 {
		t.Errorf("welcome got lastSeq %d rev %d, want lastSeq 1 rev 2", w.LastSeq, w.Rev)
	}
	if w.hasField["text"] {
		t.Errorf("welcome after hello.rev 1 has text; want catch-up ops instead: %s", w.raw)
	}
	if len(w.Ops) != 1 || w.Ops[0].Rev != 2 || w.Ops[0].Author != ts.srv.author(client) || w.Ops[0].Seq != 1 || w.Ops[0].Op.String() != op.String() {
		t.Errorf("welcome ops got %+v, want just op 2 (author %s, seq 1, %v)", w.Ops, ts.srv.author(client), op)
	}
	// A client that did not trust lastSeq resends: acked, not applied.
	r2.sendOp(t, ctx, 1, 1, op)
	if ack := r2.expect(t, ctx, typeAck); ack.Rev != 2 || ack.Seq != 1 {
		t.Errorf("ack of the resend got rev %d seq %d, want the original rev 2 seq 1", ack.Rev, ack.Seq)
	}
	if d := ts.docState(t, id); d.Rev != 2 || d.Text != "hello wörld 🌍" {
		t.Errorf("server got rev %d %q, want rev 2 %q", d.Rev, d.Text, "hello wörld 🌍")
	}
	// And the session goes on with the next seq.
	r2.sendOp(t, ctx, 2, 2, ot.Op{ot.Retain(13), ot.Insert("!")})
	if ack := r2.expect(t, ctx, typeAck); ack.Rev != 3 || ack.Seq != 2 {
		t.Errorf("ack got rev %d seq %d, want rev 3 seq 2", ack.Rev, ack.Seq)
	}
	if d := ts.docState(t, id); d.Text != "hello wörld 🌍!" {
		t.Errorf("server text got %q, want %q", d.Text, "hello wörld 🌍!")
	}
}

// TestRawResendNeverArrived is the opposite: the connection is cut before
// the op is sent. The welcome's lastSeq says the server lacks it, and the
// resend applies it once.
func TestRawResendNeverArrived(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "hello")
	ctx := guardCtx(t)
	client := uuid.NewString()
	r1 := ts.raw(t, id)
	r1.hello(t, ctx, client, -1)
	r1.ws.CloseNow()

	r2 := ts.raw(t, id)
	w := r2.hello(t, ctx, client, 1)
	if w.LastSeq != 0 || len(w.Ops) != 0 || !w.hasField["ops"] || w.Rev != 1 {
		t.Errorf("welcome got lastSeq %d rev %d ops %v (present %v), want lastSeq 0 rev 1 and empty ops", w.LastSeq, w.Rev, w.Ops, w.hasField["ops"])
	}
	r2.sendOp(t, ctx, 1, 1, ot.Op{ot.Insert("¡"), ot.Retain(5)})
	if ack := r2.expect(t, ctx, typeAck); ack.Rev != 2 || ack.Seq != 1 {
		t.Errorf("ack got rev %d seq %d, want rev 2 seq 1", ack.Rev, ack.Seq)
	}
	if d := ts.docState(t, id); d.Rev != 2 || d.Text != "¡hello" {
		t.Errorf("server got rev %d %q, want rev 2 %q", d.Rev, d.Text, "¡hello")
	}
}

// TestSupersede opens a second connection with the same client id: the
// first is closed, what it sends afterwards is ignored, and the ack of an
// op sent on the new one arrives only there.
func TestSupersede(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "abc")
	ctx := guardCtx(t)
	client := uuid.NewString()
	watcher := ts.dial(t, id, ClientOptions{Name: "watcher"})

	old := ts.raw(t, id)
	old.hello(t, ctx, client, -1)
	cur := ts.raw(t, id)
	if w := cur.hello(t, ctx, client, -1); w.Rev != 1 || w.LastSeq != 0 {
		t.Fatalf("welcome got rev %d lastSeq %d, want rev 1 lastSeq 0", w.Rev, w.LastSeq)
	}
	// The hub has switched to cur: this is ignored (if it is sent at all).
	old.send(ctx, `{"type":"op","rev":1,"seq":1,"op":[3,"OLD"]}`)
	old.send(ctx, `{"type":"cursor","rev":1,"ranges":[[1,1]]}`)

	cur.sendOp(t, ctx, 1, 1, ot.Op{ot.Retain(3), ot.Insert("new")})
	if ack := cur.expect(t, ctx, typeAck); ack.Rev != 2 || ack.Seq != 1 {
		t.Errorf("ack on the new connection got rev %d seq %d, want rev 2 seq 1", ack.Rev, ack.Seq)
	}
	code, msgs, err := old.closeStatus(ctx)
	if err != nil {
		t.Fatalf("old connection: %v", err)
	}
	if code != closeSuperseded {
		t.Errorf("old connection closed with %d, want %d", code, closeSuperseded)
	}
	for _, m := range msgs {
		if m.Type != typePresence && m.Type != typeLeave {
			t.Errorf("old connection got %s after being superseded", m.raw)
		}
	}
	if err := watcher.WaitRev(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if d := ts.docState(t, id); d.Rev != 2 || d.Text != "abcnew" {
		t.Errorf("server got rev %d %q, want rev 2 %q", d.Rev, d.Text, "abcnew")
	}
	// The watcher saw no leave for the client: it is still connected.
	if !slices.ContainsFunc(watcher.Peers(), func(p ClientPeer) bool { return p.Author == ts.srv.author(client) }) {
		t.Errorf("watcher's peers %v lack the superseding client %s", watcher.Peers(), client)
	}
	checkServing(t, ts, id)
}

// TestSupersedeWhileCommitting supersedes a connection whose op is applied
// but not yet committed: the op is acknowledged once, the new connection
// learns of it from lastSeq, and a resend there gets the original
// revision.
func TestSupersedeWhileCommitting(t *testing.T) {
	gs := newGateStore()
	ts := newTestServerStore(t, gs.memStore, gs, Options{})
	id, _ := ts.createDoc(t, "abc")
	ctx := guardCtx(t)
	client := uuid.NewString()

	old := ts.raw(t, id)
	old.hello(t, ctx, client, -1)
	entered, release := gs.hold()
	defer release()
	old.sendOp(t, ctx, 1, 1, ot.Op{ot.Retain(3), ot.Insert("d")})
	<-entered

	cur := ts.raw(t, id)
	if err := cur.send(ctx, map[string]any{"type": "hello", "client": client, "rev": 1}); err != nil {
		t.Fatal(err)
	}
	release()
	w := cur.expect(t, ctx, typeWelcome)
	if w.LastSeq != 1 || w.Rev != 2 || len(w.Ops) != 1 || w.Ops[0].Seq != 1 {
		t.Errorf("welcome got lastSeq %d rev %d ops %+v, want lastSeq 1, rev 2 and op 2 (seq 1)", w.LastSeq, w.Rev, w.Ops)
	}
	cur.sendOp(t, ctx, 1, 1, ot.Op{ot.Retain(3), ot.Insert("d")})
	if ack := cur.expect(t, ctx, typeAck); ack.Rev != 2 || ack.Seq != 1 {
		t.Errorf("ack of resend got rev %d seq %d, want rev 2 seq 1", ack.Rev, ack.Seq)
	}
	_, msgs, err := old.closeStatus(ctx)
	if err != nil {
		t.Fatalf("old connection: %v", err)
	}
	acks := 0
	for _, m := range msgs {
		if m.Type == typeAck {
			acks++
		}
	}
	if acks > 1 {
		t.Errorf("old connection got %d acks, want at most 1: %s", acks, rawList(msgs))
	}
	if d := ts.docState(t, id); d.Rev != 2 || d.Text != "abcd" {
		t.Errorf("server got rev %d %q, want rev 2 %q", d.Rev, d.Text, "abcd")
	}
}

var colorRE = regexp.MustCompile(`^#[0-9a-f]{6}$`)

// TestPresence covers peers in the welcome, presence on join and on cursor
// moves, selections carried through later ops (by the server for
// newcomers and by clients for what they hold), cursors made at an older
// revision, leave on disconnect, and server-assigned colors.
func TestPresence(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "hello world")
	ctx := guardCtx(t)

	ada := ts.dial(t, id, ClientOptions{Name: "Ada"})
	bob := ts.dial(t, id, ClientOptions{Name: "Bob\x07"}) // control characters are dropped
	if !colorRE.MatchString(ada.Color()) || !colorRE.MatchString(bob.Color()) || ada.Color() == bob.Color() {
		t.Errorf("colors got %q and %q, want two distinct #rrggbb", ada.Color(), bob.Color())
	}
	// Bob's welcome listed Ada; Ada hears of Bob by presence.
	if p := bob.Peers(); len(p) != 1 || p[0].Author != ada.Author() || p[0].Name != "Ada" || p[0].Color != ada.Color() || len(p[0].Ranges) != 0 {
		t.Errorf("Bob's peers got %+v, want just Ada with her color and no ranges", p)
	}
	peerIs := func(c *Client, who *Client, name string, ranges []ClientRange) func(ClientView) bool {
		return func(v ClientView) bool {
			p, ok := v.Peer(who.Author())
			return ok && p.Name == name && p.Color == who.Color() && slices.Equal(p.Ranges, ranges)
		}
	}
	if err := ada.Wait(ctx, peerIs(ada, bob, "Bob", []ClientRange{})); err != nil {
		t.Fatalf("Ada never saw Bob: %v (peers %+v)", err, ada.Peers())
	}

	// A raw observer sees the presence messages themselves.
	obs := ts.raw(t, id)
	w := obs.hello(t, ctx, uuid.NewString(), -1)
	if len(w.Peers) != 2 {
		t.Errorf("observer's welcome peers got %+v, want Ada and Bob", w.Peers)
	}
	if err := ada.SetCursor([]ClientRange{{2, 4}}); err != nil {
		t.Fatal(err)
	}
	p := obs.expect(t, ctx, typePresence)
	if p.Author != ada.Author() || p.Name != "Ada" || p.Color != ada.Color() || !slices.Equal(p.Ranges, []Range{{2, 4}}) || p.Rev != 1 {
		t.Errorf("presence got %s, want Ada's [[2,4]] at rev 1 in her color", p.raw)
	}
	if err := bob.Wait(ctx, peerIs(bob, ada, "Ada", []ClientRange{{2, 4}})); err != nil {
		t.Fatalf("Bob never saw Ada's cursor: %v (peers %+v)", err, bob.Peers())
	}

	// Bob inserts before Ada's selection: everyone's copy moves with it.
	if err := bob.Edit(ot.Op{ot.Insert("¡¡"), ot.Retain(11)}); err != nil {
		t.Fatal(err)
	}
	if err := bob.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bob.Wait(ctx, peerIs(bob, ada, "Ada", []ClientRange{{4, 6}})); err != nil {
		t.Errorf("Bob's copy of Ada's selection: %v (peers %+v), want [[4,6]]", err, bob.Peers())
	}
	if m := obs.expect(t, ctx, typeOp); m.Rev != 2 {
		t.Fatalf("observer got op %d, want 2", m.Rev)
	}
	carol := ts.dial(t, id, ClientOptions{Name: "Carol"})
	if err := carol.Wait(ctx, peerIs(carol, ada, "Ada", []ClientRange{{4, 6}})); err != nil {
		t.Errorf("Carol's welcome: %v (peers %+v), want Ada at [[4,6]]", err, carol.Peers())
	}
	colors := map[string]bool{ada.Color(): true, bob.Color(): true, carol.Color(): true, w.Color: true}
	if len(colors) != 4 {
		t.Errorf("colors of four editors got %v, want four distinct", colors)
	}

	// A cursor made at rev 1 is carried through op 2 by the server.
	if err := obs.send(ctx, `{"type":"cursor","rev":1,"ranges":[[0,0],[11,5]]}`); err != nil {
		t.Fatal(err)
	}
	wantObs := []ClientRange{{2, 2}, {13, 7}}
	if err := ada.Wait(ctx, func(v ClientView) bool {
		for _, p := range v.Peers() {
			if p.Name == "raw" && slices.Equal(p.Ranges, wantObs) {
				return true
			}
		}
		return false
	}); err != nil {
		t.Errorf("Ada never saw the observer's cursor at %v: %v (peers %+v)", wantObs, err, ada.Peers())
	}

	// Bob reconnects after missing an op: his copy of Ada's selection,
	// from the welcome, moves through that op once (not again as the
	// catch-up replays it).
	bob.Drop()
	if err := carol.Edit(ot.Op{ot.Insert("ab"), ot.Retain(13)}); err != nil {
		t.Fatal(err)
	}
	if err := carol.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bob.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bob.Wait(ctx, peerIs(bob, ada, "Ada", []ClientRange{{6, 8}})); err != nil {
		t.Errorf("after reconnect: %v; Bob's peers %+v, want Ada at [[6,8]]", err, bob.Peers())
	}

	// Leaving: Ada closes, everyone else hears of it.
	if err := ada.Close(); err != nil {
		t.Fatal(err)
	}
	gone := func(c *Client) func(ClientView) bool {
		return func(v ClientView) bool { _, ok := v.Peer(ada.Author()); return !ok }
	}
	for _, c := range []*Client{bob, carol} {
		if err := c.Wait(ctx, gone(c)); err != nil {
			t.Errorf("Ada's leave never arrived: %v", err)
		}
	}
	for {
		m, err := obs.next(ctx)
		if err != nil {
			t.Fatalf("observer never got Ada's leave: %v", err)
		}
		if m.Type == typeLeave && m.Author == ada.Author() {
			break
		}
	}
}

// seqGateStore is a gateStore whose ClientSeq can be held too, which
// holds the hub itself: it asks for a new editor's seq in its own
// goroutine.
type seqGateStore struct {
	*gateStore
	seqEntered chan struct{}
	seqGate    chan struct{}
}

func (s *seqGateStore) ClientSeq(ctx context.Context, id, client string) (int64, int64, error) {
	if s.seqGate != nil {
		s.seqEntered <- struct{}{}
		<-s.seqGate
	}
	return s.gateStore.ClientSeq(ctx, id, client)
}

// TestResendInBatchWaitsForCommit: an op resent on the same connection
// while the original is still being committed is acknowledged once, by
// the commit, and not before the op is durable.
func TestResendInBatchWaitsForCommit(t *testing.T) {
	gs := &seqGateStore{gateStore: newGateStore()}
	ts := newTestServerStore(t, gs.memStore, gs, Options{})
	id, _ := ts.createDoc(t, "abc")
	ctx := guardCtx(t)
	r := ts.raw(t, id)
	r.hello(t, ctx, uuid.NewString(), -1)

	// Hold the hub in a join, so that the op and its resend wait in its
	// inbox and are handled together.
	gs.seqEntered, gs.seqGate = make(chan struct{}, 1), make(chan struct{})
	other := ts.raw(t, id)
	if err := other.send(ctx, map[string]any{"type": "hello", "client": uuid.NewString()}); err != nil {
		t.Fatal(err)
	}
	<-gs.seqEntered
	ts.srv.mu.Lock()
	h := ts.srv.hubs[id]
	ts.srv.mu.Unlock()
	op := ot.Op{ot.Retain(3), ot.Insert("d")}
	r.sendOp(t, ctx, 1, 1, op)
	r.sendOp(t, ctx, 1, 1, op)
	for len(h.inbox) < 2 {
		if ctx.Err() != nil {
			t.Fatal("the ops never reached the hub")
		}
		time.Sleep(time.Millisecond)
	}
	entered, release := gs.hold()
	defer release()
	close(gs.seqGate)
	<-entered // the op is applied and being committed

	// Nothing may acknowledge it before the commit. A bad message now
	// makes the session queue an error behind whatever is queued already,
	// and close: an early ack would come before that error.
	if err := r.send(ctx, "not JSON"); err != nil {
		t.Fatal(err)
	}
	_, msgs, err := r.closeStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Type == typeAck {
			t.Errorf("got %s while the op was still being committed", m.raw)
		}
	}
	release()
	if d := ts.waitDocRev(t, id, 2); d.Rev != 2 || d.Text != "abcd" {
		t.Errorf("server got rev %d %q, want rev 2 %q: the op once", d.Rev, d.Text, "abcd")
	}
}
