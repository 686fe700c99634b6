package app

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/recordings"
)

const recordingsUsage = `Usage:
  mcpguard recordings ls [--since 24h|2025-01-02] [--identity SUBJECT|CLIENT] [--tool NAME]
  mcpguard recordings play SESSION [--pace] [--color auto|always|never]
  mcpguard recordings verify SESSION|--all [--public-key BASE64]
  mcpguard recordings export SESSION --format jsonl
  mcpguard recordings unseal --identity KEYFILE SESSION
All take --config FILE (default: the embedded config) to find the sink.
`

// signingKeyFile is where the manifest signing key lives.
func signingKeyFile(cfg *config.Config) string {
	if cfg.Recordings.SigningKeyFile != "" {
		return cfg.Recordings.SigningKeyFile
	}
	return filepath.Join(cfg.DataDir, "recordings-signing-key.pem")
}

// recordingsConfig resolves the paths left empty to their place under data_dir.
func recordingsConfig(cfg *config.Config) recordings.Config {
	rc := cfg.Recordings
	if rc.Spool.Dir == "" {
		rc.Spool.Dir = filepath.Join(cfg.DataDir, "spool")
	}
	if rc.Sink.Dir.Path == "" {
		rc.Sink.Dir.Path = filepath.Join(cfg.DataDir, "recordings")
	}
	return rc
}

func openSink(c recordings.Config) (recordings.Sink, error) {
	if c.Sink.Type == "s3" {
		return recordings.NewS3(c.Sink.S3)
	}
	return recordings.NewDir(c.Sink.Dir.Path)
}

// openReadSink opens the sink for reading: a directory sink creates nothing (a missing
// directory holds no recordings).
func openReadSink(c recordings.Config) (recordings.Sink, error) {
	if c.Sink.Type == "s3" {
		return recordings.NewS3(c.Sink.S3)
	}
	return recordings.OpenDir(c.Sink.Dir.Path), nil
}

// openRecorder builds the recorder of the service, creating the signing key on first use.
func openRecorder(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*recordings.Recorder, error) {
	rc := recordingsConfig(cfg)
	sink, err := openSink(rc)
	if err != nil {
		return nil, err
	}
	path := signingKeyFile(cfg)
	key, created, err := recordings.LoadKey(path, rc.SigningKeyFile == "")
	if err != nil {
		return nil, err
	}
	pub, _ := key.Public().(ed25519.PublicKey)
	if created {
		log.Warn("recordings signing key created: production should configure recordings.signing_key_file and back the key up; verify with this public key",
			"key_file", path, "public_key", recordings.EncodePublicKey(pub))
	}
	return recordings.Open(rc, sink, key, log, reg)
}

