package collab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/collabd/collabd/ot"
)

// Who wrote what (docs/protocol.md): GET .../authors?rev=R answers, for
// every code point of the text at R, the author id of the op that
// inserted it, as runs (ot.Runs). The runs at R are rebuilt from a
// checkpoint at or before R and the ops after it: checkpoints are made
// every authorsEvery revisions as requests replay past them, kept in
// memory (authorCache) and, when the Store can keep them (AuthorStore),
// durably, so that after the first request any revision costs at most
// authorsEvery ops of replay.
//
// An op inserts text by its own author, except a restore's, which the
// server makes (client ""): the text it brings back keeps the authors it
// had at the restored revision. That cannot be told from the op alone, so
// a restore writes a checkpoint at its own revision once committed
// (restoreAuthors), and a replay starts from a checkpoint at or after the
// last restore it needs. A replay that meets a restore younger than
// authorsGrace without its checkpoint (being written, say) labels its
// text unknown and keeps no checkpoint past it; an older one without a
// checkpoint (the server stopped before writing it) stays unknown.

const (
	// authorsEvery is the number of revisions between checkpoints.
	authorsEvery = 1000
	// authorsCacheBytes bounds the checkpoints kept in memory.
	authorsCacheBytes = 16 << 20
	// authorsGrace is how long a restore's checkpoint may take to appear.
	authorsGrace = time.Minute
	// maxAuthorNames bounds the memo of editors' names (authorNames).
	maxAuthorNames = 4096
)

// AuthorStore is what a Store also implements to keep the checkpoints of
// who wrote what durably. Without it they are kept in memory only, and
// rebuilt after a restart; restored text then loses its authors.
type AuthorStore interface {
	// SaveAuthors stores checkpoints of document id, each an opaque value
	// for one revision, replacing any at the same revision.
	SaveAuthors(ctx context.Context, id string, cps []AuthorsCheckpoint) error
	// AuthorsBefore returns the checkpoint of document id at the latest
	// revision at or before rev; a nil Data if there is none.
	AuthorsBefore(ctx context.Context, id string, rev int64) (AuthorsCheckpoint, error)
}

// AuthorsCheckpoint is the encoded authorship of a document at Rev.
type AuthorsCheckpoint struct {
	Rev  int64
	Data []byte
}

// authorsAt is who wrote the text at one revision. It is never changed
// once made, so the cache and requests share it.
type authorsAt struct {
	rev   int64
	runs  []ot.Run
	names map[string]string // author id -> name, for authors in runs
	size  int64
	used  uint64 // authorCache.tick when last used
}

// authorCache keeps authorsAt values by document, the least recently
// used going past max bytes. It is safe for concurrent use.
type authorCache struct {
	max  int64
	mu   sync.Mutex
	m    map[string][]*authorsAt // by document, by rev ascending
	size int64
	tick uint64
}

func newAuthorCache(max int64) *authorCache {
	return &authorCache{max: max, m: make(map[string][]*authorsAt)}
}

// before returns the entry of document id at the latest revision at or
// before rev, or nil.
func (c *authorCache) before(id string, rev int64) *authorsAt {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.m[id]
	i := sort.Search(len(l), func(i int) bool { return l[i].rev > rev })
	if i == 0 {
		return nil
	}
	c.tick++
	l[i-1].used = c.tick
	return l[i-1]
}

func (c *authorCache) add(id string, a *authorsAt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.m[id]
	i := sort.Search(len(l), func(i int) bool { return l[i].rev >= a.rev })
	c.tick++
	a.used = c.tick
	if i < len(l) && l[i].rev == a.rev {
		c.size += a.size - l[i].size
		l[i] = a
	} else {
		c.m[id] = append(l[:i], append([]*authorsAt{a}, l[i:]...)...)
		c.size += a.size
	}
	for c.size > c.max {
		c.evictOldest()
	}
}

func (c *authorCache) evictOldest() {
	var oldID string
	oldI := -1
	var old *authorsAt
	for id, l := range c.m {
		for i, a := range l {
			if old == nil || a.used < old.used {
				oldID, oldI, old = id, i, a
			}
		}
	}
	l := c.m[oldID]
	c.m[oldID] = append(l[:oldI], l[oldI+1:]...)
	if len(c.m[oldID]) == 0 {
		delete(c.m, oldID)
	}
	c.size -= old.size
}

// forget drops document id's entries (it was deleted).
func (c *authorCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.m[id] {
		c.size -= a.size
	}
	delete(c.m, id)
}

// authorNames remembers the name each author id last joined with, so
// that the authors of a document can be named after they left. It is
// safe for concurrent use.
type authorNames struct {
	mu sync.Mutex
	m  map[string]string
}

