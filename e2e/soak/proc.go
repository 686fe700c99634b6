package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/PID/stat: USER_HZ, fixed at 100 by the
// Linux ABI for /proc whatever the kernel's tick rate.
const userHZ = 100

// Proc reads the resource use of one process from /proc.
type Proc struct{ PID int }

// FindProc returns the one running `mcpguard serve` whose command line names config.
// The harness does not expose the child's PID, but its config path is unique per run.
func FindProc(config string) (Proc, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return Proc{}, fmt.Errorf("list /proc: %w", err)
	}
	var found []int
	for _, d := range dirs {
		raw, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue // gone, or not ours to read
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if hasServe(args, config) {
			pid, err := strconv.Atoi(filepath.Base(d))
			if err == nil {
				found = append(found, pid)
			}
		}
	}
	if len(found) != 1 {
		return Proc{}, fmt.Errorf("find mcpguard serving %s: %d processes match", config, len(found))
	}
	return Proc{PID: found[0]}, nil
}

func hasServe(args []string, config string) bool {
	serve, cfg := false, false
	for i, a := range args {
		serve = serve || a == "serve"
		cfg = cfg || (a == "--config" && i+1 < len(args) && args[i+1] == config)
	}
	return serve && cfg
}

// Mem is the memory of a process as /proc/PID/status reports it.
type Mem struct {
	RSS     int64 // VmRSS, bytes
	RSSAnon int64 // RssAnon, bytes (heap and stacks; excludes mapped files)
}

// Mem reads /proc/PID/status.
func (p Proc) Mem() (Mem, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID))
	if err != nil {
		return Mem{}, fmt.Errorf("read status: %w", err)
	}
	return parseStatus(raw)
}

// CPU reads the user plus system CPU time of the process from /proc/PID/stat.
func (p Proc) CPU() (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return 0, fmt.Errorf("read stat: %w", err)
	}
	return parseStat(raw)
}

// parseStatus extracts VmRSS and RssAnon ("VmRSS:\t  123 kB"); VmRSS is required.
func parseStatus(raw []byte) (Mem, error) {
	var m Mem
	var rss bool
	for line := range bytes.Lines(raw) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(name) {
		case "VmRSS":
			dst, rss = &m.RSS, true
		case "RssAnon":
			dst = &m.RSSAnon
		default:
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return Mem{}, fmt.Errorf("parse status %s: want \"<n> kB\"", name)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return Mem{}, fmt.Errorf("parse status %s: bad size", name)
		}
		*dst = kb << 10
	}
	if !rss {
		return Mem{}, errors.New("parse status: no VmRSS")
	}
	return m, nil
}

// parseStat returns utime+stime of a /proc/PID/stat line. The command name is in
// parentheses and may itself hold spaces and parentheses, so fields count from the last ')'.
func parseStat(raw []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("parse stat: no command name")
	}
	f := strings.Fields(string(raw[i+1:]))
	// state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
	if len(f) < 13 {
		return 0, errors.New("parse stat: too few fields")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		// 2^38 ticks is decades of CPU time and keeps the sum in time.Duration's range.
		if err != nil || n < 0 || n > 1<<38 {
			return 0, errors.New("parse stat: bad cpu time")
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / userHZ), nil
}

// scrape fetches the Prometheus text exposition of url.
func scrape(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %d", url, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return b, nil
}

// gauge finds the unlabelled sample `name value` in a Prometheus text exposition.
func gauge(text []byte, name string) (float64, error) {
	for line := range bytes.Lines(text) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		n, rest, ok := bytes.Cut(line, []byte(" "))
		if !ok || string(n) != name {
			continue
		}
		f := strings.Fields(string(rest)) // value [timestamp]
		if len(f) < 1 || len(f) > 2 {
			return 0, fmt.Errorf("parse %s: bad sample", name)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", name, err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("parse metrics: %s not found", name)
}
