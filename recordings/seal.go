package recordings

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// maxSealed bounds an opened sealed blob: a recorded request is at most a request body
// (extproc's max_request_bytes), far below this.
const maxSealed = 16 << 20

// ErrNotSealedTo reports sealed data that none of the given identities can open: it was
// sealed to other recipients.
var ErrNotSealedTo = errors.New("not sealed to this identity")

// ArgumentsConfig is how the arguments of recorded requests are kept.
type ArgumentsConfig struct {
	// Mask records request arguments masked with the masking detectors (the upstream
	// still receives them as policy allowed). On by default.
	Mask bool `yaml:"mask"`
	// SealTo lists age recipients (age1… X25519, or age1pq1… hybrid post-quantum; not
	// mixed). With it, a request whose recorded form was masked also keeps the request as
	// sent, encrypted to these recipients: only the holders of the matching private keys
	// can read it (mcpguard recordings unseal), not the gateway or the storage operator.
	SealTo []string `yaml:"seal_to"`
}

func (a ArgumentsConfig) validate() []error {
	var errs []error
	if len(a.SealTo) > 0 && !a.Mask {
		errs = append(errs, errors.New("arguments.seal_to: requires arguments.mask (unmasked arguments are recorded in the clear)"))
	}
	pq := 0
	for i, s := range a.SealTo {
		r, err := parseRecipient(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("arguments.seal_to[%d]: %w", i, err))
			continue
		}
		if _, ok := r.(*age.HybridRecipient); ok {
			pq++
		}
	}
	if pq > 0 && pq != len(a.SealTo) {
		errs = append(errs, errors.New("arguments.seal_to: age1pq1 and age1 recipients cannot be mixed (age refuses it)"))
	}
	return errs
}

// parseRecipient reads one age recipient; the error never echoes the value (a private key
// pasted by mistake must not reach a log).
func parseRecipient(s string) (age.Recipient, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "age1pq1"):
		r, err := age.ParseHybridRecipient(s)
		if err != nil {
			return nil, errors.New("not a valid age1pq1 recipient")
		}
		return r, nil
	case strings.HasPrefix(s, "age1"):
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return nil, errors.New("not a valid age1 X25519 recipient")
		}
		return r, nil
	}
	return nil, errors.New("not an age recipient (age1… public key)")
}

// Sealer encrypts what the recording must keep away from its readers, to age recipients.
// It is safe for concurrent use.
type Sealer struct {
	to []age.Recipient
}

// NewSealer returns a sealer to the given recipients; nil (and no error) when there are none.
func NewSealer(recipients []string) (*Sealer, error) {
	if len(recipients) == 0 {
		return nil, nil
	}
	s := &Sealer{}
	for i, r := range recipients {
		p, err := parseRecipient(r)
		if err != nil {
			return nil, fmt.Errorf("seal_to[%d]: %w", i, err)
		}
		s.to = append(s.to, p)
	}
	return s, nil
}

// Seal encrypts plain to the sealer's recipients and returns the age file, base64.
func (s *Sealer) Seal(plain []byte) (string, error) {
	var buf bytes.Buffer
	buf.Grow(len(plain) + 256*len(s.to))
	w, err := age.Encrypt(&buf, s.to...)
	if err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// ParseIdentities reads an age identity file (AGE-SECRET-KEY-1… lines, as age-keygen
// writes them). Errors never include key material.
func ParseIdentities(r io.Reader) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(r)
	if err != nil {
		return nil, fmt.Errorf("read age identities: %w", err)
	}
	return ids, nil
}

// Unseal opens what [Sealer.Seal] produced. It returns an error wrapping [ErrNotSealedTo]
// when none of ids is a recipient, and another error when the data is damaged.
func Unseal(sealed string, ids ...age.Identity) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return nil, fmt.Errorf("unseal: not base64: %w", err)
	}
	r, err := age.Decrypt(bytes.NewReader(raw), ids...)
	if nm := (*age.NoIdentityMatchError)(nil); errors.As(err, &nm) {
		return nil, fmt.Errorf("unseal: %w", ErrNotSealedTo)
	}
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(r, maxSealed+1))
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	if len(out) > maxSealed {
		return nil, errors.New("unseal: sealed data too large")
	}
	return out, nil
}
