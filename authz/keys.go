package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// maxDocBytes bounds discovery documents and key sets read from an IdP.
const maxDocBytes = 1 << 20

// errNoKeys means an issuer's signing keys have never been loaded: an internal fault, not the caller's.
var errNoKeys = errors.New("signing keys not loaded")

// keys is one issuer's signing keys: fetched over HTTP (discovery or jwks_url) or given in-process.
// The loaded set only changes on a successful fetch, so known keys keep working while the IdP is down.
type keys struct {
	issuer  string
	jwksURL string // configured or discovered; guarded by mu when discovered
	static  bool

	client *http.Client
	cfg    JWKSConfig
	log    *slog.Logger
	met    *metrics

	cur  atomic.Pointer[keyfunc.Keyfunc]
	kick chan struct{} // wakes the refresh loop for an unknown kid

	mu       sync.Mutex
	lastErr  error         // why the last fetch failed; nil after a success
	lastKick time.Time     // last unknown-kid refresh
	waiting  chan struct{} // closed when the fetch serving the pending kick finishes
}

func newKeys(issuer, jwksURL string, cfg JWKSConfig, client *http.Client, log *slog.Logger, met *metrics) *keys {
	return &keys{
		issuer: issuer, jwksURL: jwksURL, cfg: cfg, client: client,
		log: log.With("issuer", issuer), met: met, kick: make(chan struct{}, 1),
		lastErr: errNoKeys,
	}
}

func newStaticKeys(issuer string, jwksJSON []byte) (*keys, error) {
	kf, err := parseJWKS(jwksJSON)
	if err != nil {
		return nil, fmt.Errorf("static issuer %s: %w", issuer, err)
	}
	k := &keys{issuer: issuer, static: true}
	k.cur.Store(&kf)
	return k, nil
}

// ready is nil once keys are loaded.
func (k *keys) ready() error {
	if k.cur.Load() != nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return fmt.Errorf("issuer %s: %w", k.issuer, k.lastErr)
}

// key returns the verification key for the token, refreshing once (rate limited) on an unknown kid.
func (k *keys) key(ctx context.Context, t *jwt.Token) (any, error) {
	kf := k.cur.Load()
	if kf == nil {
		return nil, errNoKeys
	}
	key, err := (*kf).KeyfuncCtx(ctx)(t)
	if err == nil || !errors.Is(err, jwkset.ErrKeyNotFound) {
		return key, err
	}
	if k.static || !k.refreshUnknown(ctx) {
		return nil, errUnknownKID
	}
	key, err = (*k.cur.Load()).KeyfuncCtx(ctx)(t)
	if errors.Is(err, jwkset.ErrKeyNotFound) {
		return nil, errUnknownKID
	}
	return key, err
}

// refreshUnknown asks the refresh loop for a fetch and waits for it. At most one such fetch
// runs per UnknownKIDMinInterval; callers arriving while it is pending wait for the same one,
// later callers are refused at once.
func (k *keys) refreshUnknown(ctx context.Context) bool {
	k.mu.Lock()
	w := k.waiting
	if w == nil {
		if !k.lastKick.IsZero() && time.Since(k.lastKick) < k.cfg.UnknownKIDMinInterval {
			k.mu.Unlock()
			return false
		}
		k.lastKick = time.Now()
		w = make(chan struct{})
		k.waiting = w
		select {
		case k.kick <- struct{}{}:
		default:
		}
	}
	k.mu.Unlock()
	select {
	case <-w:
		return true
	case <-ctx.Done():
		return false
	}
}

// run refreshes the keys until ctx ends: every RefreshInterval once loaded, every RetryInterval
// after a failure, and on request for an unknown kid.
func (k *keys) run(ctx context.Context) {
	for {
		wait := k.cfg.RefreshInterval
		if k.ready() != nil || k.failing() {
			wait = k.cfg.RetryInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			k.releaseWaiters()
			return
		case <-t.C:
		case <-k.kick:
			t.Stop()
		}
		k.refresh(ctx)
	}
}

func (k *keys) failing() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastErr != nil
}

func (k *keys) releaseWaiters() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.waiting != nil {
		close(k.waiting)
		k.waiting = nil
	}
}

