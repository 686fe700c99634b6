package app

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mcpguard/mcpguard/envoy/bootstrap"
)

const envoyUsage = `Usage:
  mcpguard envoy check FILE
      validate an Envoy bootstrap offline (strict decoding, every protoc-gen-validate rule,
      references between resources) and mcpguard's rules for it: ext_authz and ext_proc fail
      closed, ext_authz's identity namespace is forwarded to ext_proc, ext_proc's
      max_message_timeout and the idle timers outlast the longest approval hold, buffers fit
      buffered bodies, the gRPC cluster's circuit breakers are lifted. Prints every problem
      with its field path; exits 1 if any
`

func envoyCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (isHelp(args[0]) || wantsHelp(args[1:])) {
		fmt.Fprint(stdout, envoyUsage)
		return nil
	}
	if len(args) != 2 || args[0] != "check" || strings.HasPrefix(args[1], "-") {
		fmt.Fprint(stderr, envoyUsage)
		return ErrUsage
	}
	if err := bootstrap.CheckFile(args[1]); err != nil {
		fmt.Fprintf(stderr, "%s: invalid\n", args[1])
		printProblems(stderr, err)
		return errors.New("envoy bootstrap has problems")
	}
	fmt.Fprintf(stdout, "%s: ok\n", args[1])
	return nil
}

// printProblems prints each line of a (joined) error indented under its file.
func printProblems(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
}
