package collab

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/collabd/collabd/ot"
)

// BenchmarkSignedInRead is one GET /api/view/{viewId}/text through the
// server's handler, in process, with sign-in off and on (a signed-in
// member by the proxy's header, the access record read from the
// in-memory AccessStore on every request): what the access check costs a
// request, without a network or a disk.
func BenchmarkSignedInRead(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "signin=off"
		if on {
			name = "signin=on"
		}
		b.Run(name, func(b *testing.B) {
			o := Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, MaxConnsPerAddr: 1 << 20}
			acc := newMemAccess()
			if on {
				o.SignIn = &SignInOptions{Store: acc, Header: "X-User"}
			}
			store := newMemStore()
			id, viewID := uuid.NewString(), uuid.NewString()
			if err := store.Create(context.Background(), DocMeta{ID: id, ViewID: viewID, Created: time.Now()},
				&Record{Rev: 1, Op: ot.Op{ot.Insert("hello")}, Time: time.Now()}); err != nil {
				b.Fatal(err)
			}
			acc.SetAccess(context.Background(), id, Access{Owner: "olga", Link: LinkNone, Members: []Member{{User: "bob", Role: "view"}}})
			srv := New(store, o)
			defer srv.Close(context.Background())
			req := httptest.NewRequest("GET", "/api/view/"+viewID+"/text", nil)
			req.RemoteAddr = "127.0.0.1:1234"
			req.Header.Set("X-User", "bob")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("got %d %s", w.Code, w.Body)
				}
			}
		})
	}
}
