package jetstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/collabd/collabd/ot"
)

// DocMeta identifies a document, as collab.DocMeta does.
type DocMeta struct {
	ID      string // the edit id
	ViewID  string // the view id
	Created time.Time
}

// Record is one committed op, as collab.Record: op Rev turned revision
// Rev-1 into Rev; Client and Seq identify who sent it, for dedupe.
type Record struct {
	Rev    int64
	Op     ot.Op
	Client string
	Seq    int64
	Time   time.Time
}

// ClientState is the last op applied from one client: its seq and the
// revision it became.
type ClientState struct {
	Seq, Rev int64
}

// StoredDoc is a document as Load returns it: collab.StoredDoc plus the
// client table a new owner needs for dedupe, and the stream position.
type StoredDoc struct {
	Meta    DocMeta
	Rev     int64
	Text    string
	Clients map[string]ClientState
	// Seq is the stream sequence of the document's last message (0 if it
	// has none): the position the next Append is fenced on.
	Seq uint64
	// Tail is how many records Load replayed after the snapshot.
	Tail int64
}

// Headers on every op message. The revisions let a reader binary-search a
// subject and check continuity without decoding payloads.
const (
	hdrFirst = "Collab-Rev-First"
	hdrLast  = "Collab-Rev-Last"
)

// wireRecord is a record in an op message. JSON, so that `nats stream get`
// shows something a person can read; ot.Op owns its JSON form.
type wireRecord struct {
	Rev    int64  `json:"rev"`
	Op     ot.Op  `json:"op"`
	Client string `json:"client,omitempty"`
	Seq    int64  `json:"seq,omitempty"`
	Time   int64  `json:"t,omitempty"` // Unix nanoseconds; 0 for the zero time
}

type wireGroup struct {
	V    int          `json:"v"`
	Recs []wireRecord `json:"recs"`
}

const wireVersion = 1

func toWire(r Record) wireRecord {
	w := wireRecord{Rev: r.Rev, Op: r.Op, Client: r.Client, Seq: r.Seq}
	if !r.Time.IsZero() {
		w.Time = r.Time.UnixNano()
	}
	return w
}

func fromWire(w wireRecord) Record {
	r := Record{Rev: w.Rev, Op: w.Op, Client: w.Client, Seq: w.Seq}
	if w.Time != 0 {
		r.Time = time.Unix(0, w.Time).UTC()
	}
	return r
}

// encodeGroup returns the message for recs, which must be non-empty.
func encodeGroup(id string, recs []Record) *nats.Msg {
	data := appendGroup(nil, recs)
	m := nats.NewMsg(opsSubject(id))
	m.Data = data
	m.Header.Set(hdrFirst, strconv.FormatInt(recs[0].Rev, 10))
	m.Header.Set(hdrLast, strconv.FormatInt(recs[len(recs)-1].Rev, 10))
	return m
}

// appendGroup appends the JSON encoding of recs as a wireGroup, written
// by hand: encoding/json's reflection was a tenth of a node's CPU per op.
// TestAppendGroup checks it against encoding/json.
func appendGroup(dst []byte, recs []Record) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, wireVersion, 10)
	dst = append(dst, `,"recs":[`...)
	for i, r := range recs {
		if i > 0 {
			dst = append(dst, ',')
		}
		w := toWire(r)
		dst = append(dst, `{"rev":`...)
		dst = strconv.AppendInt(dst, w.Rev, 10)
		dst = append(dst, `,"op":`...)
		dst = w.Op.AppendJSON(dst)
		if w.Client != "" {
			dst = append(dst, `,"client":`...)
			dst = appendJSONString(dst, w.Client)
		}
		if w.Seq != 0 {
			dst = append(dst, `,"seq":`...)
			dst = strconv.AppendInt(dst, w.Seq, 10)
		}
		if w.Time != 0 {
			dst = append(dst, `,"t":`...)
			dst = strconv.AppendInt(dst, w.Time, 10)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// appendJSONString appends s as a JSON string: as is when it needs no
// escaping (client ids are UUIDs), else through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("jetstream: encode string: %v", err)) // a string always encodes
	}
	return append(dst, b...)
}

