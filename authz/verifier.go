package authz

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpguard/mcpguard/identity"
)

var (
	errUntrustedIssuer = errors.New("untrusted issuer")
	errUnknownKID      = errors.New("unknown signing key")
	errCritical        = errors.New("unsupported critical header")
)

// Verifier checks bearer tokens against the configured issuers' keys and caches the result.
// It is safe for concurrent use.
type Verifier struct {
	issuers map[string]*keys
	order   []*keys
	parser  *jwt.Parser
	groups  string
	max     int
	algs    map[string]bool
	cache   *cache
	met     *metrics
	now     func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Option changes how [NewVerifier] builds a Verifier.
type Option func(*options)

type options struct {
	static []staticIssuer
	client *http.Client
	now    func() time.Time
}

type staticIssuer struct {
	issuer string
	jwks   []byte
}

// WithStaticIssuer adds an issuer whose keys are given in-process (the development issuer):
// no discovery, no HTTP, no refresh. Its tokens get the default audience of [Config].
func WithStaticIssuer(issuer string, jwksJSON []byte) Option {
	return func(o *options) { o.static = append(o.static, staticIssuer{issuer, slices.Clone(jwksJSON)}) }
}

// WithHTTPClient sets the client used for discovery and key sets (custom TLS roots, proxies).
// Requests are still bounded by jwks.http_timeout.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) { o.client = c }
}

// NewVerifier loads every issuer's keys once (bounded by jwks.http_timeout) and starts their
// background refresh, which runs until Close or until ctx ends. An unreachable IdP is not an
// error: it is logged, retried, and reported by [Verifier.Ready]. At least one issuer, from cfg
// or [WithStaticIssuer], is required.
func NewVerifier(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("authz config: %w", err)
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.client == nil {
		o.client = &http.Client{Timeout: cfg.JWKS.HTTPTimeout}
	}
	met, err := newVerifierMetrics(reg)
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		issuers: map[string]*keys{},
		groups:  cfg.GroupsClaim,
		max:     cfg.MaxTokenBytes,
		algs:    map[string]bool{},
		cache:   newCache(cfg.Cache.MaxEntries),
		met:     met,
		now:     o.now,
	}
	for _, a := range cfg.Algorithms {
		v.algs[a] = true
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	for _, s := range o.static {
		if _, dup := v.issuers[s.issuer]; dup || s.issuer == "" {
			return nil, fmt.Errorf("static issuer %q: empty or duplicate", s.issuer)
		}
		k, err := newStaticKeys(s.issuer, s.jwks)
		if err != nil {
			return nil, err
		}
		v.issuers[s.issuer] = k
		v.order = append(v.order, k)
	}
	var remote []*keys
	for _, is := range cfg.Issuers {
		if _, dup := v.issuers[is.Issuer]; dup {
			return nil, fmt.Errorf("issuer %s: configured twice", is.Issuer)
		}
		k := newKeys(is.Issuer, is.JWKSURL, cfg.JWKS, o.client, log, met)
		v.issuers[is.Issuer] = k
		v.order = append(v.order, k)
		remote = append(remote, k)
	}
	if len(v.order) == 0 {
		return nil, errors.New("authz: no issuer configured")
	}
	var first sync.WaitGroup
	for _, k := range remote {
		first.Go(func() { k.refresh(ctx) })
	}
	first.Wait()
	bg, cancel := context.WithCancel(ctx)
	v.cancel = cancel
	for _, k := range remote {
		v.wg.Go(func() { k.run(bg) })
	}
	return v, nil
}

