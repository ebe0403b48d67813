package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// benchServer is collab on a real storage file, wired as main wires it.
func benchServer(b *testing.B, o collab.Options) (*httptest.Server, *storage.DB) {
	b.Helper()
	db, err := storage.Open(filepath.Join(b.TempDir(), "bench.db"), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if o.Webhook != nil {
		o.Webhook.Outbox = outbox{db}
	}
	// One editor sends as fast as it is acknowledged.
	o.RateLimit, o.RateBurst = 1e9, 1e9
	srv := collab.New(store{db}, o)
	hs := httptest.NewServer(srv)
	b.Cleanup(func() {
		hs.Close()
		srv.Close(context.Background())
		db.Close()
	})
	return hs, db
}

func benchDoc(b *testing.B, hs *httptest.Server, hdr http.Header) string {
	b.Helper()
	req, _ := http.NewRequest("POST", hs.URL+"/api/docs", strings.NewReader(`{"text":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != 201 {
		b.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	return d.ID
}

// BenchmarkAckLatency measures one editor's op round trip (edit to ack,
// through a real fsync) with access tokens off and on. The token is
// checked once, at the upgrade, so the two should not differ.
func BenchmarkAckLatency(b *testing.B) {
	key := []byte(strings.Repeat("k", 32))
	for _, v := range []struct{ tokens, metrics bool }{{false, false}, {true, false}, {false, true}} {
		tokens := v.tokens
		name := fmt.Sprintf("tokens=%v/metrics=%v", onOff(v.tokens), onOff(v.metrics))
		b.Run(name, func(b *testing.B) {
			var o collab.Options
			if v.metrics {
				o.Metrics = collab.NewMetrics(prometheus.NewRegistry())
			}
			hdr := http.Header{}
			if tokens {
				a, err := collab.NewAuth(collab.AuthOptions{HMACSecret: key, CreateToken: "c"})
				if err != nil {
					b.Fatal(err)
				}
				o.Auth = a
				hdr.Set("Authorization", "Bearer c")
			}
			hs, _ := benchServer(b, o)
			id := benchDoc(b, hs, hdr)
			url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/api/docs/" + id + "/ws"
			if tokens {
				tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
					"doc": id, "role": "edit", "exp": time.Now().Add(time.Hour).Unix(),
				}).SignedString(key)
				url += "?token=" + tok
			}
			ctx := context.Background()
			c, err := client.Dial(ctx, url, client.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ResetTimer()
			for b.Loop() {
				if err := c.Edit(ot.Op{ot.Retain(c.Len()), ot.Insert("a")}); err != nil {
					b.Fatal(err)
				}
				if err := c.WaitSynced(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// BenchmarkWebhookLag measures the time from an op's ack to its changed
// event reaching a receiver, with a 1 ms debounce: the outbox write (an
// fsync) and the signed POST. With the default debounce, add 2 s.
func BenchmarkWebhookLag(b *testing.B) {
	secret := []byte("s")
	var mu sync.Mutex
	var latest int64
	got := make(chan struct{}, 1)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if collab.VerifyWebhook(secret, r.Header.Get(collab.SignatureHeader), body, time.Now(), time.Minute) != nil {
			w.WriteHeader(400)
			return
		}
		var ev struct {
			Type string
			Rev  int64
		}
		json.Unmarshal(body, &ev)
		if ev.Type == collab.EventChanged {
			mu.Lock()
			latest = ev.Rev
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}))
	defer rc.Close()
	hs, _ := benchServer(b, collab.Options{Webhook: &collab.WebhookOptions{URL: rc.URL, Secret: secret, Debounce: time.Millisecond}})
	id := benchDoc(b, hs, nil)
	ctx := context.Background()
	c, err := client.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/api/docs/"+id+"/ws", client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var lag time.Duration
	b.ResetTimer()
	for b.Loop() {
		if err := c.Edit(ot.Op{ot.Retain(c.Len()), ot.Insert("a")}); err != nil {
			b.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			b.Fatal(err)
		}
		acked, rev := time.Now(), c.Rev()
		for {
			mu.Lock()
			done := latest >= rev
			mu.Unlock()
			if done {
				break
			}
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				b.Fatalf("no changed event for rev %d", rev)
			}
		}
		lag += time.Since(acked)
	}
	b.ReportMetric(float64(lag.Microseconds())/float64(b.N), "lag-µs/event")
}

// BenchmarkVerifyToken is what a connection pays once for its token.
func BenchmarkVerifyToken(b *testing.B) {
	key := []byte(strings.Repeat("k", 32))
	a, err := collab.NewAuth(collab.AuthOptions{HMACSecret: key})
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"doc": "*", "role": "edit", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(key)
	srv := collab.New(nil, collab.Options{Auth: a})
	req := httptest.NewRequest("GET", "/api/docs/00000000-0000-4000-8000-000000000000/nothing", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	for b.Loop() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req) // verified, then 404 from the mux
		if w.Code != 404 {
			b.Fatalf("got %d, want 404 after the token was accepted", w.Code)
		}
	}
}
