package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// collabdEnvVars returns the COLLABD_* variables this collabd reads, one
// per flag, from its -help.
func collabdEnvVars(t *testing.T) map[string]bool {
	t.Helper()
	var out bytes.Buffer
	run(context.Background(), []string{"-help"}, io.Discard, &out)
	vars := make(map[string]bool)
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(out.String(), -1) {
		vars[envName(m[1])] = true
	}
	if len(vars) < 5 {
		t.Fatalf("found only %d flags in -help:\n%s", len(vars), out.String())
	}
	return vars
}

// pendingVars are variables the recipes set for flags that another change
// adds; until it is merged, collabd ignores them.
var pendingVars = map[string]bool{"COLLABD_TRUSTED_PROXIES": true}

// checkEnvVar fails the test for a COLLABD_ variable no flag reads: a
// typo in a recipe would otherwise be silently ignored.
func checkEnvVar(t *testing.T, known map[string]bool, where, name string) {
	t.Helper()
	switch {
	case known[name]:
	case pendingVars[name]:
		t.Logf("%s sets %s, which this collabd does not read yet", where, name)
	default:
		t.Errorf("%s sets %s, which no collabd flag reads", where, name)
	}
}

// unit is a systemd unit file: section -> key -> values, in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, text string) unit {
	t.Helper()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("unit line %q: not key=value in a section", line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// TestSystemdUnit checks docs/deploy/collabd.service: sandboxed, its data
// file in its StateDirectory, and a stop timeout longer than collabd's
// own shutdown, then has systemd-analyze verify it and rate its exposure
// when this machine has it.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	text := deployFile(t, "collabd.service")
	u := parseUnit(t, text)
	for _, kv := range [][2]string{
		{"DynamicUser", "yes"},
		{"StateDirectory", "collabd"},
		{"ProtectSystem", "strict"},
		{"KillSignal", "SIGTERM"},
		{"NoNewPrivileges", "yes"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"CapabilityBoundingSet", ""},
	} {
		if got, ok := u["Service"][kv[0]]; !ok || got[len(got)-1] != kv[1] {
			t.Errorf("[Service] %s: got %q, want %q", kv[0], got, kv[1])
		}
	}
	if got := u.get("Service", "ExecStart"); got != "/usr/local/bin/collabd" {
		t.Errorf("ExecStart: got %q, want make install's /usr/local/bin/collabd", got)
	}
	env := map[string]string{}
	known := collabdEnvVars(t)
	for _, e := range u["Service"]["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
		checkEnvVar(t, known, "collabd.service", k)
	}
	if data := env["COLLABD_DATA"]; !strings.HasPrefix(data, "/var/lib/collabd/") {
		t.Errorf("COLLABD_DATA=%q: want it in the StateDirectory /var/lib/collabd, the one writable place", data)
	}
	if addr := env["COLLABD_ADDR"]; !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("COLLABD_ADDR=%q: want loopback, behind the proxy", addr)
	}
	shutdown, err1 := time.ParseDuration(env["COLLABD_SHUTDOWN_TIMEOUT"])
	stop, err2 := time.ParseDuration(u.get("Service", "TimeoutStopSec"))
	if err1 != nil || err2 != nil || stop <= shutdown {
		t.Errorf("TimeoutStopSec %q must exceed COLLABD_SHUTDOWN_TIMEOUT %q, or systemd kills a graceful shutdown (%v, %v)",
			u.get("Service", "TimeoutStopSec"), env["COLLABD_SHUTDOWN_TIMEOUT"], err1, err2)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian: apt-get install systemd): checked the unit's settings only")
	}
	// verify wants ExecStart to exist; any executable does.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "collabd.service")
	if err := os.WriteFile(path, []byte(strings.Replace(text, "/usr/local/bin/collabd", self, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=true", path).CombinedOutput()
	if err != nil {
		t.Skipf("systemd-analyze security --offline is not available here (%v): verified only", err)
	}
	m := regexp.MustCompile(`Overall exposure level for collabd.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: no exposure level in\n%s", out)
	}
	// 0 is fully locked down, 10 not at all; under 2 is what a network
	// service that writes one directory can reach.
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2 {
		t.Errorf("systemd-analyze security: exposure %s, want at most 2\n%s", m[1], out)
	}
}

// dockerInstr is one Dockerfile instruction, with its line continuations
// joined.
type dockerInstr struct {
	cmd, args string
	stage     int // index of the FROM it belongs to
}

func parseDockerfile(t *testing.T, text string) []dockerInstr {
	t.Helper()
	var out []dockerInstr
	stage := -1
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, dockerInstr{cmd: cmd, args: strings.TrimSpace(args), stage: stage})
	}
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") {
			continue // comments, and the syntax directive
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return out
}

// TestDockerfile checks docs/deploy/Dockerfile by its instructions, since
// no Docker engine runs here: multi-stage, a static build of this module's
// Go version, a non-root user on an empty base, the data file on a
// volume, and nothing fetched by ADD.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	instrs := parseDockerfile(t, deployFile(t, "Dockerfile"))
	var froms []string
	final := map[string][]string{} // instructions of the last stage
	last := 0
	for _, in := range instrs {
		last = max(last, in.stage)
	}
	var build string
	known := collabdEnvVars(t)
	for _, in := range instrs {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.args)
		case "ADD":
			t.Errorf("ADD %s: use COPY; ADD fetches URLs and unpacks archives unasked", in.args)
		case "RUN":
			if strings.Contains(in.args, "go build") {
				build = in.args
			}
		}
		if in.stage == last {
			final[in.cmd] = append(final[in.cmd], in.args)
		}
		if in.stage < 0 && in.cmd != "ARG" {
			t.Errorf("%s before the first FROM", in.cmd)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("got stages %q, want a build stage and a runtime stage", froms)
	}
	// The builder's Go is the one go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil || !strings.HasPrefix(froms[0], "golang:"+string(goVersion[1])) || !strings.HasSuffix(froms[0], " AS build") {
		t.Errorf("first stage FROM %q: want golang:%s... AS build", froms[0], goVersion[1])
	}
	for _, f := range froms {
		image := strings.Fields(f)[0]
		if image != "scratch" && (!strings.Contains(image, ":") || strings.HasSuffix(image, ":latest")) {
			t.Errorf("FROM %s: pin a tag", image)
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", "./cmd/collabd"} {
		if !strings.Contains(build, want) {
			t.Errorf("build step %q lacks %s", build, want)
		}
	}

	one := func(cmd string) string {
		if len(final[cmd]) != 1 {
			t.Errorf("final stage: got %s %q, want exactly one", cmd, final[cmd])
			return ""
		}
		return final[cmd][0]
	}
	if user := one("USER"); user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("USER %q: want a non-root user", user)
	}
	env := map[string]string{}
	for _, e := range final["ENV"] {
		for _, kv := range strings.Fields(e) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
			checkEnvVar(t, known, "Dockerfile", k)
		}
	}
	var volumes []string
	if err := json.Unmarshal([]byte(one("VOLUME")), &volumes); err != nil || len(volumes) != 1 {
		t.Errorf("VOLUME %q: want one, in JSON form", final["VOLUME"])
	} else if !strings.HasPrefix(env["COLLABD_DATA"], volumes[0]+"/") {
		t.Errorf("COLLABD_DATA=%q is not on the volume %s", env["COLLABD_DATA"], volumes[0])
	}
	if _, port, _ := strings.Cut(env["COLLABD_ADDR"], ":"); port == "" || one("EXPOSE") != port {
		t.Errorf("EXPOSE %q and COLLABD_ADDR=%q: want the port collabd listens on, on every interface", final["EXPOSE"], env["COLLABD_ADDR"])
	}
	if one("STOPSIGNAL") != "SIGTERM" {
		t.Errorf("STOPSIGNAL %q: want SIGTERM, collabd's graceful shutdown", final["STOPSIGNAL"])
	}
	var entry []string
	if err := json.Unmarshal([]byte(one("ENTRYPOINT")), &entry); err != nil || len(entry) == 0 {
		t.Errorf("ENTRYPOINT %q: want exec (JSON) form, so that collabd gets the signal, not a shell", final["ENTRYPOINT"])
	}
	copied := false
	for _, c := range final["COPY"] {
		copied = copied || (strings.Contains(c, "--from=build") && len(entry) > 0 && strings.HasSuffix(c, " "+entry[0]))
	}
	if !copied {
		t.Errorf("final stage COPY %q: want the binary %v copied from the build stage", final["COPY"], entry)
	}

	ignore := deployFile(t, "Dockerfile.dockerignore")
	for _, want := range []string{"**/node_modules", "*.db"} {
		if !strings.Contains(ignore, want+"\n") {
			t.Errorf("Dockerfile.dockerignore does not exclude %s", want)
		}
	}
}

// TestComposeFile checks docs/deploy/compose.yaml by its text (no Docker
// here): it builds with the Dockerfile above, keeps the data on a volume,
// gives a stop more time than collabd's shutdown and trusts forwarded
// addresses only from its own network.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	text := deployFile(t, "compose.yaml")
	field := func(key string) []string {
		var vals []string
		for _, m := range regexp.MustCompile(`(?m)^\s*-?\s*`+regexp.QuoteMeta(key)+`:\s*(\S.*)$`).FindAllStringSubmatch(text, -1) {
			vals = append(vals, strings.TrimSpace(m[1]))
		}
		return vals
	}
	if ctx, df := field("context"), field("dockerfile"); len(ctx) != 1 || len(df) != 1 {
		t.Errorf("build context %q, dockerfile %q: want one each", ctx, df)
	} else if _, err := os.Stat(filepath.Join("..", "..", "docs", "deploy", ctx[0], df[0])); err != nil {
		t.Errorf("build: %s/%s relative to docs/deploy: %v", ctx[0], df[0], err)
	}
	if !strings.Contains(text, "- collabd-data:/data\n") {
		t.Error("compose.yaml does not mount a named volume on /data, the Dockerfile's VOLUME")
	}
	grace, err1 := time.ParseDuration(strings.Join(field("stop_grace_period"), ""))
	shutdown, err2 := time.ParseDuration(strings.Join(field("COLLABD_SHUTDOWN_TIMEOUT"), ""))
	if err1 != nil || err2 != nil || grace <= shutdown {
		t.Errorf("stop_grace_period %v must exceed COLLABD_SHUTDOWN_TIMEOUT %v (%v, %v)", grace, shutdown, err1, err2)
	}
	if trusted, subnet := field("COLLABD_TRUSTED_PROXIES"), field("subnet"); len(trusted) != 1 || len(subnet) != 1 || trusted[0] != subnet[0] {
		t.Errorf("COLLABD_TRUSTED_PROXIES %q: want the compose network's subnet %q", trusted, subnet)
	}
	known := collabdEnvVars(t)
	for _, m := range regexp.MustCompile(`(?m)^\s+(COLLABD_[A-Z_]+):`).FindAllStringSubmatch(text, -1) {
		if m[1] != "COLLABD_SITE" && m[1] != "COLLABD_UPSTREAM" { // the Caddyfile's
			checkEnvVar(t, known, "compose.yaml", m[1])
		}
	}
	if !strings.Contains(text, "./Caddyfile:/etc/caddy/Caddyfile:ro") {
		t.Error("compose.yaml does not run the Caddyfile recipe")
	}
}
