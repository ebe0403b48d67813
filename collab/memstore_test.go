package collab

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
)

// memStore is an in-memory Store for tests of collab alone. It keeps
// the whole op log and rebuilds text by replaying it, so it is slow for
// large documents but simple enough to trust. The end-to-end tests in
// cmd/collabd run against the real bbolt storage.
type memStore struct {
	mu      sync.Mutex
	docs    map[string]*memDoc
	views   map[string]string
	failErr error // when set, Append fails with it
	pingErr error // when set, Ping fails with it
	usage   Usage // what Usage reports
}

type memDoc struct {
	meta    DocMeta
	ops     []Record
	clients map[string][2]int64
	snaps   map[int64]string
	// comments are its comment records (CommentStore).
	comments map[string][]byte
}

func newMemStore() *memStore {
	return &memStore{docs: make(map[string]*memDoc), views: make(map[string]string), usage: Usage{FreeBytes: -1}}
}

func (m *memStore) Create(ctx context.Context, meta DocMeta, first *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.docs[meta.ID]; ok {
		return fmt.Errorf("doc %s exists", meta.ID)
	}
	d := &memDoc{meta: meta, clients: make(map[string][2]int64), snaps: make(map[int64]string)}
	if first != nil {
		d.ops = append(d.ops, *first)
	}
	m.docs[meta.ID] = d
	m.views[meta.ViewID] = meta.ID
	return nil
}

func (m *memStore) doc(id string) (*memDoc, error) {
	d, ok := m.docs[id]
	if !ok {
		return nil, fmt.Errorf("doc %s: %w", id, ErrNotFound)
	}
	return d, nil
}

func (m *memStore) ViewDoc(ctx context.Context, viewID string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.views[viewID]
	if !ok {
		return "", ErrNotFound
	}
	return id, nil
}

func (m *memStore) Load(ctx context.Context, id string) (*StoredDoc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.doc(id)
	if err != nil {
		return nil, err
	}
	doc := ot.NewDoc("")
	for _, r := range d.ops {
		if err := doc.Apply(r.Op); err != nil {
			return nil, fmt.Errorf("replay rev %d: %w", r.Rev, err)
		}
	}
	var logBytes int64
	for _, r := range d.ops {
		logBytes += EstimateRecordBytes(r)
	}
	return &StoredDoc{Meta: d.meta, Rev: int64(len(d.ops)), Text: doc.String(), LogBytes: logBytes}, nil
}

func (m *memStore) Append(ctx context.Context, id string, recs []Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	d, err := m.doc(id)
	if err != nil {
		return err
	}
	for i, r := range recs {
		if r.Rev != int64(len(d.ops)+i+1) {
			return fmt.Errorf("append rev %d to doc at rev %d: gap", r.Rev, len(d.ops))
		}
	}
	for _, r := range recs {
		d.ops = append(d.ops, r)
		d.clients[r.Client] = [2]int64{r.Seq, r.Rev}
	}
	return nil
}

func (m *memStore) Ops(ctx context.Context, id string, after int64, limit, maxBytes int) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.doc(id)
	if err != nil {
		return nil, err
	}
	if after >= int64(len(d.ops)) {
		return []Record{}, nil
	}
	out := d.ops[after:]
	if len(out) > limit {
		out = out[:limit]
	}
	size := 0
	for i, r := range out {
		if size += opBytes(r.Op); maxBytes > 0 && i > 0 && size > maxBytes {
			out = out[:i]
			break
		}
	}
	return slices.Clone(out), nil
}

func (m *memStore) ClientSeq(ctx context.Context, id, client string) (int64, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.doc(id)
	if err != nil {
		return 0, 0, err
	}
	c := d.clients[client]
	return c[0], c[1], nil
}

func (m *memStore) SaveSnapshot(ctx context.Context, id string, rev int64, text string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.doc(id)
	if err != nil {
		return err
	}
	d.snaps[rev] = text
	return nil
}

func (m *memStore) Ping(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pingErr
}

func (m *memStore) Usage(ctx context.Context) (Usage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.usage, nil
}

