package app

import (
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/age"

	"github.com/mcpguard/mcpguard/recordings"
)

// maxIdentityFile bounds the age identity file unseal reads.
const maxIdentityFile = 1 << 20

// loadIdentities reads the age identity file that opens sealed arguments.
func loadIdentities(path string) ([]age.Identity, error) {
	if path == "" {
		return nil, errors.New("unseal: --identity KEYFILE (an age identity file) is required")
	}
	f, err := os.Open(path) //nolint:gosec // G304: the operator names the key file
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	defer f.Close()
	ids, err := recordings.ParseIdentities(io.LimitReader(f, maxIdentityFile))
	if err != nil {
		return nil, fmt.Errorf("unseal %s: %w", path, err)
	}
	return ids, nil
}

// unseal prints the requests of a session as the client sent them, for each request whose
// recorded arguments were masked and sealed. Every sealed request that does not open is
// named on stderr and makes the command fail.
func unseal(w, stderr io.Writer, session string, evs []recordings.Event, ids []age.Identity, keyFile string) error {
	n, failed, wrongKey := 0, 0, 0
	for _, e := range evs {
		if e.Sealed == "" {
			continue
		}
		n++
		what := fmt.Sprintf("%s %s %s request %s (seq %d)", e.Time.UTC().Format("2006-01-02 15:04:05.000"), orDash(e.Method), e.Tool, orDash(e.RequestID), e.Seq)
		plain, err := recordings.Unseal(e.Sealed, ids...)
		if err != nil {
			failed++
			if errors.Is(err, recordings.ErrNotSealedTo) {
				wrongKey++
			}
			fmt.Fprintf(stderr, "%s: %v\n", what, err)
			continue
		}
		if _, err := fmt.Fprintf(w, "%s\n%s\n", what, plain); err != nil {
			return err
		}
	}
	switch {
	case n == 0:
		fmt.Fprintf(stderr, "session %s holds no sealed arguments\n", session)
		return nil
	case wrongKey == failed && failed > 0:
		return fmt.Errorf("%d of %d sealed request(s) not sealed to the identity in %s (recordings.arguments.seal_to names other keys)", failed, n, keyFile)
	case failed > 0:
		return fmt.Errorf("%d of %d sealed request(s) could not be opened", failed, n)
	}
	return nil
}
