package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// TestEmbedEndToEnd runs collabd with access tokens, webhooks, metrics and
// pprof on: events made while the receiver is down survive a restart of
// the server in its data file and arrive once the receiver is back.
func TestEmbedEndToEnd(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "jwt.key")
	secretFile := filepath.Join(dir, "webhook.secret")
	key := strings.Repeat("k", 32)
	os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	os.WriteFile(secretFile, []byte("whsec\n"), 0o600)

	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var events []map[string]any
	var problems []string
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if down.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if err := collab.VerifyWebhook([]byte("whsec"), r.Header.Get(collab.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			problems = append(problems, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev map[string]any
		json.Unmarshal(body, &ev)
		events = append(events, ev)
	}))
	defer rc.Close()

	data := filepath.Join(dir, "collab.db")
	args := []string{"-auth-key-file", keyFile, "-create-token", "team",
		"-webhook-url", rc.URL, "-webhook-secret-file", secretFile, "-webhook-debounce", "50ms",
		"-admin-addr", "127.0.0.1:0"}
	s := startServerAt(t, data, args...)

	// Creating needs the create token; reading needs a JWT.
	req, _ := http.NewRequest("POST", s.URL+"/api/docs", strings.NewReader(`{"text":"hi"}`))
	req.Header.Set("Content-Type", "application/json")
	if resp := do(t, req); resp.StatusCode != 401 {
		t.Fatalf("create without the token: got %d, want 401", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", s.URL+"/api/docs", strings.NewReader(`{"text":"hi"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer team")
	resp := do(t, req)
	if resp.StatusCode != 201 {
		t.Fatalf("create with the token: got %d, want 201", resp.StatusCode)
	}
	var doc struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&doc)
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"doc": doc.ID, "role": "edit", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(key))
	req, _ = http.NewRequest("GET", s.URL+"/api/docs/"+doc.ID, nil)
	if resp := do(t, req); resp.StatusCode != 401 {
		t.Fatalf("read without a JWT: got %d, want 401", resp.StatusCode)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp := do(t, req); resp.StatusCode != 200 {
		t.Fatalf("read with a JWT: got %d, want 200", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/api/docs/"+doc.ID+"/ws?token="+tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Edit(ot.Op{ot.Retain(2), ot.Insert("!")}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()

	req, _ = http.NewRequest("GET", s.AdminURL+"/debug/pprof/cmdline", nil)
	if resp := do(t, req); resp.StatusCode != 404 {
		t.Errorf("pprof without -pprof: got %d, want 404", resp.StatusCode)
	}
	s.Stop(t)

	s = startServerAt(t, data, append(args, "-pprof")...)
	req, _ = http.NewRequest("GET", s.AdminURL+"/debug/pprof/cmdline", nil)
	if resp := do(t, req); resp.StatusCode != 200 {
		t.Errorf("pprof with -pprof: got %d, want 200", resp.StatusCode)
	}
	time.Sleep(200 * time.Millisecond) // a refused attempt after the restart
	down.Store(false)

	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	if len(problems) > 0 {
		t.Errorf("receiver refused deliveries: %v", problems)
	}
	if len(events) != 2 || events[0]["type"] != collab.EventCreated || events[1]["type"] != collab.EventChanged ||
		events[1]["rev"] != 2.0 || events[1]["doc"] != doc.ID {
		t.Errorf("got events %v, want created then changed up to rev 2 of %s", events, doc.ID)
	}
	mu.Unlock()

	req, _ = http.NewRequest("GET", s.AdminURL+"/metrics", nil)
	resp = do(t, req)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total", "collabd_storage_commits_total", "collabd_storage_commit_seconds",
		"collabd_ops_applied_total", "collabd_transform_seconds", "collabd_send_queue_wait_seconds", "collabd_webhook_failures_total"} {
		if fams[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if f := fams["collabd_webhook_deliveries_total"]; f == nil || f.Metric[0].GetCounter().GetValue() != 2 {
		t.Errorf("webhook deliveries: got %v, want 2", f)
	}
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestParseConfigEmbedding(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-webhook-url", "http://x"}, "-webhook-secret-file"},
		{[]string{"-webhook-secret-file", "f"}, "-webhook-url"},
		{[]string{"-pprof"}, "-admin-addr"},
	} {
		if _, err := parseConfig(tc.args, none, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
	cfg, err := parseConfig([]string{"-webhook-url", "http://x", "-webhook-secret-file", "f", "-webhook-text"},
		func(k string) (string, bool) { return "team", k == "COLLABD_CREATE_TOKEN" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.embed; e.createToken != "team" || !e.webhookText || e.webhookDebounce != 2*time.Second {
		t.Errorf("got %+v, want the create token from the environment, text on and a 2s debounce", e)
	}
}

// TestTransferWithToken: collabd import and export -from a server that
// wants tokens send the one in -token-file, and fail clearly without it.
func TestTransferWithToken(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "jwt.key")
	key := strings.Repeat("k", 32)
	os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	data := filepath.Join(dir, "collab.db")
	s := startServerAt(t, data, "-auth-key-file", keyFile, "-create-token", "team")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	textFile, createTok, readTok := filepath.Join(dir, "in.txt"), filepath.Join(dir, "create.tok"), filepath.Join(dir, "read.tok")
	os.WriteFile(textFile, []byte("imported"), 0o600)
	os.WriteFile(createTok, []byte("team\n"), 0o600)
	var out bytes.Buffer
	if err := run(ctx, []string{"import", "-from", s.URL, textFile}, &out, io.Discard); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("import -from without a token: %v, want a 401", err)
	}
	if err := run(ctx, []string{"import", "-from", s.URL, "-token-file", createTok, textFile}, &out, io.Discard); err != nil {
		t.Fatalf("import -from with -token-file: %v", err)
	}
	var imported struct{ ID string }
	if err := json.Unmarshal(out.Bytes(), &imported); err != nil || imported.ID == "" {
		t.Fatalf("import printed %q: %v", out.String(), err)
	}
	editTok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"doc": imported.ID, "role": "edit", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(key))
	os.WriteFile(readTok, []byte(editTok), 0o600)
	out.Reset()
	if err := run(ctx, []string{"export", "-from", s.URL, "-doc", imported.ID}, &out, io.Discard); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Errorf("export -from without a token: %v, want Unauthorized", err)
	}
	if err := run(ctx, []string{"export", "-from", s.URL, "-token-file", readTok, "-doc", imported.ID}, &out, io.Discard); err != nil || out.String() != "imported" {
		t.Errorf("export -from with -token-file: %q, %v", out.String(), err)
	}
	if err := run(ctx, []string{"export", "-data", data, "-token-file", readTok, "-doc", imported.ID}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "goes with -from") {
		t.Errorf("export -data with -token-file: %v, want an error", err)
	}

}
