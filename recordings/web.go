package recordings

import (
	"fmt"
	"strings"
	"unicode"
)

// WebConfig is the web replay on the admin port (/recordings): search, session timelines
// and verification, read-only. People sign in as on the approvals page.
type WebConfig struct {
	// Enabled serves the replay.
	Enabled bool `yaml:"enabled"`
	// Readers are the groups whose members may read recordings; everyone else is refused.
	Readers []string `yaml:"readers"`
}

func (w WebConfig) validate() []error {
	var errs []error
	if w.Enabled && len(w.Readers) == 0 {
		errs = append(errs, fmt.Errorf("web.readers: required when web.enabled (the groups that may read recordings)"))
	}
	for i, g := range w.Readers {
		if g == "" || strings.TrimSpace(g) != g || strings.ContainsFunc(g, func(r rune) bool { return !unicode.IsPrint(r) }) {
			errs = append(errs, fmt.Errorf("web.readers[%d]: %q must be a group name without surrounding spaces or control characters", i, g))
		}
	}
	return errs
}
