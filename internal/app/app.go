// Package app wires mcpguard together: subcommands, servers, and the ordered shutdown.
//
// Run is the testable entry point: main only traps signals and calls it. Nothing imports
// this package; it imports everything.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Version is the build version, set with -ldflags "-X github.com/mcpguard/mcpguard/internal/app.Version=…".
var Version = "dev"

// ErrUsage reports a command line that could not be understood; the usage was printed.
var ErrUsage = errors.New("usage")

const usage = `mcpguard — the enforcement layer for MCP servers behind Envoy.

Envoy calls mcpguard over gRPC as an ext_authz service (verify the caller's JWT) and as an
ext_proc service (inspect every MCP JSON-RPC message).

Usage:
  mcpguard serve [--config FILE]        run the service (no --config: embedded development defaults)
  mcpguard config validate FILE         check a config file; prints every problem, exits 1 if any
  mcpguard config default               print the embedded default config (a starting point)
  mcpguard recordings ls|play|verify|export|reindex   read session recordings back (see recordings --help)
  mcpguard token [flags]                mint a token from the development issuer (see token --help)
  mcpguard policy test|explain ...      check a policy file against cases, or explain one decision
  mcpguard policy replay DRAFT.yaml     re-decide recorded requests with a draft policy (--since 7d)
  mcpguard approvals ls|approve|deny    list and decide held calls (see approvals --help)
  mcpguard envoy check FILE             check an Envoy bootstrap offline against mcpguard's rules
  mcpguard version                      print the version

First run:
  mcpguard serve                        gRPC on 127.0.0.1:9001, admin HTTP on 127.0.0.1:9002
  mcpguard token --sub agent-1 --scope mcp:tools
  curl http://127.0.0.1:9002/readyz

Run "mcpguard COMMAND --help" for a command's flags.
`

// Run executes the command line args. Output for people goes to stdout (tokens, reports) and
// stderr (logs, errors, usage).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ErrUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, stdout, stderr)
	case "config":
		return configCmd(rest, stdout, stderr)
	case "recordings":
		return recordingsCmd(ctx, rest, stdout, stderr)
	case "token":
		return token(rest, stdout, stderr)
	case "approvals":
		return approvalsCmd(ctx, rest, stdout, stderr)
	case "policy":
		if len(rest) > 0 && rest[0] == "replay" {
			return policyReplay(ctx, rest[1:], stdout, stderr)
		}
		return policyCmd(rest, stdout, stderr)
	case "envoy":
		return envoyCmd(rest, stdout, stderr)
	case "version", "--version":
		if wantsHelp(rest) {
			fmt.Fprint(stdout, "Usage: mcpguard version\n\nPrints the version of this build.\n")
			return nil
		}
		fmt.Fprintf(stdout, "mcpguard %s\n", Version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "mcpguard: unknown command %q\n\n%s", cmd, usage)
		return ErrUsage
	}
}

// parseFlags parses a subcommand's flags; --help prints its usage and returns flag.ErrHelp,
// which callers turn into success.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer, synopsis string) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mcpguard %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mcpguard: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return ErrUsage
	}
	return nil
}

// isHelp reports a request for usage in place of a subcommand or argument.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// wantsHelp reports a help flag anywhere among args (before a "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}