// setUsage changes what Usage reports, as a disk filling up would.
func (m *memStore) setUsage(u Usage) {
	m.mu.Lock()
	m.usage = u
	m.mu.Unlock()
}

func (m *memStore) LoadAt(ctx context.Context, id string, rev int64) (*StoredDoc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.doc(id)
	if err != nil {
		return nil, err
	}
	if rev < 0 || rev > int64(len(d.ops)) {
		return nil, fmt.Errorf("doc %s rev %d: %w", id, rev, ErrNoRevision)
	}
	doc := ot.NewDoc("")
	for _, r := range d.ops[:rev] {
		if err := doc.Apply(r.Op); err != nil {
			return nil, fmt.Errorf("replay rev %d: %w", r.Rev, err)
		}
	}
	return &StoredDoc{Meta: d.meta, Rev: rev, Text: doc.String()}, nil
}

// times returns the ops' times as the real store files them: never
// decreasing along the revisions.
func (d *memDoc) times() []time.Time {
	out := make([]time.Time, len(d.ops))
	var last time.Time
	for i, r := range d.ops {
		if r.Time.After(last) {
			last = r.Time
		}
		out[i] = last
	}
	return out
}

func (m *memStore) RevAt(ctx context.Context, id string, t time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.doc(id)
	if err != nil {
		return 0, err
	}
	rev := int64(0)
	for i, at := range d.times() {
		if at.After(t) {
			break
		}
		rev = int64(i + 1)
	}
	return rev, nil
}

func memStats(op ot.Op) (ins, del int64) {
	for _, c := range op {
		switch {
		case c.N < 0:
			del -= int64(c.N)
		case c.N == 0:
			ins += int64(utf8.RuneCountInString(c.S))
		}
	}
	return ins, del
}

func (m *memStore) Revisions(ctx context.Context, id string, after int64, limit int) ([]Revision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.doc(id)
	if err != nil {
		return nil, err
	}
	out := []Revision{}
	times := d.times()
	for i := max(after, 0); i < int64(len(d.ops)) && len(out) < limit; i++ {
		r := d.ops[i]
		ins, del := memStats(r.Op)
		out = append(out, Revision{Rev: r.Rev, Time: times[i], Client: r.Client, Inserted: ins, Deleted: del})
	}
	return out, nil
}

func (m *memStore) Activity(ctx context.Context, id string, after int64, unit time.Duration, limit int) ([]Bucket, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.doc(id)
	if err != nil {
		return nil, err
	}
	out := []Bucket{}
	times := d.times()
	for i := max(after, 0); i < int64(len(d.ops)); i++ {
		r := d.ops[i]
		start := times[i].UTC().Truncate(unit)
		if len(out) == 0 || !out[len(out)-1].Start.Equal(start) {
			if len(out) == limit {
				break
			}
			out = append(out, Bucket{Start: start, FirstRev: r.Rev, Clients: []string{}})
		}
		b := &out[len(out)-1]
		ins, del := memStats(r.Op)
		b.LastRev, b.Count, b.Inserted, b.Deleted = r.Rev, b.Count+1, b.Inserted+ins, b.Deleted+del
		if !slices.Contains(b.Clients, r.Client) {
			b.Clients = append(b.Clients, r.Client)
		}
	}
	return out, nil
}

func (m *memStore) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.doc(id)
	if err != nil {
		return err
	}
	delete(m.docs, id)
	delete(m.views, d.meta.ViewID)
	return nil
}

func (m *memStore) Comments(ctx context.Context, id string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.doc(id)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(d.comments))
	for k, v := range d.comments {
		out[k] = bytes.Clone(v)
	}
	return out, nil
}

func (m *memStore) PutComments(ctx context.Context, id string, put map[string][]byte, del []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	d, err := m.doc(id)
	if err != nil {
		return err
	}
	if d.comments == nil {
		d.comments = make(map[string][]byte)
	}
	for k, v := range put {
		d.comments[k] = bytes.Clone(v)
	}
	for _, k := range del {
		delete(d.comments, k)
	}
	return nil
}

func (m *memStore) setFail(err error) {
	m.mu.Lock()
	m.failErr = err
	m.mu.Unlock()
}
