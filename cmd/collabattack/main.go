// Command collabattack re-runs the attacks of the security audit (issue
// 22) against a collabd of one's own on this machine, and prints what they
// cost the server, so that the figures in docs/operations.md can be
// reproduced. One subcommand per attack:
//
//	restore  clients alternately restore a large document to its empty and
//	         full revisions (data file growth)
//	history  ops of many one-character components, growing and shrinking a
//	         document until refused (op log bytes against -max-doc-history)
//	frames   WebSocket frame floods: empty continuation frames, pings,
//	         cursor messages, or a message dripped a byte a second (CPU,
//	         close codes)
//	readers  slow readers of a large document's text that never read
//	         (RSS, an honest editor's ack latency)
//	flood    one address fills its own documents with large inserts (RSS)
//	conns    idle editors from many addresses fill -max-conns, then
//	         /healthz and / are probed
//	bigbody  POST /api/docs with a body past the limit: is the 413 read,
//	         or the connection reset?
//	outbox   a large document edited steadily while the webhook receiver
//	         is down (webhook outbox growth)
//
// For example:
//
//	collabattack restore -url http://127.0.0.1:8080 -server-pid 1234 -data ./collab.db
//	collabattack help frames
//
// Only loopback addresses are attacked: -url must be http://127.0.0.1:PORT
// (or localhost), and every connection is checked to go to 127.0.0.0/8.
// Every loop is bounded by a count and by -duration, and the whole run by
// -duration plus two minutes. The server's figures come from /proc/PID
// (-server-pid: CPU, VmRSS sampled for its peak, VmHWM) and from its data
// file (-data); where an attack is about latency, an honest editor on a
// document of its own, from a loopback address of its own, types a
// character every 50 ms and reports its ack latency (-honest).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/collabd/collabd/cmd/internal/proc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "collabattack:", err)
		os.Exit(1)
	}
}

// attack is one subcommand.
type attack struct {
	name    string
	summary string // one line, for the list
	about   string // what it does and measures, for help
	// duration and honest are the defaults of -duration and -honest.
	duration time.Duration
	honest   bool
	// flags registers the attack's own flags and returns its body.
	flags func(fs *flag.FlagSet) func(ctx context.Context, s *session) error
}

// attacks lists the subcommands in the order help shows them.
func attacks() []attack {
	return []attack{restoreAttack(), historyAttack(), framesAttack(), readersAttack(),
		floodAttack(), connsAttack(), bigbodyAttack(), outboxAttack()}
}

// session is one attack's run: the target and the flags all attacks share.
type session struct {
	rawURL   string
	t        *target
	out      io.Writer
	pid      int
	data     string
	duration time.Duration
	settle   time.Duration
	honest   bool
}

// graceAfter bounds what follows an attack's -duration (setting up,
// reading answers, closing): the whole run ends by -duration plus this.
const graceAfter = 2 * time.Minute

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	all := attacks()
	if len(args) == 0 {
		usage(stderr, all)
		return errors.New("name an attack")
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		if len(args) == 1 {
			usage(stdout, all)
			return nil
		}
		for _, a := range all {
			if a.name == args[1] {
				fs, _, _ := a.flagSet(stdout)
				fs.Usage()
				return nil
			}
		}
		return fmt.Errorf("no attack named %q (collabattack help lists them)", args[1])
	}
	for _, a := range all {
		if a.name != args[0] {
			continue
		}
		fs, s, body := a.flagSet(stderr)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		switch {
		case fs.NArg() > 0:
			return fmt.Errorf("%s: unexpected arguments %q", a.name, fs.Args())
		case s.duration <= 0:
			return fmt.Errorf("%s: -duration must be positive", a.name)
		case s.settle < 0:
			return fmt.Errorf("%s: -settle must not be negative", a.name)
		case s.pid < 0:
			return fmt.Errorf("%s: -server-pid must not be negative", a.name)
		}
		if s.pid > 0 {
			if _, err := proc.CPU(s.pid); err != nil {
				return fmt.Errorf("%s: -server-pid %d: %w", a.name, s.pid, err)
			}
		}
		t, err := newTarget(s.rawURL)
		if err != nil {
			return err
		}
		s.t, s.out = t, stdout
		ctx, cancel := context.WithTimeout(ctx, s.duration+graceAfter)
		defer cancel()
		fmt.Fprintf(stdout, "collabattack %s against %s for %v\n", a.name, t.base, s.duration)
		if err := body(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
		return nil
	}
	usage(stderr, all)
	return fmt.Errorf("no attack named %q", args[0])
}

// flagSet returns the attack's flags, the shared ones included, the
// session they fill and the attack's body.
func (a attack) flagSet(out io.Writer) (*flag.FlagSet, *session, func(context.Context, *session) error) {
	fs := flag.NewFlagSet("collabattack "+a.name, flag.ContinueOnError)
	fs.SetOutput(out)
	s := new(session)
	fs.StringVar(&s.rawURL, "url", "http://127.0.0.1:8080", "`URL` of the collabd to attack: http on a loopback address only")
	fs.IntVar(&s.pid, "server-pid", 0, "`pid` of the collabd under attack, on this machine, for its CPU and RSS from /proc")
	fs.StringVar(&s.data, "data", "", "`path` of the server's data file, for its growth")
	fs.DurationVar(&s.duration, "duration", a.duration, "how long the attack goes on at most")
	fs.DurationVar(&s.settle, "settle", time.Second, "wait after the attack before the data file is measured (group commits)")
	fs.BoolVar(&s.honest, "honest", a.honest, "time an honest editor's acks meanwhile (from 127.0.0.2, on a document of its own)")
	body := a.flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: collabattack %s [flags]\n\n%s\n\nflags:\n", a.name, a.about)
		fs.PrintDefaults()
	}
	return fs, s, body
}

func usage(w io.Writer, all []attack) {
	fmt.Fprintf(w, "usage: collabattack ATTACK -url http://127.0.0.1:PORT [-server-pid PID] [-data PATH] [flags]\n\n")
	fmt.Fprintf(w, "Attacks a collabd on this machine (loopback only) and prints what it cost the server.\n\nattacks:\n")
	for _, a := range all {
		fmt.Fprintf(w, "  %-8s %s\n", a.name, a.summary)
	}
	fmt.Fprintf(w, "\ncollabattack help ATTACK describes one and its flags.\n")
}

// measures are what runs beside an attack: the server's figures and the
// honest editor.
type measures struct {
	w *watch
	h *honest
}

// begin starts the honest editor (with -honest) and the server's
// measurements. Attacks call it once set up, just before they start.
func (s *session) begin(ctx context.Context) (*measures, error) {
	var m measures
	if s.honest {
		h, err := startHonest(ctx, s.t)
		if err != nil {
			return nil, err
		}
		m.h = h
	}
	m.w = startWatch(s)
	return &m, nil
}

// end stops the honest editor and prints the figures.
func (m *measures) end(out io.Writer) {
	m.h.finish(out)
	m.w.finish(out)
}
