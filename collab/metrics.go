package collab

// Prometheus metrics. The hot paths call the methods of *Metrics below
// through one-line hooks; every method is a no-op on a nil *Metrics, so a
// server without Options.Metrics pays a nil check and nothing else. No hook
// allocates per op: counters, gauges and histograms are resolved once here,
// and Observe and Add do not allocate.

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records what the server does, as Prometheus collectors. A nil
// *Metrics records nothing. It is safe for concurrent use.
type Metrics struct {
	docsLoaded    prometheus.Gauge
	editors       prometheus.Gauge
	viewers       prometheus.Gauge
	opsApplied    prometheus.Counter
	opBytes       prometheus.Counter
	sentWS        prometheus.Counter
	framesWS      prometheus.Counter
	sentSSE       prometheus.Counter
	commitLatency prometheus.Histogram
	storageCommit prometheus.Histogram
	commitBatch   prometheus.Histogram
	queueWait     prometheus.Histogram
	transform     prometheus.Histogram
	sendWait      prometheus.Histogram
	ackLatency    prometheus.Histogram
	fanOut        prometheus.Histogram
	slowWS        prometheus.Counter
	slowSSE       prometheus.Counter
	errorsVec     *prometheus.CounterVec
	// wsErrors and httpErrors hold the counters of the known codes, so
	// counting one is a map read rather than a label lookup.
	wsErrors, httpErrors map[string]prometheus.Counter

	webhookDelivered prometheus.Counter
	webhookFailed    prometheus.Counter
	webhookDropped   prometheus.Counter
	webhookLag       prometheus.Histogram
	// The outbox's bounds (outbox.go).
	webhookEvictedN    prometheus.Counter
	webhookOmittedN    prometheus.Counter
	webhookOutboxN     prometheus.Gauge
	webhookOutboxBytes prometheus.Gauge

	// Cluster mode (cluster.go).
	docsOwned      prometheus.Gauge
	forwards       prometheus.Counter
	forwardLatency prometheus.Histogram
	takeovers      prometheus.Counter
}

// latencyBuckets span 25 µs to about 3.3 s, doubling.
var latencyBuckets = prometheus.ExponentialBuckets(25e-6, 2, 18)

