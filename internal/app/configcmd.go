package app

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mcpguard/mcpguard/internal/config"
)

const configUsage = `Usage:
  mcpguard config validate FILE
      decode the config strictly and check every file it names (policy, keys, TLS, …):
      each must exist, be readable and parse; the policy must compile. Prints every problem
      with its path and line; exits 1 if any
  mcpguard config default
      print the embedded default config (a starting point)
`

func configCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, configUsage)
		return ErrUsage
	}
	if isHelp(args[0]) || wantsHelp(args[1:]) {
		fmt.Fprint(stdout, configUsage)
		return nil
	}
	switch args[0] {
	case "default":
		if len(args) != 1 {
			fmt.Fprint(stderr, configUsage)
			return ErrUsage
		}
		_, err := stdout.Write(config.DefaultYAML())
		return err
	case "validate":
		if len(args) != 2 || strings.HasPrefix(args[1], "-") {
			fmt.Fprint(stderr, configUsage)
			return ErrUsage
		}
		if err := config.Check(args[1]); err != nil {
			fmt.Fprintf(stderr, "%s: invalid\n", args[1])
			printProblems(stderr, err)
			return errors.New("config has problems")
		}
		fmt.Fprintf(stdout, "%s: ok\n", args[1])
		return nil
	default:
		fmt.Fprintf(stderr, "mcpguard config: unknown subcommand %q\n\n%s", args[0], configUsage)
		return ErrUsage
	}
}