// Ready is nil once every issuer's keys are loaded; otherwise it names each issuer that is not and why.
func (v *Verifier) Ready() error {
	var errs []error
	for _, k := range v.order {
		if err := k.ready(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops the background refresh and waits for it. It is safe to call more than once.
func (v *Verifier) Close() {
	v.once.Do(func() {
		v.cancel()
		v.wg.Wait()
	})
}

// verified is what a checked token proves, independent of the route: cached until exp.
type verified struct {
	id   identity.Identity
	aud  []string
	meta *structpb.Struct // id.Struct(), built once; shared by responses, so read-only
}

// claims decodes the registered claims and keeps the rest raw for scopes, groups and client id.
type claims struct {
	jwt.RegisteredClaims
	raw map[string]json.RawMessage
}

func (c *claims) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &c.RegisteredClaims); err != nil {
		return fmt.Errorf("decode registered claims: %w", err)
	}
	if err := json.Unmarshal(b, &c.raw); err != nil {
		return fmt.Errorf("decode claims: %w", err)
	}
	return nil
}

// verify returns the token's verified claims, from the cache when possible. Errors are a
// [*denial] for anything wrong with the token, anything else is an internal fault.
func (v *Verifier) verify(ctx context.Context, token string) (*verified, error) {
	if len(token) > v.max {
		return nil, deny(reasonTooLarge)
	}
	h := tokenHash(token)
	now := v.now()
	if vf := v.cache.get(h, now); vf != nil {
		v.met.cacheHit.Inc()
		return vf, nil
	}
	v.met.cacheMiss.Inc()
	c := &claims{}
	t, err := v.parser.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errCritical
		}
		k := v.issuers[c.Issuer]
		if k == nil {
			return nil, errUntrustedIssuer
		}
		return k.key(ctx, t)
	})
	if err != nil {
		return nil, v.classify(t, err)
	}
	vf, err := v.identity(c)
	if err != nil {
		return nil, err
	}
	if now.Before(vf.id.ExpiresAt) {
		v.cache.put(h, vf, now)
	}
	return vf, nil
}

// classify maps a parse error to a fixed denial reason; missing keys are an internal fault.
func (v *Verifier) classify(t *jwt.Token, err error) error {
	alg := ""
	if t != nil {
		alg, _ = t.Header["alg"].(string)
	}
	switch {
	case errors.Is(err, errNoKeys):
		return err
	case errors.Is(err, errUntrustedIssuer):
		return deny(reasonIssuer)
	case errors.Is(err, errUnknownKID):
		return deny(reasonUnknownKey)
	case errors.Is(err, errCritical):
		return deny(reasonUnverifiable)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return deny(reasonMalformed)
	case !v.algs[alg]:
		return deny(reasonAlgorithm)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return deny(reasonSignature)
	case errors.Is(err, jwt.ErrTokenExpired):
		return deny(reasonExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return deny(reasonNotYetValid)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return deny(reasonIssuedInFuture)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return deny(reasonClaims)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return deny(reasonUnverifiable)
	default:
		return deny(reasonMalformed)
	}
}

// identity builds the caller identity from verified claims; a claim of the wrong shape is refused.
func (v *Verifier) identity(c *claims) (*verified, error) {
	if c.Subject == "" || c.ExpiresAt == nil {
		return nil, deny(reasonClaims)
	}
	scopes, err := scopeClaims(c.raw)
	if err != nil {
		return nil, deny(reasonClaims)
	}
	groups, err := stringList(c.raw[v.groups], false)
	if err != nil {
		return nil, deny(reasonClaims)
	}
	var client string
	for _, name := range []string{"cid", "client_id", "azp"} {
		if raw, ok := c.raw[name]; ok {
			if err := json.Unmarshal(raw, &client); err != nil {
				return nil, deny(reasonClaims)
			}
			if client != "" {
				break
			}
		}
	}
	id := identity.Identity{
		Subject: c.Subject, ClientID: client, Issuer: c.Issuer,
		Scopes: scopes, Groups: groups, TokenID: c.ID,
		ExpiresAt: c.ExpiresAt.UTC(),
	}
	return &verified{id: id, aud: c.Audience, meta: id.Struct()}, nil
}

// scopeClaims reads Okta's scp (array) and the RFC 8693 scope (space-separated string).
func scopeClaims(raw map[string]json.RawMessage) ([]string, error) {
	scp, err := stringList(raw["scp"], true)
	if err != nil {
		return nil, err
	}
	var out []string
	out = append(out, scp...)
	if s, ok := raw["scope"]; ok {
		var str string
		if err := json.Unmarshal(s, &str); err != nil {
			return nil, fmt.Errorf("scope claim: %w", err)
		}
		out = append(out, strings.Fields(str)...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// stringList decodes a claim that is an array of strings or one string (split on spaces when split is set).
func stringList(raw json.RawMessage, split bool) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errors.New("not a string or a list of strings")
	}
	if split {
		return strings.Fields(s), nil
	}
	return []string{s}, nil
}

// tokenHash is a token's cache key, its SHA-256. Tokens up to 4 KiB (all realistic ones) are
// hashed from a copy on the stack rather than a fresh heap slice per check.
func tokenHash(token string) [sha256.Size]byte {
	var buf [4096]byte
	if len(token) <= len(buf) {
		return sha256.Sum256(append(buf[:0], token...))
	}
	return sha256.Sum256([]byte(token))
}