// recordingsCmd reads recordings back from the configured sink.
func recordingsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, recordingsUsage)
		return ErrUsage
	}
	sub := args[0]
	if isHelp(sub) {
		fmt.Fprint(stdout, recordingsUsage)
		return nil
	}
	fs := flag.NewFlagSet("recordings "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, recordingsUsage) }
	configPath := fs.String("config", "", "config file")
	since := fs.String("since", "", "ls: sessions started within this duration or since this date (YYYY-MM-DD)")
	ident := fs.String("identity", "", "ls: subject or client id; unseal: age identity file holding the key sealed arguments were sealed to")
	tool := fs.String("tool", "", "ls: sessions that called this tool")
	pace := fs.Bool("pace", false, "play: replay in real time")
	color := fs.String("color", "auto", "play: auto, always or never")
	all := fs.Bool("all", false, "verify: every session")
	pubFlag := fs.String("public-key", "", "verify: base64 Ed25519 public key (default: recordings.public_key, else the local signing key's)")
	format := fs.String("format", "jsonl", "export: jsonl")
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return ErrUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	sink, err := openReadSink(recordingsConfig(cfg))
	if err != nil {
		return err
	}
	a := recordings.NewArchive(sink, cfg.Recordings.Sink.Prefix)
	one := func() (*recordings.Session, error) {
		if len(pos) != 1 {
			fmt.Fprint(stderr, recordingsUsage)
			return nil, ErrUsage
		}
		return a.Find(ctx, pos[0])
	}
	switch sub {
	case "ls":
		if len(pos) != 0 {
			fmt.Fprint(stderr, recordingsUsage)
			return ErrUsage
		}
		return recordingsLs(ctx, a, stdout, *since, *ident, *tool)
	case "play":
		s, err := one()
		if err != nil {
			return err
		}
		evs, err := a.Events(ctx, s)
		if err != nil {
			return err
		}
		return play(ctx, stdout, evs, *pace, useColor(*color, stdout))
	case "export":
		s, err := one()
		if err != nil {
			return err
		}
		if *format != "jsonl" {
			return fmt.Errorf("export: format %q not supported (jsonl)", *format)
		}
		evs, err := a.Events(ctx, s)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	case "unseal":
		ids, err := loadIdentities(*ident)
		if err != nil {
			return err
		}
		s, err := one()
		if err != nil {
			return err
		}
		evs, err := a.Events(ctx, s)
		if err != nil {
			return err
		}
		return unseal(stdout, stderr, s.Name, evs, ids, *ident)
	case "verify":
		pub, err := verifyKey(cfg, *pubFlag)
		if err != nil {
			return err
		}
		var sessions []*recordings.Session
		switch {
		case *all && len(pos) == 0:
			if sessions, err = a.Sessions(ctx); err != nil {
				return err
			}
		case !*all && len(pos) == 1:
			s, err := a.Find(ctx, pos[0])
			if err != nil {
				return err
			}
			sessions = []*recordings.Session{s}
		default:
			fmt.Fprint(stderr, recordingsUsage)
			return ErrUsage
		}
		failed := 0
		for _, s := range sessions {
			v, err := a.Verify(ctx, s, pub)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, v.String())
			if !v.OK() {
				failed++
			}
		}
		if failed > 0 {
			fmt.Fprintf(stderr, "hint: verified with public key %s (recordings.public_key or --public-key)\n", recordings.EncodePublicKey(pub))
			return fmt.Errorf("%d of %d session(s) failed verification", failed, len(sessions))
		}
		return nil
	default:
		fmt.Fprintf(stderr, "mcpguard recordings: unknown subcommand %q\n%s", sub, recordingsUsage)
		return ErrUsage
	}
}

func verifyKey(cfg *config.Config, flagKey string) (ed25519.PublicKey, error) {
	if flagKey != "" {
		return recordings.ParsePublicKey(flagKey)
	}
	if cfg.Recordings.PublicKey != "" {
		return recordings.ParsePublicKey(cfg.Recordings.PublicKey)
	}
	key, _, err := recordings.LoadKey(signingKeyFile(cfg), false)
	if err != nil {
		return nil, fmt.Errorf("no public key to verify with (set recordings.public_key or --public-key): %w", err)
	}
	pub, _ := key.Public().(ed25519.PublicKey)
	return pub, nil
}

