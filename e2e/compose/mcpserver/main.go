// Command mcpserver serves the e2e upstream MCP server (echo, slow, big, ask, execute_sql) on a
// fixed address for the docker compose stack, where envoy/envoy.yaml expects the upstream at
// 127.0.0.1:8081. The server itself listens on a random loopback port; a streaming reverse
// proxy on -listen forwards to it unchanged (SSE flushed as it arrives).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mcpserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mcpserver", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8081", "address Envoy's mcp_upstream cluster points at")
	mode := fs.String("mode", string(mcpserver.Stateful), "transport: stateful, stateful-json, stateless, stateless-json or sse")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.Mode(*mode), Log: log})
	if err != nil {
		return fmt.Errorf("start upstream: %w", err)
	}
	target := &url.URL{Scheme: "http", Host: up.Addr()}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // SSE events go out as they are written
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		_ = up.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	log.Info("mcpserver started", "listen", lis.Addr().String(), "mode", *mode)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err = <-served:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// Close the upstream first: it ends open SSE streams, which lets the proxy drain.
	upErr := up.Close(sctx)
	srvErr := srv.Shutdown(sctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, upErr, srvErr)
}
