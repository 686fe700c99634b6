package app

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mcpguard/mcpguard/internal/config"
)

func configCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, "Usage: mcpguard config validate FILE | mcpguard config default\n")
		return ErrUsage
	}
	switch args[0] {
	case "default":
		_, err := stdout.Write(config.DefaultYAML())
		return err
	case "validate":
		if len(args) != 2 || strings.HasPrefix(args[1], "-") {
			fmt.Fprint(stderr, "Usage: mcpguard config validate FILE\n")
			return ErrUsage
		}
		if _, err := config.Load(args[1]); err != nil {
			fmt.Fprintf(stderr, "%s: invalid\n", args[1])
			for line := range strings.SplitSeq(err.Error(), "\n") {
				fmt.Fprintf(stderr, "  %s\n", line)
			}
			return errors.New("config has problems")
		}
		fmt.Fprintf(stdout, "%s: ok\n", args[1])
		return nil
	default:
		fmt.Fprintf(stderr, "mcpguard config: unknown subcommand %q\n", args[0])
		return ErrUsage
	}
}
