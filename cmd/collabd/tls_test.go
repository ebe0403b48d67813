package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSignedCert writes a certificate for 127.0.0.1 and localhost, and
// its key, as PEM files in a temporary directory. It returns their paths
// and a pool that trusts the certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "collabd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLSServesSSEOverHTTP2 runs collabd with -tls-cert and -tls-key and
// watches a document over HTTP/2. The heartbeat is longer than the
// per-write timeout, so the pings also show that a quiet HTTP/2 stream is
// not reset when a write deadline passes.
func TestTLSServesSSEOverHTTP2(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	s := startServer(t, "-tls-cert", certFile, "-tls-key", keyFile,
		"-heartbeat", "300ms", "-client-write-timeout", "100ms")
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("got URL %q, want https", s.URL)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	resp, err := client.Post(s.URL+"/api/docs", "application/json", strings.NewReader(`{"text":"over h2"}`))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ ViewID string }
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: status %d, err %v", resp.StatusCode, err)
	}

	resp, err = client.Get(s.URL + "/api/view/" + doc.ViewID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("got %s, want HTTP/2", resp.Proto)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("got status %d, Content-Type %q; want 200 text/event-stream", resp.StatusCode, ct)
	}

	// Read lines in a goroutine, so that a hang fails the test rather
	// than stopping it.
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	want := []string{"retry: 2000", "", "event: snapshot", "id: 1", `data: {"rev":1,"text":"over h2"}`, "",
		": ping", "", ": ping", ""}
	for i, w := range want {
		select {
		case got, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended after %d lines, want %q next", i, w)
			}
			if got != w {
				t.Fatalf("line %d: got %q, want %q", i, got, w)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("line %d: nothing within 20s, want %q", i, w)
		}
	}
}
