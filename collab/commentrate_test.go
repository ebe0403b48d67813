package collab

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"testing"

	"github.com/google/uuid"
)

// TestCommentRatePerAddressNotPerConnection: comment writes are charged
// to the client's address, so opening a fresh connection for every
// request buys no more writes (docs/comments.md, "Why per address"),
// while another address keeps its own allowance.
func TestCommentRatePerAddressNotPerConnection(t *testing.T) {
	ts := newTestServer(t, Options{
		CommentRate: 0.001, CommentBurst: 3,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	id, _ := ts.createDoc(t, "abc")
	post := func(from string) (int, http.Header, []byte) {
		// A transport of its own per request: a new TCP connection each time.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		req, _ := http.NewRequestWithContext(guardCtx(t), http.MethodPost, ts.URL+"/api/docs/"+id+"/comments",
			bytes.NewReader([]byte(`{"rev":1,"range":[0,1],"text":"x"}`)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", from)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	for i := range 3 {
		if st, _, b := post("198.51.100.7"); st != http.StatusCreated {
			t.Fatalf("comment %d: got %d %s, want 201", i, st, b)
		}
	}
	st, h, b := post("198.51.100.7")
	if st != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
		t.Fatalf("4th comment on a 4th connection: got %d (Retry-After %q), want 429 with Retry-After 1", st, h.Get("Retry-After"))
	}
	if code, _ := apiErrorOf(t, b); code != CodeRateLimited {
		t.Fatalf("4th comment: code %q, want %q", code, CodeRateLimited)
	}
	if st, _, b := post("198.51.100.8"); st != http.StatusCreated {
		t.Fatalf("another address: got %d %s, want 201", st, b)
	}
}

// TestCommentsNotWritableOverWebSocket: the editing WebSocket only
// delivers comment messages; a client that sends one is refused with
// bad_message (which ends its session) and no thread is made. This is why the comment rate limit
// has no per-connection part (docs/comments.md, "Why per address").
func TestCommentsNotWritableOverWebSocket(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "hello world")
	ctx := guardCtx(t)
	for _, m := range []string{
		`{"type":"comment","rev":1,"range":[0,5],"text":"over the socket"}`,
		`{"type":"comments","rev":1,"comments":[{"range":[0,5],"text":"over the socket"}]}`,
	} {
		// bad_message ends the session: one connection per message.
		r := ts.raw(t, id)
		if err := r.send(ctx, fmt.Sprintf(`{"type":"hello","client":%q,"name":"x","features":["comments"]}`, uuid.NewString())); err != nil {
			t.Fatal(err)
		}
		if err := r.send(ctx, m); err != nil {
			t.Fatal(err)
		}
		for {
			w, err := r.next(ctx)
			if err != nil {
				t.Fatalf("after %s: %v, want an error message", m, err)
			}
			if w.Type == "error" {
				if w.Code != CodeBadMessage {
					t.Fatalf("after %s: error %q, want %q", m, w.Code, CodeBadMessage)
				}
				break
			}
		}
	}
	if got := getComments(t, ts.URL, id); len(got.Comments) != 0 {
		t.Fatalf("threads after comment messages on the WebSocket: %d, want 0", len(got.Comments))
	}
}