func recordingsLs(ctx context.Context, a *recordings.Archive, w io.Writer, since, ident, tool string) error {
	var from time.Time
	if since != "" {
		if d, err := time.ParseDuration(since); err == nil {
			from = time.Now().Add(-d)
		} else if t, err := time.Parse("2006-01-02", since); err == nil {
			from = t
		} else {
			return fmt.Errorf("--since %q: not a duration or YYYY-MM-DD", since)
		}
	}
	sessions, err := a.Sessions(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%-40s %-20s %-24s %6s %7s  %s\n", "SESSION", "STARTED", "IDENTITY", "CHAINS", "EVENTS", "TOOLS")
	for _, s := range sessions {
		var started time.Time
		var who string
		events := 0
		var tools []string
		for _, c := range s.Chains {
			m := c.Manifest
			if m == nil {
				continue // open or damaged: verify says which
			}
			if started.IsZero() || m.Started.Before(started) {
				started = m.Started
			}
			if m.Identity != nil && who == "" {
				who = m.Identity.Subject
				if m.Identity.ClientID != "" && m.Identity.ClientID != who {
					who += " (" + m.Identity.ClientID + ")"
				}
			}
			events += m.Events
			for _, t := range m.Tools {
				if !slices.Contains(tools, t) {
					tools = append(tools, t)
				}
			}
		}
		if !from.IsZero() && (started.IsZero() || started.Before(from)) {
			continue
		}
		if ident != "" && !strings.Contains(who, ident) {
			continue
		}
		if tool != "" && !slices.Contains(tools, tool) {
			continue
		}
		ts := "-"
		if !started.IsZero() {
			ts = started.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(w, "%-40s %-20s %-24s %6d %7d  %s\n", s.Name, ts, who, len(s.Chains), events, strings.Join(tools, ","))
	}
	return nil
}

func useColor(mode string, w io.Writer) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// play prints a timeline: time, what happened, who, which tool, arguments, decision, result.
func play(ctx context.Context, w io.Writer, evs []recordings.Event, pace, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return "\x1b[" + code + "m" + s + "\x1b[0m"
	}
	var prev time.Time
	for _, e := range evs {
		if pace && !prev.IsZero() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(paceGap(prev, e)):
			}
		}
		prev = e.Time
		ts := e.Time.UTC().Format("15:04:05.000")
		var line string
		switch e.Kind {
		case recordings.KindSessionStart:
			who := "unverified caller"
			if e.Identity != nil {
				who = fmt.Sprintf("%s (client %s, issuer %s, groups %s)", e.Identity.Subject, e.Identity.ClientID, e.Identity.Issuer, strings.Join(e.Identity.Groups, ","))
			}
			line = paint("1", "SESSION START") + " " + who
		case recordings.KindSessionEnd:
			line = paint("1", "SESSION END") + " " + noteText(e.Note)
		case recordings.KindRequest:
			line = paint("36", "→ "+orDash(e.Method)) + " " + e.Tool + " " + compact(e.Message, 300) + dim(color, " ["+e.RequestID+"]")
			if e.Message == nil {
				line = paint("36", "→ "+e.HTTP) + dim(color, " ["+e.RequestID+"]")
			}
			if e.Note != nil {
				line += " " + e.Note.Kind + " " + noteText(e.Note)
			}
			if e.Sealed != "" {
				line += dim(color, " (original sealed: recordings unseal)")
			}
		case recordings.KindForward:
			line = paint("36", "⇢ forwarded "+orDash(e.Method)) + " " + e.Tool + heldFor(e) + dim(color, " ["+e.RequestID+"]")
		case recordings.KindResponse:
			sse := ""
			if e.SSE != nil {
				sse = " (sse)"
			}
			line = paint("32", "← "+orDash(e.Method)+sse) + " " + compact(e.Message, 300)
			if e.Note != nil {
				line += " " + noteText(e.Note)
			}
		case recordings.KindDenial:
			line = paint("31", fmt.Sprintf("✗ DENIED %d", e.Status)) + " " + compact(e.Message, 300)
		case recordings.KindNote:
			kind := e.Note.Kind
			if st, ok := e.Note.Attrs["step"].(string); ok && e.Note.Stage == "approvals" {
				kind += " " + st // held, granted, released…: the hold reads as a sequence
			}
			line = paint("33", "• "+e.Note.Stage+" "+kind) + " " + noteText(e.Note)
		default:
			line = string(e.Kind)
		}
		if _, err := fmt.Fprintf(w, "%s  %s\n", dim(color, ts), line); err != nil {
			return err
		}
	}
	return nil
}

// paceGap is how long --pace waits before showing e: idle gaps are cut to 5s, a call's
// hold for approval is replayed as it was.
func paceGap(prev time.Time, e recordings.Event) time.Duration {
	gap := e.Time.Sub(prev)
	if !inHold(e) {
		gap = min(gap, 5*time.Second)
	}
	return gap
}

// inHold reports an event that ends a wait for approval: the gap before it is the hold.
func inHold(e recordings.Event) bool {
	if e.Kind == recordings.KindForward {
		return true
	}
	if e.Kind != recordings.KindNote || e.Note == nil || e.Note.Stage != "approvals" {
		return false
	}
	switch e.Note.Attrs["step"] {
	case "granted", "denied", "released", "deferred", "lapsed":
		return true
	}
	return false
}

// heldFor is how long a forwarded request waited at the gateway, when it is worth saying.
func heldFor(e recordings.Event) string {
	if e.Note == nil {
		return ""
	}
	ms, ok := e.Note.Attrs["waited_ms"].(float64)
	if !ok || ms < 1000 {
		return ""
	}
	return fmt.Sprintf(" after %s at the gateway", (time.Duration(ms) * time.Millisecond).Round(100*time.Millisecond))
}

func dim(color bool, s string) string {
	if !color {
		return s
	}
	return "\x1b[2m" + s + "\x1b[0m"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func noteText(n *recordings.Note) string {
	if n == nil {
		return ""
	}
	b, _ := json.Marshal(n.Attrs)
	return string(b)
}

func compact(raw json.RawMessage, limit int) string {
	s := strings.Join(strings.Fields(string(raw)), " ")
	if len(s) > limit {
		return strings.ToValidUTF8(s[:limit], "") + "…"
	}
	return s
}
