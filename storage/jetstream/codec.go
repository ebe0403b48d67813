package jetstream

import (
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
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("decode group: %w", err)
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