// refresh fetches once and records the outcome; waiters registered before it started are released after.
func (k *keys) refresh(ctx context.Context) {
	k.mu.Lock()
	select { // a pending kick is served by this fetch; later kicks are sent under mu, after this
	case <-k.kick:
	default:
	}
	w := k.waiting
	k.waiting = nil
	k.mu.Unlock()
	err := k.fetch(ctx)
	loaded := k.cur.Load() != nil
	k.mu.Lock()
	wasFailing := k.lastErr != nil
	k.lastErr = err
	if err != nil && !loaded {
		k.lastErr = fmt.Errorf("%w: %w", errNoKeys, err)
	}
	k.mu.Unlock()
	if w != nil {
		close(w)
	}
	switch {
	case err == nil:
		k.met.refreshes.WithLabelValues(k.issuer, "success").Inc()
		if wasFailing {
			k.log.Info("jwks loaded", "url", k.url())
		}
	case ctx.Err() != nil:
		// shutting down
	default:
		k.met.refreshes.WithLabelValues(k.issuer, "failure").Inc()
		if loaded {
			k.log.Warn("jwks refresh failed; keeping the keys already loaded", "err", err)
		} else {
			k.log.Error("jwks unavailable; issuer not ready, its tokens are refused until keys load",
				"err", err, "retry_in", k.cfg.RetryInterval.String())
		}
	}
}

func (k *keys) url() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.jwksURL
}

// fetch discovers the JWKS URL if needed, then loads the key set.
func (k *keys) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, k.cfg.HTTPTimeout)
	defer cancel()
	u := k.url()
	if u == "" {
		d, err := k.discover(ctx)
		if err != nil {
			return err
		}
		k.mu.Lock()
		k.jwksURL = d
		k.mu.Unlock()
		u = d
	}
	body, err := k.get(ctx, u)
	if err != nil {
		return fmt.Errorf("fetch jwks %s: %w", u, err)
	}
	kf, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("parse jwks %s: %w", u, err)
	}
	k.cur.Store(&kf)
	return nil
}

// discover reads the OpenID configuration, then the OAuth authorization server metadata
// (Okta custom authorization servers publish both under the issuer path).
func (k *keys) discover(ctx context.Context) (string, error) {
	base := strings.TrimSuffix(k.issuer, "/")
	var errs []error
	for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		body, err := k.get(ctx, base+p)
		if err != nil {
			errs = append(errs, fmt.Errorf("discover %s: %w", base+p, err))
			continue
		}
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			errs = append(errs, fmt.Errorf("discover %s: decode: %w", base+p, err))
			continue
		}
		switch {
		case doc.Issuer != k.issuer:
			errs = append(errs, fmt.Errorf("discover %s: issuer %q does not match", base+p, doc.Issuer))
		case doc.JWKSURI == "":
			errs = append(errs, fmt.Errorf("discover %s: no jwks_uri", base+p))
		default:
			if err := checkURL(doc.JWKSURI); err != nil {
				errs = append(errs, fmt.Errorf("discover %s: jwks_uri: %w", base+p, err))
				continue
			}
			return doc.JWKSURI, nil
		}
	}
	return "", errors.Join(errs...)
}

func (k *keys) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocBytes))
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxDocBytes {
		return nil, fmt.Errorf("body over %d bytes", maxDocBytes)
	}
	return body, nil
}

// parseJWKS keeps the public signature keys of a JWK Set. Symmetric keys, encryption keys and
// keys this library cannot use are skipped; a set with no usable key is an error.
func parseJWKS(raw []byte) (keyfunc.Keyfunc, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	store := jwkset.NewMemoryStorage()
	n := 0
	for _, m := range set.Keys {
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue
		}
		switch m.KTY {
		case jwkset.KtyRSA, jwkset.KtyEC, jwkset.KtyOKP:
		default:
			continue
		}
		pub := jwkset.JWKMarshal{KTY: m.KTY, USE: m.USE, ALG: m.ALG, KID: m.KID, CRV: m.CRV, X: m.X, Y: m.Y, N: m.N, E: m.E}
		j, err := jwkset.NewJWKFromMarshal(pub, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			continue
		}
		if err := store.KeyWrite(context.Background(), j); err != nil {
			return nil, fmt.Errorf("store key: %w", err)
		}
		n++
	}
	if n == 0 {
		return nil, errors.New("no usable signature keys")
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: store})
	if err != nil {
		return nil, fmt.Errorf("keyfunc: %w", err)
	}
	return kf, nil
}
