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
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/recordings"
)

const recordingsUsage = `Usage:
  mcpguard recordings ls [FILTERS]
  mcpguard recordings play SESSION [--full] [--force] [--pace] [--color auto|always|never] [--public-key BASE64]
  mcpguard recordings verify SESSION|--all [--public-key BASE64]
  mcpguard recordings export SESSION --format jsonl
  mcpguard recordings reindex [--since T] [--until T]
  mcpguard recordings unseal --identity KEYFILE SESSION
FILTERS: --since T --until T (T: 7d, 36h, YYYY-MM-DD or RFC 3339; session start, until exclusive)
         --identity SUBJECT|CLIENT (exact) --tool NAME --rule NAME --decision ACTION --request-id ID
SESSION is a session id or a prefix of one (the filters narrow it).
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
	since := fs.String("since", "", "sessions started at or after: a duration back (7d, 36h), a date (YYYY-MM-DD) or RFC 3339")
	until := fs.String("until", "", "sessions started before: a duration back, a date or RFC 3339")
	var q recordings.Query
	fs.StringVar(&q.Identity, "identity", "", "subject or client id (exact); unseal: age identity file holding the key sealed arguments were sealed to")
	fs.StringVar(&q.Tool, "tool", "", "sessions that called this tool")
	fs.StringVar(&q.Rule, "rule", "", "sessions a policy rule decided in")
	fs.StringVar(&q.Decision, "decision", "", "sessions with this decision (allow, deny, require_approval, approved, rejected, ...)")
	fs.StringVar(&q.RequestID, "request-id", "", "sessions holding this request id (x-request-id)")
	pace := fs.Bool("pace", false, "play: replay in real time")
	color := fs.String("color", "auto", "play: auto, always or never")
	full := fs.Bool("full", false, "play: show whole messages (default: cut at 300 characters)")
	force := fs.Bool("force", false, "play: play a session that fails verification, with a warning")
	all := fs.Bool("all", false, "verify: every session")
	pubFlag := fs.String("public-key", "", "play, verify: base64 Ed25519 public key (default: recordings.public_key, else the local signing key's)")
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
	now := time.Now()
	for _, b := range []struct {
		flag, v string
		to      *time.Time
	}{{"--since", *since, &q.Since}, {"--until", *until, &q.Until}} {
		if b.v == "" {
			continue
		}
		t, err := recordings.ParseTime(b.v, now)
		if err != nil {
			return fmt.Errorf("%s: %w", b.flag, err)
		}
		*b.to = t
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
		return a.Resolve(ctx, pos[0], q)
	}
	switch sub {
	case "ls":
		if len(pos) != 0 {
			fmt.Fprint(stderr, recordingsUsage)
			return ErrUsage
		}
		return recordingsLs(ctx, a, stdout, stderr, q)
	case "play":
		s, err := one()
		if err != nil {
			return err
		}
		if err := verifyBeforePlay(ctx, cfg, a, s, *pubFlag, *force, stdout, stderr); err != nil {
			return err
		}
		evs, err := a.Events(ctx, s)
		if err != nil {
			return err
		}
		limit := 300
		if *full {
			limit = 0
		}
		return play(ctx, stdout, evs, *pace, useColor(*color, stdout), limit)
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
		// Here --identity is the age identity file, not a filter.
		keyFile := q.Identity
		q.Identity = ""
		ids, err := loadIdentities(keyFile)
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
		return unseal(stdout, stderr, s.Name, evs, ids, keyFile)
	case "verify":
		pub, err := verifyKey(cfg, *pubFlag)
		if err != nil {
			return err
		}
		switch {
		case *all && len(pos) == 0:
			return verifyAll(ctx, a, pub, stdout, stderr)
		case !*all && len(pos) == 1:
			s, err := a.Resolve(ctx, pos[0], q)
			if err != nil {
				return err
			}
			v, err := a.Verify(ctx, s, pub)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, v.String())
			if !v.OK() {
				fmt.Fprintf(stderr, "hint: verified with public key %s (recordings.public_key or --public-key)\n", recordings.EncodePublicKey(pub))
				return errors.New("1 of 1 session(s) failed verification")
			}
			return nil
		default:
			fmt.Fprint(stderr, recordingsUsage)
			return ErrUsage
		}
	case "reindex":
		if len(pos) != 0 {
			fmt.Fprint(stderr, recordingsUsage)
			return ErrUsage
		}
		key, _, err := recordings.LoadKey(signingKeyFile(cfg), false)
		if err != nil {
			return fmt.Errorf("reindex signs the index with the recordings signing key: %w", err)
		}
		res, err := a.Reindex(ctx, key, q, now)
		if err != nil {
			return err
		}
		for _, s := range res.Skipped {
			fmt.Fprintf(stderr, "skipped %s\n", s)
		}
		fmt.Fprintf(stdout, "reindexed %d chain(s) of %d day(s) into %d index part(s)\n", res.Indexed, res.Days, res.Parts)
		if len(res.Skipped) > 0 {
			return fmt.Errorf("%d manifest(s) not indexed: run verify", len(res.Skipped))
		}
		return nil
	default:
		fmt.Fprintf(stderr, "mcpguard recordings: unknown subcommand %q\n%s", sub, recordingsUsage)
		return ErrUsage
	}
}

// verifyBeforePlay verifies s and says so; a failure refuses to play unless forced.
func verifyBeforePlay(ctx context.Context, cfg *config.Config, a *recordings.Archive, s *recordings.Session, pubFlag string, force bool, stdout, stderr io.Writer) error {
	pub, err := verifyKey(cfg, pubFlag)
	if err != nil {
		if !force {
			return fmt.Errorf("play verifies first: %w (or --force to play unverified)", err)
		}
		fmt.Fprintf(stdout, "WARNING: %s NOT VERIFIED (no public key); playing it anyway (--force)\n", s.Name)
		return nil
	}
	v, err := a.Verify(ctx, s, pub)
	if err != nil {
		return err
	}
	if v.OK() {
		fmt.Fprintf(stdout, "verified: %s\n", v.String())
		return nil
	}
	if !force {
		fmt.Fprintln(stderr, v.String())
		return fmt.Errorf("session %s failed verification; not playing it (--force plays it with a warning)", s.Name)
	}
	fmt.Fprintf(stdout, "WARNING: VERIFICATION FAILED, playing anyway (--force): %s\n", v.String())
	fmt.Fprintf(stderr, "WARNING: session %s failed verification\n", s.Name)
	return nil
}

// verifyAll prints a verdict per session, then per replica and per unindexed day.
func verifyAll(ctx context.Context, a *recordings.Archive, pub ed25519.PublicKey, stdout, stderr io.Writer) error {
	rep, err := a.VerifyAll(ctx, pub, nil)
	if err != nil {
		return err
	}
	failed := 0
	for _, v := range rep.Sessions {
		fmt.Fprintln(stdout, v.String())
		if !v.OK() {
			failed++
		}
	}
	for _, v := range rep.Replicas {
		fmt.Fprintln(stdout, v.String())
		if !v.OK() {
			failed++
		}
	}
	for _, d := range rep.Days {
		fmt.Fprintln(stdout, "FAIL "+d)
		failed++
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "hint: verified with public key %s (recordings.public_key or --public-key)\n", recordings.EncodePublicKey(pub))
		return fmt.Errorf("%d failed verdict(s) among %d session(s) and %d replica epoch(s)", failed, len(rep.Sessions), len(rep.Replicas))
	}
	return nil
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

func recordingsLs(ctx context.Context, a *recordings.Archive, w, stderr io.Writer, q recordings.Query) error {
	found, err := a.Search(ctx, q)
	if err != nil {
		return err
	}
	for _, n := range found.Notes {
		fmt.Fprintln(stderr, "note: "+n)
	}
	fmt.Fprintf(w, "%-40s %-20s %-24s %6s %7s  %-24s %s\n", "SESSION", "STARTED", "IDENTITY", "CHAINS", "EVENTS", "TOOLS", "DECISIONS")
	for _, s := range found.Sessions {
		sum := s.Summary()
		who := ""
		if id := sum.Identity; id != nil {
			who = id.Subject
			if id.ClientID != "" && id.ClientID != who {
				who += " (" + id.ClientID + ")"
			}
		}
		ts := "-"
		if !sum.Started.IsZero() {
			ts = sum.Started.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(w, "%-40s %-20s %-24s %6d %7d  %-24s %s\n", s.Name, ts, who, len(s.Chains), sum.Events,
			strings.Join(sum.Facets.Tools, ","), strings.Join(sum.Facets.Decisions, ","))
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
// limit cuts messages at that many characters (0: whole).
func play(ctx context.Context, w io.Writer, evs []recordings.Event, pace, color bool, limit int) error {
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
		ts := e.Time.UTC().Format("2006-01-02 15:04:05.000")
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
			line = paint("36", "→ "+orDash(e.Method)) + " " + e.Tool + " " + compact(e.Message, limit) + dim(color, " ["+e.RequestID+"]")
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
			line = paint("32", "← "+orDash(e.Method)+sse) + " " + compact(e.Message, limit)
			if e.Note != nil {
				line += " " + noteText(e.Note)
			}
		case recordings.KindDenial:
			line = paint("31", fmt.Sprintf("✗ DENIED %d", e.Status)) + " " + compact(e.Message, limit)
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
	if limit > 0 && len(s) > limit {
		return strings.ToValidUTF8(s[:limit], "") + "…"
	}
	return s
}
