package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// findCaddy returns Debian's caddy or skips. It is not installed by the
// test: apt's caddy is only needed to check this recipe.
func findCaddy(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy is not installed (Debian: apt-get install caddy; make test-deps does): skipping the Caddyfile test")
	}
	return path
}

// caddyEnv keeps caddy's state in dir rather than the user's home.
func caddyEnv(dir string, extra ...string) []string {
	return append(os.Environ(), append([]string{"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}, extra...)...)
}

// TestCaddyfileRecipe validates docs/deploy/Caddyfile as it is, checks
// what it adapts to, and then runs it in front of collabd (with a test
// certificate instead of one from Let's Encrypt) for the same session as
// the nginx test.
func TestCaddyfileRecipe(t *testing.T) {
	t.Parallel()
	caddy := findCaddy(t)
	recipe := filepath.Join(repoRoot, "docs", "deploy", "Caddyfile")
	dir := t.TempDir()

	cmd := exec.Command(caddy, "validate", "--config", recipe, "--adapter", "caddyfile")
	cmd.Env = caddyEnv(dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, out)
	}
	cmd = exec.Command(caddy, "adapt", "--config", recipe, "--adapter", "caddyfile")
	cmd.Env = caddyEnv(dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("caddy adapt: %v", err)
	}
	// The parts of the JSON that matter: the site, the upstream, flushing.
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string
					Routes []json.RawMessage
				}
			}
		}
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("caddy adapt output: %v", err)
	}
	js := string(out)
	for _, want := range []string{`"collab.example.com"`, `"handler":"reverse_proxy"`, `"dial":"127.0.0.1:8080"`, `"flush_interval":-1`} {
		if !strings.Contains(js, want) {
			t.Errorf("adapted Caddyfile lacks %s:\n%s", want, js)
		}
	}
	if strings.Contains(js, `"handler":"encode"`) {
		t.Error("the Caddyfile compresses responses, which would hold back SSE events")
	}

	// Run it: the site and upstream come from the variables the recipe
	// reads; only the certificate and the ports are the test's own.
	s := startProxied(t)
	certFile, keyFile, pool := selfSignedCert(t)
	httpsPort, httpPort := freePort(t), freePort(t)
	site := deployFile(t, "Caddyfile")
	site = replaceOnce(t, site, "\treverse_proxy {$COLLABD_UPSTREAM", fmt.Sprintf("\ttls %s %s\n\treverse_proxy {$COLLABD_UPSTREAM", certFile, keyFile))
	site = fmt.Sprintf("{\n\tadmin off\n\thttp_port %d\n\thttps_port %d\n\tstorage file_system %s\n}\n\n%s",
		httpPort, httpsPort, filepath.Join(dir, "storage"), site)
	conf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(conf, []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "https://127.0.0.1:" + strconv.Itoa(httpsPort)
	cmd = exec.Command(caddy, "run", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = caddyEnv(dir, "COLLABD_SITE="+base, "COLLABD_UPSTREAM="+strings.TrimPrefix(s.URL, "http://"))
	log := &lockedBuffer{}
	startDaemon(t, "caddy", cmd, log, func() error {
		c, err := net.DialTimeout("tcp", base[len("https://"):], time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("caddy log:\n%s", log)
		}
	})
	driveThroughProxy(t, newProxyClients(t, pool), base, proxyIdle)
}