// NewMetrics returns a Metrics whose collectors are registered with reg.
// It panics if they are already registered there, like MustRegister.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "collabd", Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "collabd", Name: name, Help: help})
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "collabd", Name: name, Help: help, Buckets: buckets})
	}
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "collabd", Name: "sent_bytes_total",
		Help: "Bytes written to clients, by transport (ws: WebSocket frames; sse: event streams)."}, []string{"transport"})
	slow := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "collabd", Name: "slow_clients_dropped_total",
		Help: "Connections closed because their send queue overflowed, by transport."}, []string{"transport"})
	m := &Metrics{
		docsLoaded: gauge("documents_loaded", "Documents loaded in memory, each owned by a hub."),
		editors:    gauge("editors_connected", "WebSocket editing sessions open."),
		viewers:    gauge("viewers_connected", "SSE viewer streams open."),
		opsApplied: counter("ops_applied_total", "Ops committed to the store and acknowledged."),
		opBytes:    counter("op_bytes_total", "Size of the committed ops (inserted text plus 16 bytes per component)."),
		sentWS:     sent.WithLabelValues("ws"),
		framesWS:   counter("ws_frames_sent_total", "WebSocket messages written to editors, each one frame of one or more protocol messages: what a write system call costs is per frame."),
		sentSSE:    sent.WithLabelValues("sse"),
		commitLatency: histogram("commit_seconds",
			"Time one hub's append of a batch of ops to the store takes, fsync included.", latencyBuckets),
		storageCommit: histogram("storage_commit_seconds",
			"Time one write transaction on the data file takes, across all documents: its page writes and its fsyncs.", latencyBuckets),
		commitBatch: histogram("commit_batch_ops",
			"Ops in one append to the store (one fsync, possibly shared with other documents).",
			prometheus.ExponentialBuckets(1, 2, 10)),
		queueWait: histogram("hub_queue_wait_seconds",
			"Time from an op's arrival to its hub starting to apply it.", latencyBuckets),
		transform: histogram("transform_seconds",
			"Time a hub takes to transform one op to the latest revision and apply it in memory.", latencyBuckets),
		sendWait: histogram("send_queue_wait_seconds",
			"Time from an ack entering its connection's send queue to its frame being written.", latencyBuckets),
		ackLatency: histogram("ack_latency_seconds",
			"Time from an op's arrival to its ack being written to the client.", latencyBuckets),
		fanOut: histogram("fanout_seconds",
			"Time a hub spends queueing the acks, broadcasts and viewer events of one committed batch.", latencyBuckets),
		slowWS:  slow.WithLabelValues("ws"),
		slowSSE: slow.WithLabelValues("sse"),
		errorsVec: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "collabd", Name: "errors_total",
			Help: "Errors answered to clients, by protocol error code and transport (ws: error message and close; http: API error)."},
			[]string{"code", "transport"}),
		webhookDelivered: counter("webhook_deliveries_total", "Webhook events the receiver accepted (2xx)."),
		webhookFailed:    counter("webhook_failures_total", "Webhook delivery attempts that failed; each is retried."),
		webhookDropped:   counter("webhook_dropped_total", "Webhook events given up on after WebhookOptions.MaxAge."),
		webhookLag: histogram("webhook_delivery_lag_seconds",
			"Time from a webhook event entering the outbox to the receiver accepting it.",
			prometheus.ExponentialBuckets(1e-3, 2, 20)),
	}
	m.webhookEvictedN = counter("webhook_evicted_total", "Webhook events dropped, oldest first, to keep the outbox within its bounds.")
	m.webhookOmittedN = counter("webhook_text_omitted_total", "Changed events queued without their text, the outbox being past its byte bound.")
	m.webhookOutboxN = gauge("webhook_outbox_events", "Webhook events queued in the outbox.")
	m.webhookOutboxBytes = gauge("webhook_outbox_bytes", "Bytes of the webhook event bodies queued in the outbox.")
	m.docsOwned = gauge("cluster_documents_owned", "Loaded documents whose owner lease this node holds (cluster mode); the others loaded here follow their owner.")
	m.forwards = counter("cluster_forwards_total", "Ops this node forwarded to another node owning their document, resends included (cluster mode).")
	m.forwardLatency = histogram("cluster_forward_seconds",
		"Time from an op's forward to the owner's verdict (cluster mode).", latencyBuckets)
	m.takeovers = counter("cluster_takeovers_total", "Documents this node took over from an owner that stopped serving them (cluster mode).")
	m.wsErrors, m.httpErrors = map[string]prometheus.Counter{}, map[string]prometheus.Counter{}
	for code := range closeCodes {
		m.wsErrors[code] = m.errorsVec.WithLabelValues(code, "ws")
		m.httpErrors[code] = m.errorsVec.WithLabelValues(code, "http")
	}
	m.httpErrors[CodeForbidden] = m.errorsVec.WithLabelValues(CodeForbidden, "http")
	reg.MustRegister(m.docsLoaded, m.editors, m.viewers, m.opsApplied, m.opBytes, sent, m.framesWS,
		m.commitLatency, m.storageCommit, m.commitBatch, m.queueWait, m.transform, m.sendWait, m.ackLatency, m.fanOut, slow, m.errorsVec,
		m.webhookDelivered, m.webhookFailed, m.webhookDropped, m.webhookLag,
		m.webhookEvictedN, m.webhookOmittedN, m.webhookOutboxN, m.webhookOutboxBytes,
		m.docsOwned, m.forwards, m.forwardLatency, m.takeovers)
	return m
}

// hubLoaded and hubUnloaded count the documents in memory.
func (m *Metrics) hubLoaded() {
	if m != nil {
		m.docsLoaded.Inc()
	}
}

func (m *Metrics) hubUnloaded() {
	if m != nil {
		m.docsLoaded.Dec()
	}
}

// editorSession and viewerSession count an open session; the caller
// defers the func they return.
func (m *Metrics) editorSession() func() {
	if m == nil {
		return func() {}
	}
	m.editors.Inc()
	return m.editors.Dec
}

