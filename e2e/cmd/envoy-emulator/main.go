// Command envoy-emulator runs the Envoy emulator with a bootstrap file:
//
//	go run ./e2e/cmd/envoy-emulator -c envoy/envoy.yaml [-listen ADDR] [-cluster name=host:port ...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcpguard/mcpguard/e2e/bootstrap"
	"github.com/mcpguard/mcpguard/e2e/emulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "envoy-emulator:", err)
		os.Exit(1)
	}
}

type clusterFlags map[string]string

func (c clusterFlags) String() string { return fmt.Sprint(map[string]string(c)) }

func (c clusterFlags) Set(v string) error {
	name, addr, ok := strings.Cut(v, "=")
	if !ok || name == "" || addr == "" {
		return errors.New("want name=host:port")
	}
	c[name] = addr
	return nil
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("envoy-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "envoy/envoy.yaml", "Envoy bootstrap file")
	listen := fs.String("listen", "", "override the listener address")
	clusters := clusterFlags{}
	fs.Var(clusters, "cluster", "override a cluster endpoint: name=host:port or name=unix:/path (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	b, err := bootstrap.Load(*path)
	if err != nil {
		return fmt.Errorf("load bootstrap: %w", err)
	}
	e, err := emulator.New(b, emulator.Options{Listen: *listen, Clusters: clusters, Log: log})
	if err != nil {
		return err
	}
	if err := e.Start(ctx); err != nil {
		return err
	}
	log.Info("envoy emulator listening", "addr", e.Addr(), "bootstrap", *path)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return e.Close(shutdown)
}
