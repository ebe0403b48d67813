package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// jsonCall makes a JSON request and decodes a 2xx answer into out.
func jsonCall(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, data)
		}
	}
	return resp.StatusCode
}

// TestCommentsSurviveRestart: threads are kept in the data file, move
// with the text across a restart, and go with their document.
func TestCommentsSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collab.db")
	s := startServerAt(t, path)
	id := createDoc(t, s.URL, "hello world")
	docs := s.URL + "/api/docs/" + id
	var c struct{ ID string }
	if st := jsonCall(t, "POST", docs+"/comments", `{"rev":1,"range":[6,11],"text":"which world?","name":"Ada"}`, &c); st != 201 {
		t.Fatalf("create comment: got %d, want 201", st)
	}
	if st := jsonCall(t, "POST", docs+"/comments/"+c.ID+"/replies", `{"text":"this one"}`, nil); st != 201 {
		t.Fatalf("reply: got %d, want 201", st)
	}
	if st := jsonCall(t, "POST", docs+"/ops", `{"rev":1,"op":["big ",11]}`, nil); st != 200 {
		t.Fatalf("op: got %d", st)
	}
	s.Stop(t)

	s = startServerAt(t, path)
	docs = s.URL + "/api/docs/" + id
	var got struct {
		Rev      int64
		Comments []struct {
			ID, Text, Name string
			Range          [2]int
			Replies        []struct{ Text string }
		}
	}
	if st := jsonCall(t, "GET", docs+"/comments", "", &got); st != 200 {
		t.Fatalf("GET comments after restart: got %d", st)
	}
	if len(got.Comments) != 1 || got.Comments[0].Range != [2]int{10, 15} || got.Comments[0].Name != "Ada" ||
		len(got.Comments[0].Replies) != 1 || got.Rev != 2 {
		t.Fatalf("after restart: got %+v, want Ada's thread on [10,15] at rev 2 with its reply", got)
	}
	if st := jsonCall(t, "DELETE", docs, "", nil); st != 204 {
		t.Fatalf("delete: got %d", st)
	}
	if st := jsonCall(t, "GET", docs+"/comments", "", nil); st != 404 {
		t.Fatalf("comments of a deleted document: got %d, want 404", st)
	}
}

// TestCommentsCluster: in cluster mode a thread made through one node is
// read, and changed, through another, and both place it alike.
func TestCommentsCluster(t *testing.T) {
	nodes, _ := inprocCluster(t, 2)
	id := inprocCreate(t, nodes[0], "hello world")
	urls := []string{nodes[0].http.URL + "/api/docs/" + id, nodes[1].http.URL + "/api/docs/" + id}
	type listed struct {
		Rev      int64
		Comments []struct {
			ID      string
			Range   [2]int
			Replies []struct{ Text string }
		}
	}
	get := func(i int) listed {
		var l listed
		if st := jsonCall(t, "GET", urls[i]+"/comments", "", &l); st != 200 {
			t.Fatalf("GET comments on node %d: got %d", i, st)
		}
		return l
	}
	get(0) // both hubs have loaded the (empty) set before the change
	get(1)
	var c struct{ ID string }
	if st := jsonCall(t, "POST", urls[1]+"/comments", `{"rev":1,"range":[6,11],"text":"w"}`, &c); st != 201 {
		t.Fatalf("create on node 1: got %d", st)
	}
	if st := jsonCall(t, "POST", urls[0]+"/ops", `{"rev":1,"op":["big ",11]}`, nil); st != 200 {
		t.Fatalf("op on node 0: got %d", st)
	}
	if st := jsonCall(t, "POST", urls[0]+"/comments/"+c.ID+"/replies", `{"text":"r"}`, nil); st != 201 {
		t.Fatalf("reply on node 0: got %d", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, b := get(0), get(1)
		ok := len(a.Comments) == 1 && len(b.Comments) == 1 && a.Rev == b.Rev && len(b.Comments[0].Replies) == 1
		if ok && a.Comments[0].Range == [2]int{10, 15} && b.Comments[0].Range == a.Comments[0].Range {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes disagree on the comments: node 0 %+v, node 1 %+v; want one thread on [10,15] with its reply", a, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