func (m *Metrics) viewerSession() func() {
	if m == nil {
		return func() {}
	}
	m.viewers.Inc()
	return m.viewers.Dec
}

// committed records one append to the store of n ops of the given size.
func (m *Metrics) committed(took time.Duration, n, bytes int) {
	if m == nil {
		return
	}
	m.commitLatency.Observe(took.Seconds())
	m.commitBatch.Observe(float64(n))
	m.opsApplied.Add(float64(n))
	m.opBytes.Add(float64(bytes))
}

// StorageCommitted records one write transaction of the store; give it to
// the store's observer (storage.DB.ObserveCommits). commit_seconds, by
// contrast, is what one hub waits for its append, the wait for the
// transactions before it included.
func (m *Metrics) StorageCommitted(took time.Duration) {
	if m == nil {
		return
	}
	m.storageCommit.Observe(took.Seconds())
}

// opDequeued records how long an op waited for its hub; recv is zero when
// metrics are off (see conn.received).
func (m *Metrics) opDequeued(recv time.Time) {
	if m != nil && !recv.IsZero() {
		m.queueWait.Observe(time.Since(recv).Seconds())
	}
}

// clock returns the time for a hook that measures a span, or the zero
// time when metrics are off.
func (m *Metrics) clock() time.Time {
	if m == nil {
		return time.Time{}
	}
	return time.Now()
}

// transformed records the transform and apply of one op that began at
// start (from clock).
func (m *Metrics) transformed(start time.Time) {
	if m != nil && !start.IsZero() {
		m.transform.Observe(time.Since(start).Seconds())
	}
}

// fanOutDone records the fan-out of one batch; the hub defers it with
// the time it started.
func (m *Metrics) fanOutDone(start time.Time) {
	if m != nil {
		m.fanOut.Observe(time.Since(start).Seconds())
	}
}

// sseWrote counts bytes written to a viewer.
func (m *Metrics) sseWrote(chunks [][]byte) {
	if m == nil {
		return
	}
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	m.sentSSE.Add(float64(n))
}

// slowViewer counts a viewer dropped for falling behind.
func (m *Metrics) slowViewer() {
	if m != nil {
		m.slowSSE.Inc()
	}
}

// httpError counts an API error answered over HTTP.
func (m *Metrics) httpError(code string) {
	if m == nil {
		return
	}
	if c, ok := m.httpErrors[code]; ok {
		c.Inc()
		return
	}
	m.errorsVec.WithLabelValues(code, "http").Inc()
}

// Webhook outcomes.
func (m *Metrics) webhookOK(queued time.Time) {
	if m != nil {
		m.webhookDelivered.Inc()
		m.webhookLag.Observe(time.Since(queued).Seconds())
	}
}

func (m *Metrics) webhookFailure() {
	if m != nil {
		m.webhookFailed.Inc()
	}
}

func (m *Metrics) webhookGaveUp() {
	if m != nil {
		m.webhookDropped.Inc()
	}
}

func (m *Metrics) webhookEvicted(n int) {
	if m != nil && n > 0 {
		m.webhookEvictedN.Add(float64(n))
	}
}

func (m *Metrics) webhookTextOmitted(n int) {
	if m != nil && n > 0 {
		m.webhookOmittedN.Add(float64(n))
	}
}

func (m *Metrics) webhookOutbox(events int, bytes int64) {
	if m != nil {
		m.webhookOutboxN.Set(float64(events))
		m.webhookOutboxBytes.Set(float64(bytes))
	}
}

// connMetrics is what an editing connection records. It is embedded in
// conn, whose session and writer goroutines use it.
type connMetrics struct {
	metrics *Metrics
	// opRecv is when the latest op arrived, in Unix nanoseconds. A client
	// has at most one op awaiting its ack, so the next ack written is
	// that op's.
	opRecv atomic.Int64
	// ackQueued is when the hub queued that ack, in Unix nanoseconds.
	ackQueued atomic.Int64
}

// queuingAck notes that an ack is about to be queued.
func (c *connMetrics) queuingAck() {
	if c.metrics != nil {
		c.ackQueued.Store(time.Now().UnixNano())
	}
}