func (n *authorNames) note(author, name string) {
	if author == "" || name == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil || len(n.m) >= maxAuthorNames {
		n.m = make(map[string]string)
	}
	n.m[author] = name
}

func (n *authorNames) get(author string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[author]
}

// newAuthorsAt makes the immutable authorsAt of runs, naming its authors
// from names (and then from the memo of editors' names).
func (s *Server) newAuthorsAt(rev int64, runs *ot.Runs, names map[string]string) *authorsAt {
	a := &authorsAt{rev: rev, runs: runs.Runs(), names: make(map[string]string)}
	a.size = 64 + int64(len(a.runs))*32
	for _, x := range a.runs {
		if _, ok := a.names[x.Label]; ok || x.Label == "" {
			continue
		}
		name := names[x.Label]
		if name == "" {
			name = s.authorNames.get(x.Label)
		}
		if name != "" {
			a.names[x.Label] = name
			a.size += int64(len(x.Label) + len(name) + 32)
		}
	}
	return a
}

// authors returns who wrote document id's text at revision rev, or at its
// head for rev < 0.
func (s *Server) authors(ctx context.Context, id string, rev int64) (*authorsAt, error) {
	head, err := s.store.RevAt(ctx, id, time.Now().Add(time.Hour))
	if err != nil {
		return nil, err
	}
	if rev < 0 {
		rev = head
	}
	if rev > head {
		return nil, fmt.Errorf("doc %s has no rev %d: %w", id, rev, ErrNoRevision)
	}
	base := s.authorsCache.before(id, rev)
	if as, ok := s.store.(AuthorStore); ok && (base == nil || base.rev < rev) {
		cp, err := as.AuthorsBefore(ctx, id, rev)
		switch {
		case errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) || errors.Is(err, context.Canceled):
			return nil, err
		case err != nil:
			// A damaged checkpoint costs a longer replay, not the answer.
			s.log.Warn("read authors checkpoint", "doc", id, "rev", rev, "err", err)
		case cp.Data != nil && (base == nil || cp.Rev > base.rev):
			if a, err := decodeAuthors(cp); err != nil {
				s.log.Warn("decode authors checkpoint", "doc", id, "rev", cp.Rev, "err", err)
			} else {
				s.authorsCache.add(id, a)
				base = a
			}
		}
	}
	if base != nil && base.rev == rev {
		return base, nil
	}
	return s.replayAuthors(ctx, id, base, rev)
}

// replayAuthors rebuilds who wrote the text at rev from base (nil: the
// empty document at revision 0) and the ops after it, keeping the
// checkpoints it passes.
func (s *Server) replayAuthors(ctx context.Context, id string, base *authorsAt, rev int64) (*authorsAt, error) {
	runs, names, from := ot.NewRuns(nil), make(map[string]string), int64(0)
	if base != nil {
		runs, from = ot.NewRuns(base.runs), base.rev
		for k, v := range base.names {
			names[k] = v
		}
	}
	labels := make(map[string]string) // s.author's, by client id
	tentative := false
	var keep []*authorsAt
	for cur := from; cur < rev; {
		page, err := s.store.Ops(ctx, id, cur, min(rebasePage, int(rev-cur)), s.opts.MaxOpsPageBytes)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return nil, fmt.Errorf("doc %s: the store has no ops after rev %d, want up to %d", id, cur, rev)
		}
		for _, r := range page {
			if r.Rev != cur+1 {
				return nil, fmt.Errorf("doc %s: store returned rev %d after rev %d", id, r.Rev, cur)
			}
			label, ok := labels[r.Client]
			if !ok {
				label = s.author(r.Client)
				labels[r.Client] = label
				if name := clientName(r.Client); name != "" {
					names[label] = name
				}
			}
			if (r.Client == "" && r.Rev > 1 || revertOf(r.Client) != "") && time.Since(r.Time) < authorsGrace {
				tentative = true // a restore or revert whose checkpoint may be on its way
			}
			if err := runs.Apply(r.Op, label); err != nil {
				return nil, fmt.Errorf("doc %s authors at rev %d: %w", id, r.Rev, err)
			}
			cur = r.Rev
			if cur%s.authorsEvery == 0 && !tentative && cur < rev {
				keep = append(keep, s.newAuthorsAt(cur, runs, names))
			}
			if cur >= rev {
				break
			}
		}
	}
	a := s.newAuthorsAt(rev, runs, names)
	if tentative {
		return a, nil
	}
	if rev%s.authorsEvery == 0 {
		keep = append(keep, a)
	}
	s.keepAuthors(ctx, id, keep)
	s.authorsCache.add(id, a)
	return a, nil
}

