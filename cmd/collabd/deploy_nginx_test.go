package main

import (
	"bufio"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var randReader = rand.Reader

const (
	sigTerm = syscall.SIGTERM
	// proxyIdle is how long TestNginxRecipe leaves its connections idle:
	// twice nginx's default proxy_read_timeout, which the recipe must
	// raise for WebSockets.
	proxyIdle = 2 * time.Minute
)

func sysProcAttrGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills the process group of a proxy this test started.
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }

// findNginx returns Debian's nginx, installing it with apt-get when it is
// missing and this runs as root (make test-deps does the same), or skips.
func findNginx(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/nginx", "nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getuid() != 0 {
		t.Skip("nginx is not installed, and apt-get needs root: skipping the nginx recipe test (make test-deps installs it)")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("nginx is not installed, and there is no apt-get: skipping the nginx recipe test")
	}
	t.Log("installing Debian's nginx for the recipe test")
	install := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err != nil {
		exec.Command("apt-get", "update", "-qq").Run()
		if out, err := install(); err != nil {
			t.Skipf("could not install nginx (%v): skipping the nginx recipe test\n%s", err, out)
		}
	}
	if path, err := exec.LookPath("/usr/sbin/nginx"); err == nil {
		return path
	}
	t.Skip("apt-get installed nginx, but /usr/sbin/nginx is missing: skipping")
	return ""
}

// TestNginxRecipe runs docs/deploy/nginx.conf, templated only to loopback
// ports, a test certificate and a temporary prefix, in front of collabd,
// and drives an editor and a viewer through it: SSE unbuffered, WebSocket
// and SSE alive after two idle minutes, HTTP redirected to HTTPS.
func TestNginxRecipe(t *testing.T) {
	t.Parallel()
	base, httpPort, pool := startNginxRecipe(t)
	c := newProxyClients(t, pool)

	resp, err := c.h1.Get(fmt.Sprintf("http://127.0.0.1:%d/some/page", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(loc, "https://") {
		t.Errorf("plain HTTP: got %s to %q, want 301 to https://", resp.Status, loc)
	}

	driveThroughProxy(t, c, base, proxyIdle)
}

// startNginxRecipe runs docs/deploy/nginx.conf, templated only to
// loopback ports, a test certificate and a temporary prefix, in front of
// a collabd of its own, and returns its HTTPS base URL, its plain HTTP
// port and the pool that trusts its certificate.
func startNginxRecipe(t *testing.T) (base string, httpPort int, pool *x509.CertPool) {
	t.Helper()
	nginx := findNginx(t)
	return startNginxSite(t, nginx, "nginx.conf", startProxied(t), nil)
}

// startNginxSite runs the nginx site of docs/deploy/file in front of
// collabd s, templated to loopback ports, a test certificate and a
// temporary prefix; edit, if set, templates the rest.
func startNginxSite(t *testing.T, nginx, file string, s *server, edit func(site string) string) (base string, httpPort int, pool *x509.CertPool) {
	t.Helper()
	certFile, keyFile, pool := selfSignedCert(t)
	httpsPort, httpPort := freePort(t), freePort(t)
	collabdAddr := strings.TrimPrefix(s.URL, "http://")

	site := deployFile(t, file)
	if edit != nil {
		site = edit(site)
	}
	site = replaceOnce(t, site, "server 127.0.0.1:8080;", "server "+collabdAddr+";")
	site = replaceOnce(t, site, "    listen 80;\n", fmt.Sprintf("    listen 127.0.0.1:%d;\n", httpPort))
	site = replaceOnce(t, site, "    listen [::]:80;\n", "")
	site = replaceOnce(t, site, "    listen 443 ssl http2;\n", fmt.Sprintf("    listen 127.0.0.1:%d ssl http2;\n", httpsPort))
	site = replaceOnce(t, site, "    listen [::]:443 ssl http2;\n", "")
	site = replaceOnce(t, site, "/etc/letsencrypt/live/collab.example.com/fullchain.pem", certFile)
	site = replaceOnce(t, site, "/etc/letsencrypt/live/collab.example.com/privkey.pem", keyFile)

	// The rest of what Debian's /etc/nginx/nginx.conf provides, in a
	// temporary prefix.
	dir := t.TempDir()
	user := ""
	if os.Getuid() == 0 {
		// Workers would otherwise run as nobody, who cannot use the
		// temporary directory.
		user = "user root root;"
	}
	main := fmt.Sprintf(`%s
daemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/collabd.conf;
}
`, user, dir)
	for name, body := range map[string]string{"collabd.conf": site, "nginx.conf": main} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	if out, err := exec.Command(nginx, "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t rejects the recipe: %v\n%s", err, out)
	}
	log := &lockedBuffer{}
	base = "https://127.0.0.1:" + strconv.Itoa(httpsPort)
	startDaemon(t, "nginx", exec.Command(nginx, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf), log, func() error {
		c, err := net.DialTimeout("tcp", base[len("https://"):], time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	return base, httpPort, pool
}

// TestNginxRecipeStream: a streamed write through the recipe reaches
// collabd as it is written, and its progress lines come back as they are
// written, over HTTP/1.1 and HTTP/2: each piece of the body is answered
// before the next is sent.
func TestNginxRecipeStream(t *testing.T) {
	t.Parallel()
	base, _, pool := startNginxRecipe(t)
	c := newProxyClients(t, pool)
	for name, hc := range map[string]*http.Client{"HTTP/1.1": c.h1, "HTTP/2": c.h2} {
		resp, err := hc.Post(base+"/api/docs", "application/json", strings.NewReader(`{"text":""}`))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ ID string }
		json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()

		pr, pw := io.Pipe()
		defer pw.Close()
		req, _ := http.NewRequest("POST", base+"/api/docs/"+doc.ID+"/stream?name=agent", pr)
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		answer := make(chan *http.Response, 1)
		failed := make(chan error, 1)
		go func() {
			resp, err := hc.Do(req)
			if err != nil {
				failed <- err
				return
			}
			answer <- resp
		}()
		if _, err := pw.Write([]byte("first ")); err != nil {
			t.Fatal(err)
		}
		select {
		case resp = <-answer:
		case err := <-failed:
			t.Fatalf("%s: stream: %v", name, err)
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: no answer while the body is open: the proxy buffers the request body", name)
		}
		defer resp.Body.Close()
		lines := bufio.NewScanner(resp.Body)
		next := func() string {
			if !lines.Scan() {
				t.Fatalf("%s: stream answer ended: %v", name, lines.Err())
			}
			return lines.Text()
		}
		if l := next(); !strings.Contains(l, `"inserted":6`) {
			t.Errorf("%s: first line %s, want 6 inserted", name, l)
		}
		pw.Write([]byte("second"))
		if l := next(); !strings.Contains(l, `"inserted":12`) {
			t.Errorf("%s: second line %s, want 12 inserted", name, l)
		}
		pw.Close()
		if l := next(); !strings.Contains(l, `"done":true`) {
			t.Errorf("%s: last line %s, want done", name, l)
		}
		r, err := hc.Get(base + "/api/docs/" + doc.ID + "/text")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if string(b) != "first second" {
			t.Errorf("%s: text after the stream: got %q", name, b)
		}
	}
}
