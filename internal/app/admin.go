package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpguard/mcpguard/internal/config"
)

// readiness is what /readyz asks: nil when the service can take traffic.
type readiness func() error

// adminMux serves health, readiness, metrics, the RFC 9728 protected resource metadata and,
// when admin.pprof is on, Go's profiles.
func adminMux(cfg *config.Config, reg *prometheus.Registry, ready readiness, extra map[string]http.Handler) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	prm, err := resourceMetadata(cfg)
	if err != nil {
		return nil, err
	}
	// RFC 9728 §3.1: the well-known URI with the resource's path inserted after it
	// (/.well-known/oauth-protected-resource/mcp); the root form serves clients that try it.
	mux.Handle("GET "+wellKnownPRM, prm)
	if p := resourcePath(cfg.Auth.ResourceMetadata.Resource); p != "" {
		mux.Handle("GET "+wellKnownPRM+p, prm)
	}
	if cfg.Admin.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	return mux, nil
}

const wellKnownPRM = "/.well-known/oauth-protected-resource"

func resourcePath(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.EscapedPath(), "/")
}

// resourceMetadata renders the protected resource metadata document once; it only changes with the config.
func resourceMetadata(cfg *config.Config) (http.Handler, error) {
	rm := cfg.Auth.ResourceMetadata
	servers := rm.AuthorizationServers
	if len(servers) == 0 {
		for _, is := range cfg.Auth.Issuers {
			servers = append(servers, is.Issuer)
		}
		if cfg.Auth.DevIssuer.Enabled {
			servers = append(servers, cfg.Auth.DevIssuer.Issuer)
		}
	}
	doc := map[string]any{
		"resource":                 rm.Resource,
		"authorization_servers":    servers,
		"bearer_methods_supported": []string{"header"},
	}
	if len(rm.ScopesSupported) > 0 {
		doc["scopes_supported"] = rm.ScopesSupported
	}
	if rm.ResourceName != "" {
		doc["resource_name"] = rm.ResourceName
	}
	if rm.DocumentationURL != "" {
		doc["resource_documentation"] = rm.DocumentationURL
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode resource metadata: %w", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	}), nil
}