// keepAuthors keeps checkpoints in memory and, if the store can, durably.
// Failing to store them costs only time later, so it is logged.
func (s *Server) keepAuthors(ctx context.Context, id string, cps []*authorsAt) {
	if len(cps) == 0 {
		return
	}
	for _, a := range cps {
		s.authorsCache.add(id, a)
	}
	as, ok := s.store.(AuthorStore)
	if !ok {
		return
	}
	enc := make([]AuthorsCheckpoint, len(cps))
	for i, a := range cps {
		enc[i] = encodeAuthors(a)
	}
	if err := as.SaveAuthors(ctx, id, enc); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("save authors checkpoints", "doc", id, "err", err)
	}
}

// restoreAuthors writes the checkpoint of revision rev, a restore of
// revision from: the text it inserted keeps its authors at from.
func (s *Server) restoreAuthors(ctx context.Context, id string, from, rev int64) error {
	page, err := s.store.Ops(ctx, id, rev-1, 1, 0)
	if err != nil {
		return err
	}
	if len(page) != 1 || page[0].Rev != rev || page[0].Client != "" {
		return fmt.Errorf("doc %s rev %d is not a restore", id, rev)
	}
	op := page[0].Op
	before, err := s.authors(ctx, id, rev-1)
	if err != nil {
		return err
	}
	old, err := s.authors(ctx, id, from)
	if err != nil {
		return err
	}
	oldRuns := ot.NewRuns(old.runs)
	if op.TargetLen() != oldRuns.Len() {
		return fmt.Errorf("doc %s rev %d does not make the text of rev %d", id, rev, from)
	}
	var ins []ot.Run
	pos := 0 // in the text op makes, which is the text at from
	for _, c := range op {
		switch {
		case c.IsRetain():
			pos += c.N
		case c.IsInsert():
			k := utf8.RuneCountInString(c.S)
			ins = append(ins, oldRuns.Slice(pos, pos+k)...)
			pos += k
		}
	}
	runs := ot.NewRuns(before.runs)
	if err := runs.ApplyLabeled(op, ins); err != nil {
		return err
	}
	names := make(map[string]string)
	for _, m := range []map[string]string{before.names, old.names} {
		for k, v := range m {
			names[k] = v
		}
	}
	a := s.newAuthorsAt(rev, runs, names)
	if as, ok := s.store.(AuthorStore); ok {
		if err := as.SaveAuthors(ctx, id, []AuthorsCheckpoint{encodeAuthors(a)}); err != nil {
			return err
		}
	}
	s.authorsCache.add(id, a)
	return nil
}

// maxRevertAuthorOps bounds the ops of a reverted run whose deleted text
// revertAuthors looks up: the text the revert puts back that none of
// them deleted counts as the reverter's.
const maxRevertAuthorOps = 64

// revertAuthors writes the checkpoint of revision rev if it is a revert,
// by client, of the run whose client id is target: each piece of text
// the revert inserts that the run had deleted keeps the authors it had
// then; the rest is the reverter's.
func (s *Server) revertAuthors(ctx context.Context, id, target, client string, rev int64) error {
	page, err := s.store.Ops(ctx, id, rev-1, 1, 0)
	if err != nil {
		return err
	}
	if len(page) != 1 || page[0].Rev != rev || page[0].Client != client {
		return nil // no op: the revert changed nothing
	}
	op := page[0].Op
	seq, last, err := s.store.ClientSeq(ctx, id, target)
	if err != nil || seq == 0 {
		return err
	}
	first, perr, err := s.runStart(ctx, id, target, seq, last)
	if err != nil || perr != nil {
		return err
	}
	// What the run deleted, with its authors then.
	type piece struct {
		text []rune
		runs *ot.Runs
	}
	var deleted []piece
	for k := first; k <= last && len(deleted) < maxRevertAuthorOps; k++ {
		ops, err := s.store.Ops(ctx, id, k-1, 1, 0)
		if err != nil {
			return err
		}
		if len(ops) != 1 || ops[0].Client != target {
			continue
		}
		var text string
		var before *authorsAt
		pos := 0
		for _, c := range ops[0].Op {
			switch {
			case c.IsRetain():
				pos += c.N
			case c.IsDelete():
				if before == nil {
					if text, err = s.loadPastText(ctx, id, k-1); err != nil {
						return err
					}
					if before, err = s.authors(ctx, id, k-1); err != nil {
						return err
					}
				}
				rs := []rune(text)
				if pos-c.N <= len(rs) {
					deleted = append(deleted, piece{rs[pos : pos-c.N], ot.NewRuns(ot.NewRuns(before.runs).Slice(pos, pos-c.N))})
				}
				pos -= c.N
			}
		}
	}
	label := s.author(client)
	var ins []ot.Run
	for _, c := range op {
		if !c.IsInsert() {
			continue
		}
		rs := []rune(c.S)
		found := false
		for _, d := range deleted {
			if i := indexRunes(d.text, rs); i >= 0 {
				ins = append(ins, d.runs.Slice(i, i+len(rs))...)
				found = true
				break
			}
		}
		if !found {
			ins = append(ins, ot.Run{Label: label, Len: len(rs)})
		}
	}
	before, err := s.authors(ctx, id, rev-1)
	if err != nil {
		return err
	}
	runs := ot.NewRuns(before.runs)
	if err := runs.ApplyLabeled(op, ins); err != nil {
		return err
	}
	names := make(map[string]string)
	for k, v := range before.names {
		names[k] = v
	}
	if name := clientName(client); name != "" {
		names[label] = name
	}
	a := s.newAuthorsAt(rev, runs, names)
	if as, ok := s.store.(AuthorStore); ok {
		if err := as.SaveAuthors(ctx, id, []AuthorsCheckpoint{encodeAuthors(a)}); err != nil {
			return err
		}
	}
	s.authorsCache.add(id, a)
	return nil
}

