package netx

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader holds the current server certificate and client CA pool of one listener and swaps them when
// the files change: every ReloadInterval (by content hash) and whenever [Reloader.Reload] is called.
// A reload that fails keeps the last good material. Handshakes that start after a swap see the new
// certificate and the new client CAs; established connections are not touched.
//
// Lifecycle: [Reloader.Run] is the only goroutine; [Reloader.Close] stops it and waits for it.
type Reloader struct {
	cfg    TLSConfig
	log    *slog.Logger
	minVer uint16

	cur atomic.Pointer[material]

	loadMu  sync.Mutex // serialises loads; guards the two fields below
	sum     [sha256.Size]byte
	lastErr string // last failure seen by the Run loop, so each distinct failure is logged once

	lifeMu  sync.Mutex
	running bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

// material is one consistent generation of TLS inputs; it is immutable once published.
type material struct {
	cert *tls.Certificate
	pool *x509.CertPool // nil unless mutual TLS
}

// NewReloader validates c, loads its files once and fails if that first load fails. c must enable TLS.
func NewReloader(c TLSConfig, log *slog.Logger) (*Reloader, error) {
	if !c.Enabled() {
		return nil, errors.New("new tls reloader: tls is not enabled")
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("new tls reloader: %w", err)
	}
	minVer, _ := c.minVersion() // checked by Validate
	r := &Reloader{
		cfg:    c,
		log:    log,
		minVer: minVer,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if _, err := r.load(true); err != nil {
		return nil, fmt.Errorf("new tls reloader: %w", err)
	}
	return r, nil
}

// Reload reads the files now and swaps in the result even if the content looks unchanged. On error the
// previous material stays in use and the error is returned (not logged).
func (r *Reloader) Reload() error {
	_, err := r.load(true)
	return err
}

// Run checks the files every ReloadInterval until ctx is done or [Reloader.Close] is called. Failures are
// logged once per distinct error and the last good material keeps serving. Run returns at once if it is
// already running or the Reloader is closed.
func (r *Reloader) Run(ctx context.Context) {
	r.lifeMu.Lock()
	if r.running || r.closed {
		r.lifeMu.Unlock()
		return
	}
	r.running = true
	r.lifeMu.Unlock()
	defer close(r.done)

	t := time.NewTicker(r.cfg.interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.stop:
			return
		case <-t.C:
			r.check()
		}
	}
}

// Close stops [Reloader.Run] and waits for it to return. The last material keeps serving handshakes.
func (r *Reloader) Close() {
	r.lifeMu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	running := r.running
	r.lifeMu.Unlock()
	if running {
		<-r.done
	}
}

func (r *Reloader) check() {
	_, err := r.load(false)
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	if err == nil {
		r.lastErr = ""
		return
	}
	if msg := err.Error(); msg != r.lastErr {
		r.lastErr = msg
		r.log.Error("tls reload failed, keeping the previous certificate", "cert_file", r.cfg.CertFile, "err", err)
	}
}

// load reads the three files, and unless force is set skips parsing when their content hash matches
// the material in use. It reports whether new material was published.
func (r *Reloader) load(force bool) (bool, error) {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()

	certPEM, err := os.ReadFile(r.cfg.CertFile)
	if err != nil {
		return false, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(r.cfg.KeyFile)
	if err != nil {
		return false, fmt.Errorf("read key: %w", err)
	}
	var caPEM []byte
	if r.cfg.ClientCAFile != "" {
		if caPEM, err = os.ReadFile(r.cfg.ClientCAFile); err != nil {
			return false, fmt.Errorf("read client ca: %w", err)
		}
	}
	sum := digest(certPEM, keyPEM, caPEM)
	if !force && sum == r.sum {
		clear(keyPEM)
		return false, nil
	}
	m, err := parseMaterial(certPEM, keyPEM, caPEM, r.cfg.ClientCAFile != "")
	clear(keyPEM) // the parsed key lives on in the certificate; drop the raw copy early
	if err != nil {
		return false, err
	}
	r.sum = sum
	r.cur.Store(m)
	leaf := m.cert.Leaf
	r.log.Info("tls certificate loaded", "cert_file", r.cfg.CertFile, "serial", leaf.SerialNumber.Text(16),
		"not_after", leaf.NotAfter, "mtls", m.pool != nil)
	return true, nil
}

func parseMaterial(certPEM, keyPEM, caPEM []byte, mtls bool) (*material, error) {
	cert, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	m := &material{cert: cert}
	if mtls {
		if m.pool, err = parsePool(caPEM); err != nil {
			return nil, fmt.Errorf("parse client ca: %w", err)
		}
	}
	return m, nil
}

// digest hashes the files with length prefixes so that moving bytes between files changes the sum.
func digest(parts ...[]byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// ServerConfig returns a config for tls.NewListener, http.Server.TLSConfig or gRPC's credentials.NewTLS.
// Every handshake gets the current material through GetConfigForClient, so its NextProtos must be given
// here: pass "h2" for gRPC (credentials.NewTLS also adds it) and "h2", "http/1.1" for an HTTP server,
// because the per-handshake config replaces the one a server would otherwise amend. With a client CA file,
// clients must present a certificate that verifies against the current pool.
func (r *Reloader) ServerConfig(nextProtos ...string) *tls.Config {
	protos := slices.Clone(nextProtos)
	// One *tls.Config per material generation: handshakes share it (and its session ticket keys) until
	// the next swap, and a swap invalidates tickets issued under the old certificate or CA pool.
	var cache atomic.Pointer[generation]
	return &tls.Config{
		MinVersion: r.minVer,
		NextProtos: protos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.cur.Load()
			if g := cache.Load(); g != nil && g.m == m {
				return g.cfg, nil
			}
			g := &generation{m: m, cfg: r.configFor(m, protos)}
			cache.Store(g)
			return g.cfg, nil
		},
	}
}

type generation struct {
	m   *material
	cfg *tls.Config
}

func (r *Reloader) configFor(m *material, protos []string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:   r.minVer,
		Certificates: []tls.Certificate{*m.cert},
		NextProtos:   protos,
		ClientAuth:   tls.NoClientCert,
	}
	if r.cfg.ClientCAFile != "" {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = m.pool
	}
	return cfg
}