// decodeGroup decodes an op message and checks it against its headers:
// revisions consecutive from first to last, every op well formed.
func decodeGroup(hdr nats.Header, data []byte) ([]Record, error) {
	first, last, err := revRange(hdr)
	if err != nil {
		return nil, err
	}
	var g wireGroup
	if !quickGroup(data, &g) {
		g = wireGroup{}
		if err := json.Unmarshal(data, &g); err != nil {
			return nil, fmt.Errorf("decode group: %w", err)
		}
	}
	if g.V != wireVersion {
		return nil, fmt.Errorf("group version %d, want %d", g.V, wireVersion)
	}
	if int64(len(g.Recs)) != last-first+1 {
		return nil, fmt.Errorf("group of revs %d..%d holds %d records", first, last, len(g.Recs))
	}
	recs := make([]Record, len(g.Recs))
	for i, w := range g.Recs {
		if w.Rev != first+int64(i) {
			return nil, fmt.Errorf("group of revs %d..%d: record %d claims rev %d", first, last, i, w.Rev)
		}
		if err := w.Op.Validate(); err != nil {
			return nil, fmt.Errorf("rev %d: %w", w.Rev, err)
		}
		recs[i] = fromWire(w)
	}
	return recs, nil
}

// quickGroup parses data in exactly the form appendGroup writes (with
// client ids that needed no escaping), by hand: every follower decodes
// every message, and encoding/json's reflection was a few percent of a
// node's CPU per op. False for anything else, which encoding/json then
// reads. TestAppendGroup checks both agree.
func quickGroup(data []byte, g *wireGroup) bool {
	p := groupParser{b: data}
	if !p.lit(`{"v":`) {
		return false
	}
	v, ok := p.int()
	if !ok || !p.lit(`,"recs":[`) {
		return false
	}
	g.V = int(v)
	for first := true; ; first = false {
		if p.lit("]}") {
			return p.i == len(p.b) && len(g.Recs) > 0
		}
		if !first && !p.lit(",") {
			return false
		}
		var w wireRecord
		if !p.lit(`{"rev":`) {
			return false
		}
		if w.Rev, ok = p.int(); !ok || !p.lit(`,"op":`) {
			return false
		}
		op, ok := p.array()
		if !ok || w.Op.UnmarshalJSON(op) != nil {
			return false
		}
		if p.lit(`,"client":"`) {
			end := bytes.IndexByte(p.b[p.i:], '"')
			if end < 0 || bytes.IndexByte(p.b[p.i:p.i+end], '\\') >= 0 {
				return false
			}
			w.Client = string(p.b[p.i : p.i+end])
			p.i += end + 1
		}
		if p.lit(`,"seq":`) {
			if w.Seq, ok = p.int(); !ok {
				return false
			}
		}
		if p.lit(`,"t":`) {
			if w.Time, ok = p.int(); !ok {
				return false
			}
		}
		if !p.lit("}") {
			return false
		}
		g.Recs = append(g.Recs, w)
	}
}

// groupParser reads a group's JSON for quickGroup.
type groupParser struct {
	b []byte
	i int
}

// lit consumes s if the input continues with it.
func (p *groupParser) lit(s string) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		return false
	}
	p.i += len(s)
	return true
}

// int consumes a decimal integer.
func (p *groupParser) int() (int64, bool) {
	j := p.i
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(p.b[p.i:j]), 10, 64)
	if err != nil {
		return 0, false
	}
	p.i = j
	return n, true
}

// array consumes a flat JSON array (numbers and strings, as an op is)
// and returns it whole.
func (p *groupParser) array() ([]byte, bool) {
	start := p.i
	if p.i >= len(p.b) || p.b[p.i] != '[' {
		return nil, false
	}
	inStr := false
	for j := p.i + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case inStr && c == '\\':
			j++ // the escaped byte
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '[' || c == '{'):
			return nil, false
		case !inStr && c == ']':
			p.i = j + 1
			return p.b[start:p.i], true
		}
	}
	return nil, false
}

// revRange reads the revisions a message holds from its headers.
func revRange(hdr nats.Header) (first, last int64, err error) {
	first, err1 := strconv.ParseInt(hdr.Get(hdrFirst), 10, 64)
	last, err2 := strconv.ParseInt(hdr.Get(hdrLast), 10, 64)
	if err1 != nil || err2 != nil || first < 1 || last < first {
		return 0, 0, fmt.Errorf("bad revision headers %q..%q", hdr.Get(hdrFirst), hdr.Get(hdrLast))
	}
	return first, last, nil
}

// wireMeta is a collab_docs value.
type wireMeta struct {
	V       int    `json:"v"`
	ViewID  string `json:"view"`
	Created int64  `json:"created"`
}

// wireSnapshot is a collab_snaps object: the text at Rev and the client
// table there. Seq is the stream sequence of the message holding Rev, so
// Load replays from Seq on, skipping records up to Rev.
type wireSnapshot struct {
	V       int                 `json:"v"`
	Rev     int64               `json:"rev"`
	Seq     uint64              `json:"seq"`
	Runes   int                 `json:"runes"`
	Text    string              `json:"text"`
	Clients map[string][2]int64 `json:"clients,omitempty"`
}
