// Command demo runs the mcpguard demo (package demo) in the terminal:
//
//	demo [-bin DIR] [-envoy envoy/envoy.yaml] [-auto-approve] [-hold 25s] [-keep]
//
// DEMO_AUTO_APPROVE=1 sets -auto-approve. `make demo` builds the binaries and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpguard/mcpguard/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o demo.Options
	fs.StringVar(&o.BinDir, "bin", "bin", "directory holding mcpguard, envoy-emulator and demo-server")
	fs.StringVar(&o.Envoy, "envoy", "envoy/envoy.yaml", "Envoy bootstrap the emulator runs")
	fs.BoolVar(&o.AutoApprove, "auto-approve", os.Getenv("DEMO_AUTO_APPROVE") == "1", "approve the held call without waiting for a person")
	fs.DurationVar(&o.Hold, "hold", 0, "how long a call waits for approval before it is deferred (default: the demo config's 25s)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory (config, data, logs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return demo.Run(ctx, o, stdout, stderr)
}
