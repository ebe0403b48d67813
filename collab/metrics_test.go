package collab

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/collabd/collabd/ot"
)

// scrape fetches url and parses it with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricValue returns the value of the sample of family name whose labels
// include those given as "k=v" (a histogram's sample count, with suffix
// _count, or sum, with _sum), and whether it exists.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	base, part := name, ""
	for _, suf := range []string{"_count", "_sum"} {
		if f, ok := fams[strings.TrimSuffix(name, suf)]; ok && strings.HasSuffix(name, suf) && f.GetType() == dto.MetricType_HISTOGRAM {
			base, part = strings.TrimSuffix(name, suf), suf
		}
	}
	f, ok := fams[base]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case part == "_count":
			return float64(m.GetHistogram().GetSampleCount()), true
		case part == "_sum":
			return m.GetHistogram().GetSampleSum(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestMetrics does a known amount of work and checks that /metrics, as the
// Prometheus text parser reads it, counts exactly that.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := newTestServer(t, Options{Metrics: NewMetrics(reg)})
	prom := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer prom.Close()
	ctx := guardCtx(t)

	id, viewID := ts.createDoc(t, "hello")
	resp, err := http.Get(ts.URL + "/api/docs/" + uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown doc: got %d, want 404", resp.StatusCode)
	}

	sse := openSSE(t, http.DefaultClient, ts.URL+"/api/view/"+viewID+"/events", nil)
	defer sse.close()
	a := ts.dial(t, id, ClientOptions{Name: "A"})
	b := ts.dial(t, id, ClientOptions{Name: "B"})
	const perClient = 8
	for i := range perClient {
		for _, c := range []*Client{a, b} {
			// EditFunc, not Edit with c.Len(): the other client's op may
			// arrive in between.
			if err := c.EditFunc(func(text string) ot.Op {
				return ot.Op{ot.Retain(utf8.RuneCountInString(text)), ot.Insert(fmt.Sprint(i))}
			}); err != nil {
				t.Fatal(err)
			}
			// One op at a time, so none is composed into another.
			if err := c.WaitSynced(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	const ops = 2 * perClient
	final := int64(1 + ops)
	for _, c := range []*Client{a, b} {
		if err := c.WaitRev(ctx, final); err != nil {
			t.Fatal(err)
		}
	}
	newViewState().follow(t, sse, final)

	// A bad op: one bad_op error on an editing session, which then ends.
	raw := ts.raw(t, id)
	raw.hello(t, ctx, uuid.NewString(), -1)
	raw.sendOp(t, ctx, 0, 1, ot.Op{ot.Retain(1000)})
	raw.expectError(t, ctx, CodeBadOp, 4409)

	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"collabd_ops_applied_total", nil, ops},
		{"collabd_commit_batch_ops_sum", nil, ops},
		{"collabd_ack_latency_seconds_count", nil, ops},
		{"collabd_hub_queue_wait_seconds_count", nil, ops + 1}, // and the bad op
		{"collabd_transform_seconds_count", nil, ops + 1},
		{"collabd_send_queue_wait_seconds_count", nil, ops},
		{"collabd_documents_loaded", nil, 1},
		{"collabd_editors_connected", nil, 2},
		{"collabd_viewers_connected", nil, 1},
		{"collabd_errors_total", []string{"code=bad_op", "transport=ws"}, 1},
		{"collabd_errors_total", []string{"code=not_found", "transport=http"}, 1},
		{"collabd_errors_total", []string{"code=bad_message", "transport=ws"}, 0},
		{"collabd_slow_clients_dropped_total", []string{"transport=ws"}, 0},
	}
	// The raw session's end is counted once its handler returns, a moment
	// after the client sees the close: look again until then.
	var bad []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fams := scrape(t, prom.URL)
		bad = bad[:0]
		for _, w := range want {
			got, ok := metricValue(fams, w.name, w.labels...)
			if !ok || got != w.value {
				bad = append(bad, fmt.Sprintf("%s%v: got %v (present %v), want %v", w.name, w.labels, got, ok, w.value))
			}
		}
		for _, name := range []string{"collabd_fanout_seconds_count", "collabd_commit_seconds_count"} {
			if got, _ := metricValue(fams, name); got < 1 || got > ops {
				bad = append(bad, fmt.Sprintf("%s: got %v, want 1..%d", name, got, ops))
			}
		}
		for _, tr := range []string{"ws", "sse"} {
			if got, _ := metricValue(fams, "collabd_sent_bytes_total", "transport="+tr); got <= 0 {
				bad = append(bad, fmt.Sprintf("sent bytes over %s: got %v, want > 0", tr, got))
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// TestMetricsOff: a server without Metrics works, and the nil recorder's
// hooks are safe.
func TestMetricsOff(t *testing.T) {
	var m *Metrics
	m.hubLoaded()
	m.committed(time.Millisecond, 1, 1)
	m.editorSession()()
	m.httpError(CodeNotFound)
	if w := m.wrap(httptest.NewRecorder()); w == nil {
		t.Fatal("wrap returned nil")
	}
	if !m.clock().IsZero() {
		t.Error("clock without metrics read the clock")
	}
	m.transformed(time.Now())
	var c connMetrics
	if !c.received().IsZero() {
		t.Error("received without metrics read the clock")
	}
	c.queuingAck()
	c.wrote(c.acking([][]byte{[]byte(`{"type":"ack","rev":1,"seq":1}`)}), 10)
}