// received notes an op's arrival and returns its time, or the zero time
// when metrics are off, so that nothing reads the clock for nobody.
func (c *connMetrics) received() time.Time {
	if c.metrics == nil {
		return time.Time{}
	}
	now := time.Now()
	c.opRecv.Store(now.UnixNano())
	return now
}

// ackTimes are, for a frame that carries an ack, when the op it
// acknowledges arrived and when the ack was queued, in Unix nanoseconds;
// zero when unknown.
type ackTimes struct{ recv, queued int64 }

// acking returns the ackTimes of a frame about to be written, zero if it
// carries no ack. They must be taken before the write: once the client
// has the ack it may send its next op, whose arrival and ack replace
// them.
func (c *connMetrics) acking(batch [][]byte) ackTimes {
	if c.metrics == nil {
		return ackTimes{}
	}
	for _, msg := range batch {
		if len(msg) > len(ackPrefix) && string(msg[:len(ackPrefix)]) == ackPrefix {
			return ackTimes{c.opRecv.Swap(0), c.ackQueued.Swap(0)}
		}
	}
	return ackTimes{}
}

// wrote records a frame written to the client: its bytes, and the ack's
// latency and wait in the send queue if acking found an ack in it.
func (c *connMetrics) wrote(acked ackTimes, frameBytes int) {
	m := c.metrics
	if m == nil {
		return
	}
	m.sentWS.Add(float64(frameBytes))
	m.framesWS.Inc()
	if acked == (ackTimes{}) {
		return
	}
	now := time.Now()
	if acked.recv != 0 {
		m.ackLatency.Observe(now.Sub(time.Unix(0, acked.recv)).Seconds())
	}
	if acked.queued != 0 {
		m.sendWait.Observe(now.Sub(time.Unix(0, acked.queued)).Seconds())
	}
}

// protoErrorSent counts an error sent on an editing session.
func (c *connMetrics) protoErrorSent(code string) {
	m := c.metrics
	if m == nil {
		return
	}
	if ctr, ok := m.wsErrors[code]; ok {
		ctr.Inc()
		return
	}
	m.errorsVec.WithLabelValues(code, "ws").Inc()
}

// slowEditor counts an editor dropped because its queue overflowed.
func (c *connMetrics) slowEditor() {
	if c.metrics != nil {
		c.metrics.slowWS.Inc()
	}
}

// ackPrefix is how every encoded ack starts (appendAck).
const ackPrefix = `{"type":"ack"`

// wrap returns w, which counts the API errors written through it when
// metrics are on. writeError finds it by its errorCounter method.
func (m *Metrics) wrap(w http.ResponseWriter) http.ResponseWriter {
	if m == nil {
		return w
	}
	return &countingWriter{ResponseWriter: w, m: m}
}

// errorCounter is implemented by the ResponseWriter that Server.ServeHTTP
// hands to the routes when metrics are on.
type errorCounter interface{ countError(code string) }

type countingWriter struct {
	http.ResponseWriter
	m *Metrics
}

func (w *countingWriter) countError(code string) { w.m.httpError(code) }

// Unwrap lets http.ResponseController and websocket.Accept reach the
// connection underneath, to flush and hijack.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// A wrapper hides the optional interfaces of the writer it wraps from
// the code that looks for them by type assertion, so it passes them on:
// without WriteString, io.WriteString copies a shared text of megabytes
// into a slice of its own for every reader (writers_test.go checks every
// wrapper for these).

func (w *countingWriter) WriteString(s string) (int, error) {
	return io.WriteString(w.ResponseWriter, s)
}

func (w *countingWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) { return io.Copy(w.ResponseWriter, r) }

// owning counts a document whose lease this node takes (+1) or gives up (-1).
func (m *Metrics) owning(delta float64) {
	if m != nil {
		m.docsOwned.Add(delta)
	}
}

// forwarded records one forward of an op to its owner, answered after d.
func (m *Metrics) forwarded(d time.Duration) {
	if m != nil {
		m.forwards.Inc()
		m.forwardLatency.Observe(d.Seconds())
	}
}

// tookOver counts a document taken over from a stopped owner.
func (m *Metrics) tookOver() {
	if m != nil {
		m.takeovers.Inc()
	}
}
