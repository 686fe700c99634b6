package masking

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Strategy is how a finding is rewritten.
type Strategy string

// Strategies.
const (
	// Redact replaces the value with [REDACTED:TYPE].
	Redact Strategy = "redact"
	// Partial keeps the last four letters or digits and stars the rest.
	Partial Strategy = "partial"
	// Hash replaces the value with tok_ and 16 hex digits of HMAC-SHA256(HashKey, value),
	// so equal values give equal tokens.
	Hash Strategy = "hash"
)

// Validate reports whether s is a known strategy.
func (s Strategy) Validate() error {
	switch s {
	case Redact, Partial, Hash:
		return nil
	}
	return fmt.Errorf("%q is not redact, partial or hash", string(s))
}

// Config selects detectors, strategies and field rules.
type Config struct {
	// Enabled turns masking on.
	Enabled bool `yaml:"enabled"`
	// Strategy applies to every finding without a more specific one.
	Strategy Strategy `yaml:"strategy"`
	// Detectors lists the built-in detectors that run (see [BuiltIn]).
	Detectors []string `yaml:"detectors"`
	// Strategies overrides Strategy per detector or custom detector name.
	Strategies map[string]Strategy `yaml:"strategies"`
	// Custom adds detectors defined by a regular expression.
	Custom []Custom `yaml:"custom"`
	// Fields masks the values at these paths whatever they hold.
	Fields []Field `yaml:"fields"`
	// HashKey is the HMAC key of the hash strategy (at least 16 bytes). HashKeyFile names a
	// file holding it instead; the service reads it at startup and sets HashKey.
	HashKey     string `yaml:"hash_key"`
	HashKeyFile string `yaml:"hash_key_file"`
	// Requests selects what is also masked on its way upstream; responses always are.
	Requests Requests `yaml:"requests"`
}

// Requests selects the parts of client requests that are masked before the upstream
// receives them. Off by default: the upstream sees what the agent sent.
type Requests struct {
	// ToolArguments masks params.arguments of tools/call, with field rule paths relative
	// to the arguments object. Policy still decides on the arguments as sent.
	ToolArguments bool `yaml:"tool_arguments"`
}

// Custom is a user-defined detector.
type Custom struct {
	// Name is the type reported and shown in [REDACTED:NAME]: upper case, digits and _.
	Name string `yaml:"name"`
	// Pattern is an RE2 expression; the whole match is masked.
	Pattern string `yaml:"pattern"`
	// Keywords, when given, gate the pattern: it is only tried within MaxLen bytes of one
	// (case-insensitive). Without keywords the pattern runs over every string.
	Keywords []string `yaml:"keywords"`
	// Validator optionally checks a match: luhn, mod97, entropy.
	Validator string `yaml:"validator"`
	// MaxLen bounds a match; it also sizes the streaming hold-back window.
	MaxLen int `yaml:"max_len"`
}

// Field masks the value at a JSON path relative to the masked document (for MCP messages:
// the result, params or error object). Paths use gjson's dotted syntax: # matches every
// array element, * any key, \. a literal dot; e.g. structuredContent.users.#.ssn.
type Field struct {
	Path string `yaml:"path"`
	// Name is the type shown in the token; default FIELD.
	Name     string   `yaml:"name"`
	Strategy Strategy `yaml:"strategy"`
}

// DefaultConfig returns masking on, every built-in detector, redact.
func DefaultConfig() Config {
	return Config{Enabled: true, Strategy: Redact, Detectors: BuiltIn()}
}

var nameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,39}$`)

// Validate reports every problem at once, each prefixed with its field path.
func (c Config) Validate() error {
	var errs []error
	if err := c.Strategy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("strategy: %w", err))
	}
	known := map[string]bool{}
	for _, n := range BuiltIn() {
		known[n] = true
	}
	for i, d := range c.Detectors {
		if !known[d] {
			errs = append(errs, fmt.Errorf("detectors[%d]: unknown detector %q", i, d))
		}
	}
	usesHash := c.Strategy == Hash
	for i, d := range c.Custom {
		p := fmt.Sprintf("custom[%d]", i)
		if !nameRE.MatchString(d.Name) {
			errs = append(errs, fmt.Errorf("%s.name: must match %s", p, nameRE))
		} else if known[d.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is a built-in detector", p, d.Name))
		}
		known[d.Name] = true
		if d.Pattern == "" {
			errs = append(errs, fmt.Errorf("%s.pattern: required", p))
		} else if re, err := regexp.Compile(d.Pattern); err != nil {
			errs = append(errs, fmt.Errorf("%s.pattern: %w", p, err))
		} else if re.MatchString("") {
			errs = append(errs, fmt.Errorf("%s.pattern: must not match the empty string", p))
		}
		for j, k := range d.Keywords {
			if strings.TrimSpace(k) == "" {
				errs = append(errs, fmt.Errorf("%s.keywords[%d]: must not be empty", p, j))
			}
		}
		if d.Validator != "" {
			if _, ok := validators[d.Validator]; !ok {
				errs = append(errs, fmt.Errorf("%s.validator: %q is not luhn, mod97 or entropy", p, d.Validator))
			}
		}
		if d.MaxLen < 0 || d.MaxLen > maxCustomLen {
			errs = append(errs, fmt.Errorf("%s.max_len: must be between 0 (default %d) and %d", p, defaultCustomLen, maxCustomLen))
		}
	}
	for name, s := range c.Strategies {
		if !known[name] {
			errs = append(errs, fmt.Errorf("strategies.%s: unknown detector", name))
		}
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("strategies.%s: %w", name, err))
		}
		usesHash = usesHash || s == Hash
	}
	for i, f := range c.Fields {
		p := fmt.Sprintf("fields[%d]", i)
		if _, err := parsePath(f.Path); err != nil {
			errs = append(errs, fmt.Errorf("%s.path: %w", p, err))
		}
		if f.Name != "" && !nameRE.MatchString(f.Name) {
			errs = append(errs, fmt.Errorf("%s.name: must match %s", p, nameRE))
		}
		if f.Strategy != "" {
			if err := f.Strategy.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s.strategy: %w", p, err))
			}
		}
		usesHash = usesHash || f.Strategy == Hash
	}
	if c.Requests.ToolArguments && !c.Enabled {
		errs = append(errs, errors.New("requests.tool_arguments: requires enabled: true"))
	}
	switch {
	case c.HashKey != "" && c.HashKeyFile != "":
		errs = append(errs, errors.New("hash_key: set hash_key or hash_key_file, not both"))
	case usesHash && c.HashKey == "" && c.HashKeyFile == "":
		errs = append(errs, errors.New("hash_key: required (or hash_key_file) when a strategy is hash"))
	case c.HashKey != "" && len(c.HashKey) < 16:
		errs = append(errs, errors.New("hash_key: must be at least 16 bytes"))
	}
	return errors.Join(errs...)
}

// BuiltIn returns the names of the built-in detectors.
func BuiltIn() []string {
	out := make([]string, 0, len(builtins))
	for _, b := range builtins {
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}
