package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// collabdBin is the collabd that TestMain builds: the tests and the
// Example run the real server, as an embedder would, without this
// package importing it.
var collabdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "client-test")
	if err != nil {
		log.Fatal(err)
	}
	collabdBin = filepath.Join(dir, "collabd")
	build := exec.Command("go", "build", "-o", collabdBin, "github.com/collabd/collabd/cmd/collabd")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		log.Fatalf("build collabd: %v", err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startServer starts collabd on 127.0.0.1:0 with a throwaway data file
// and returns its URL and a func that stops it and waits.
func startServer(args ...string) (url string, stop func()) {
	dir, err := os.MkdirTemp("", "client-server")
	if err != nil {
		log.Fatal(err)
	}
	args = append([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(dir, "collab.db"), "-log-level", "error",
		"-max-conns-per-addr", "1000", "-create-burst", "1000", "-rate-limit", "100000", "-rate-burst", "100000"}, args...)
	cmd := exec.Command(collabdBin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		os.RemoveAll(dir)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	_, url, ok := strings.Cut(strings.TrimSpace(line), " listening on ")
	if err != nil || !ok {
		stop()
		log.Fatalf("collabd said %q (%v), want \"collabd listening on URL\"", line, err)
	}
	go func() { // collabd's later output, unread, must not block it
		buf := make([]byte, 4096)
		for {
			if _, err := out.Read(buf); err != nil {
				return
			}
		}
	}()
	return url, stop
}

// createDoc creates a document holding text and returns its edit id.
func createDoc(server, text string) string {
	body, _ := json.Marshal(map[string]string{"text": text})
	resp, err := http.Post(server+"/api/docs", "application/json", strings.NewReader(string(body)))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if resp.StatusCode != http.StatusCreated {
		log.Fatalf("create: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		log.Fatal(err)
	}
	return out.ID
}

// serverText is the document's text as the server has it.
func serverText(t *testing.T, server, id string) string {
	t.Helper()
	resp, err := http.Get(server + "/api/docs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Text string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Text
}

func guardCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
