package collab

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/collabd/collabd/ot"
)

// BenchmarkAckLatencyMem is one editor's op round trip (edit to ack) on
// the in-memory store, so that no fsync hides what tokens and metrics
// cost: tokens are checked once per connection, and the metrics hooks
// allocate nothing.
func BenchmarkAckLatencyMem(b *testing.B) {
	key := bytes.Repeat([]byte("k"), 32)
	for _, v := range []struct {
		name            string
		tokens, metrics bool
	}{{"tokens=off/metrics=off", false, false}, {"tokens=on/metrics=off", true, false}, {"tokens=off/metrics=on", false, true}} {
		b.Run(v.name, func(b *testing.B) {
			o := Options{RateLimit: 1e9, RateBurst: 1e9}
			if v.tokens {
				a, err := NewAuth(AuthOptions{HMACSecret: key})
				if err != nil {
					b.Fatal(err)
				}
				o.Auth = a
			}
			if v.metrics {
				o.Metrics = NewMetrics(prometheus.NewRegistry())
			}
			store := newMemStore()
			id := uuid.NewString()
			if err := store.Create(context.Background(), DocMeta{ID: id, ViewID: uuid.NewString(), Created: time.Now()},
				&Record{Rev: 1, Op: ot.Op{ot.Insert("x")}, Time: time.Now()}); err != nil {
				b.Fatal(err)
			}
			srv := New(store, o)
			hs := httptest.NewServer(srv)
			defer func() { hs.Close(); srv.Close(context.Background()) }()
			url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/api/docs/" + id + "/ws"
			if v.tokens {
				tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
					"doc": id, "role": RoleEdit, "exp": time.Now().Add(time.Hour).Unix(),
				}).SignedString(key)
				url += "?token=" + tok
			}
			ctx := context.Background()
			c, err := Dial(ctx, url, ClientOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
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
