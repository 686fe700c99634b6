package recordings

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxAgo bounds a relative time: nothing is recorded a century back.
const maxAgo = 100 * 365 * 24 * time.Hour

// ParseTime reads a --since/--until bound: a duration back from now ("7d", "36h",
// "1d12h", "90m", "45s"), a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 time.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if len(s) == 0 || len(s) > 64 {
		return time.Time{}, errors.New("want a duration (7d, 36h), a date (YYYY-MM-DD) or an RFC 3339 time")
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	d, err := parseAgo(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a duration (7d, 36h), a date (YYYY-MM-DD) or an RFC 3339 time", s)
	}
	return now.Add(-d).UTC(), nil
}

// parseAgo reads a positive duration of whole numbers with units d, h, m, s.
func parseAgo(s string) (time.Duration, error) {
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || i > 9 {
			return 0, errors.New("not a duration")
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, err
		}
		var unit time.Duration
		switch s[i] {
		case 'd':
			unit = 24 * time.Hour
		case 'h':
			unit = time.Hour
		case 'm':
			unit = time.Minute
		case 's':
			unit = time.Second
		default:
			return 0, errors.New("not a duration")
		}
		if time.Duration(n) > maxAgo/unit {
			return 0, errors.New("duration too long")
		}
		total += time.Duration(n) * unit
		if total > maxAgo {
			return 0, errors.New("duration too long")
		}
		s = s[i+1:]
	}
	if total <= 0 {
		return 0, errors.New("duration must be positive")
	}
	return total, nil
}

// dayOf is the UTC day of t, as a key date.
func dayOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// splitDay turns "YYYY-MM-DD" into its key form "YYYY/MM/DD".
func splitDay(d string) string { return strings.ReplaceAll(d, "-", "/") }
