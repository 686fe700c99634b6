package soak

import (
	"errors"
	"fmt"
	"time"
)

// Config is one soak run: the steady load, how it is sampled and what counts as growth.
type Config struct {
	// Duration is how long the steady load runs (warm-up included).
	Duration time.Duration `yaml:"duration"`
	// Rate is calls per second, spread evenly; a tick with no idle worker is counted as missed.
	Rate float64 `yaml:"rate"`
	// Workers are concurrent MCP sessions; each is closed and replaced after Reconnect calls.
	Workers   int `yaml:"workers"`
	Reconnect int `yaml:"reconnect"`
	// Mix weighs the kinds of calls in the repeating sequence.
	Mix Mix `yaml:"mix"`
	// Sample is how often RSS, CPU and goroutines are read; WarmUp is excluded from the growth check.
	Sample time.Duration `yaml:"sample"`
	WarmUp time.Duration `yaml:"warm_up"`
	// Tolerance is how much the last third of the samples may exceed the first.
	Tolerance Tolerance `yaml:"tolerance"`
	// ApproverPoll is how often the approver lists pending requests, as an approvals page
	// left open would. A listing reads only the store's pending index, so it is cheap in
	// itself; at a low rate most of its cost is waking an otherwise idle process.
	ApproverPoll time.Duration `yaml:"approver_poll"`
}

// Mix are the relative weights of each kind of call.
type Mix struct {
	Allowed  int `yaml:"allowed"`
	Denied   int `yaml:"denied"`
	Masked   int `yaml:"masked"`
	Approved int `yaml:"approved"`
}

// Tolerance bounds growth: the median of the last third of the samples (after warm-up) may
// exceed the median of the first third by Relative (a fraction) plus an absolute allowance.
// Medians of thirds rather than a fitted slope: a GC cycle or a burst of held calls moves a
// single sample, not a third of them.
type Tolerance struct {
	GoroutinesRelative float64 `yaml:"goroutines_relative"`
	Goroutines         int     `yaml:"goroutines"`
	RSSRelative        float64 `yaml:"rss_relative"`
	RSSBytes           int64   `yaml:"rss_bytes"`
}

// DefaultConfig is the long run `make soak` starts: ten minutes at 40 calls/s.
func DefaultConfig() Config {
	return Config{
		Duration:     10 * time.Minute,
		Rate:         40,
		Workers:      16,
		Reconnect:    100,
		Mix:          Mix{Allowed: 5, Denied: 2, Masked: 2, Approved: 1},
		Sample:       5 * time.Second,
		WarmUp:       time.Minute,
		ApproverPoll: 200 * time.Millisecond,
		Tolerance: Tolerance{
			GoroutinesRelative: 0.10, Goroutines: 25,
			RSSRelative: 0.20, RSSBytes: 16 << 20,
		},
	}
}

// Validate reports every problem, each prefixed with its field path.
func (c Config) Validate() error {
	var errs []error
	if c.Duration <= 0 {
		errs = append(errs, errors.New("duration: must be positive"))
	}
	if c.Rate <= 0 || c.Rate > 2000 {
		errs = append(errs, errors.New("rate: must be within (0, 2000]"))
	}
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, errors.New("workers: must be within 1..256"))
	}
	if c.Reconnect < 1 {
		errs = append(errs, errors.New("reconnect: must be at least 1"))
	}
	for name, w := range map[string]int{"allowed": c.Mix.Allowed, "denied": c.Mix.Denied, "masked": c.Mix.Masked, "approved": c.Mix.Approved} {
		if w < 0 || w > 1000 {
			errs = append(errs, fmt.Errorf("mix.%s: must be within 0..1000", name))
		}
	}
	if c.Mix.Allowed+c.Mix.Denied+c.Mix.Masked+c.Mix.Approved <= 0 {
		errs = append(errs, errors.New("mix: at least one weight must be positive"))
	}
	if c.Sample <= 0 {
		errs = append(errs, errors.New("sample: must be positive"))
	}
	if c.WarmUp < 0 {
		errs = append(errs, errors.New("warm_up: must not be negative"))
	}
	if c.Sample > 0 && c.Duration-c.WarmUp < 6*c.Sample {
		errs = append(errs, errors.New("warm_up: must leave at least 6 samples of the duration for the growth check"))
	}
	if c.ApproverPoll <= 0 {
		errs = append(errs, errors.New("approver_poll: must be positive"))
	}
	t := c.Tolerance
	if t.GoroutinesRelative < 0 || t.Goroutines < 0 {
		errs = append(errs, errors.New("tolerance.goroutines: must not be negative"))
	}
	if t.RSSRelative < 0 || t.RSSBytes < 0 {
		errs = append(errs, errors.New("tolerance.rss_bytes: must not be negative"))
	}
	return errors.Join(errs...)
}