// indexRunes returns the index of the first instance of sub in s, or -1.
func indexRunes(s, sub []rune) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if slices.Equal(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// encodeAuthors encodes a checkpoint: a version byte, the authors (id and
// name), then the runs (author index and length), as uvarints and
// length-prefixed strings.
func encodeAuthors(a *authorsAt) AuthorsCheckpoint {
	idx := make(map[string]int)
	var order []string
	for _, x := range a.runs {
		if _, ok := idx[x.Label]; !ok {
			idx[x.Label] = len(order)
			order = append(order, x.Label)
		}
	}
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(len(order)))
	for _, au := range order {
		b = appendString(b, au)
		b = appendString(b, a.names[au])
	}
	b = binary.AppendUvarint(b, uint64(len(a.runs)))
	for _, x := range a.runs {
		b = binary.AppendUvarint(b, uint64(idx[x.Label]))
		b = binary.AppendUvarint(b, uint64(x.Len))
	}
	return AuthorsCheckpoint{Rev: a.rev, Data: b}
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

var errBadAuthors = errors.New("malformed authors checkpoint")

func decodeAuthors(cp AuthorsCheckpoint) (*authorsAt, error) {
	b := cp.Data
	if len(b) == 0 || b[0] != 1 {
		return nil, errBadAuthors
	}
	b = b[1:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := uv()
		if !ok || n > uint64(len(b)) {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	n, ok := uv()
	if !ok || n > uint64(len(b)) {
		return nil, errBadAuthors
	}
	a := &authorsAt{rev: cp.Rev, names: make(map[string]string)}
	order := make([]string, n)
	for i := range order {
		au, ok1 := str()
		name, ok2 := str()
		if !ok1 || !ok2 {
			return nil, errBadAuthors
		}
		order[i] = au
		if name != "" {
			a.names[au] = name
		}
	}
	k, ok := uv()
	if !ok || k > uint64(len(b)) {
		return nil, errBadAuthors
	}
	a.runs = make([]ot.Run, k)
	for i := range a.runs {
		j, ok1 := uv()
		l, ok2 := uv()
		if !ok1 || !ok2 || j >= uint64(len(order)) || l == 0 || l > 1<<40 {
			return nil, errBadAuthors
		}
		a.runs[i] = ot.Run{Label: order[j], Len: int(l)}
	}
	a.size = 64 + int64(len(cp.Data))*2 + int64(len(a.runs))*32
	return a, nil
}

func (s *Server) handleDocAuthors(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	s.serveAuthors(w, r, id)
}

func (s *Server) handleViewAuthors(w http.ResponseWriter, r *http.Request) {
	id, err := s.viewDoc(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.serveAuthors(w, r, id)
}

// serveAuthors answers GET .../authors?rev=R (or ?at=, or the head).
func (s *Server) serveAuthors(w http.ResponseWriter, r *http.Request, id string) {
	rev, asked, err := s.historyRev(r, id)
	if err != nil {
		s.writeHistoryError(w, r, err)
		return
	}
	if !asked {
		rev = -1
	}
	a, err := s.authors(r.Context(), id, rev)
	if err != nil {
		s.writeHistoryError(w, r, err)
		return
	}
	// The answer is up to some 40 bytes a run: held under the budget of
	// response bytes (held.go) while it is made and written.
	key := unsafe.Pointer(new(byte))
	if !s.held.hold(key, 64+a.size+int64(len(a.runs))*48) {
		s.refuseHeld(w)
		return
	}
	defer s.held.release(key)
	b := fmt.Appendf(nil, `{"rev":%d,"runs":[`, a.rev)
	for i, x := range a.runs {
		if i > 0 {
			b = append(b, ',')
		}
		// Author ids are base64url: nothing to escape.
		b = fmt.Appendf(b, `{"author":"%s","len":%d}`, x.Label, x.Len)
	}
	b = append(append(b, `],"names":`...), mustJSON(a.names)...)
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}
