package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
)

// TestClusterInprocHistorySearch: the search in history works through
// the cluster's store: a document written through one node is searched
// on another, in one request and a revision at a time (each page's text
// rebuilt by the stream's LoadAt).
func TestClusterInprocHistorySearch(t *testing.T) {
	inprocCtx(t, 60*time.Second)
	nodes, _ := inprocClusterOpts(t, 2, collab.Options{HistorySearchOps: 1})
	id := inprocCreate(t, nodes[0], "alpha")                                 // 1
	for _, text := range []string{"alpha needle", "alpha", "Needle again"} { // 2, 3, 4
		req, _ := http.NewRequest("PUT", nodes[0].http.URL+"/api/docs/"+id+"/text", strings.NewReader(string(mustMarshal(map[string]string{"text": text}))))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("put %q: %d", text, resp.StatusCode)
		}
	}
	type span struct {
		From int64
		To   *int64
	}
	var got []string
	for from := int64(0); ; {
		resp, err := http.Get(fmt.Sprintf("%s/api/docs/%s/history/search?q=needle&from=%d", nodes[1].http.URL, id, from))
		if err != nil {
			t.Fatal(err)
		}
		var a struct {
			Head, Scanned int64
			Complete      bool
			Spans         []span
		}
		err = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || a.Head != 4 {
			t.Fatalf("search from %d on the other node: %d %v, head %d", from, resp.StatusCode, err, a.Head)
		}
		for i, s := range a.Spans {
			to := ""
			if s.To != nil {
				to = fmt.Sprint(*s.To)
			}
			// A span left open by the last page continues in this one.
			if k := len(got) - 1; i == 0 && k >= 0 && strings.HasSuffix(got[k], "-") && s.From == from {
				got[k] += to
				continue
			}
			got = append(got, fmt.Sprintf("%d-%s", s.From, to))
		}
		if a.Complete {
			break
		}
		from = a.Scanned
	}
	if want := []string{"2-3", "4-"}; !reflect.DeepEqual(got, want) {
		t.Errorf("spans page by page: got %v, want %v", got, want)
	}
}
