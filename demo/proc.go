package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process whose output goes to DIR/NAME.log. Its start line (the first JSON
// log line whose msg is the marker) tells where it listens.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	log     *os.File
	watch   *watcher
	done    chan struct{}
	err     error // exit status, valid once done is closed
}

// start runs bin with args; stop must be called whatever happens next.
func start(dir, name, marker, bin string, args ...string) (*proc, error) {
	path := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600) //nolint:gosec // a log file in the demo's own temporary directory
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	p := &proc{name: name, logPath: path, log: f, watch: newWatcher(f, marker), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...) //nolint:gosec // the binaries `make demo` built, with arguments the demo composed
	p.cmd.Stdout, p.cmd.Stderr = p.watch, p.watch
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// ready waits for the start line and returns its fields.
func (p *proc) ready(ctx context.Context, limit time.Duration) (map[string]any, error) {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case line := <-p.watch.found:
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("parse %s start line: %w", p.name, err)
		}
		return m, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before it started (log: %s): %w", p.name, p.logPath, p.exitErr())
	case <-t.C:
		return nil, fmt.Errorf("%s did not start within %v (log: %s)", p.name, limit, p.logPath)
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for %s: %w", p.name, ctx.Err())
	}
}

// stop sends SIGTERM and waits up to limit, then kills. A process that had exited already, or
// exits cleanly or by the signal, is not an error.
func (p *proc) stop(limit time.Duration) error {
	defer p.log.Close()
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("stop %s: killed after %v", p.name, limit)
	}
}

// exitErr is why the process ended; an exit without an error is still unexpected here.
func (p *proc) exitErr() error {
	if p.err != nil {
		return p.err
	}
	return errors.New("exit status 0")
}

// tail is the end of the process log, for a failure report.
func (p *proc) tail(lines int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// watcher copies output to w and hands over the first complete line containing the marker.
type watcher struct {
	mu      sync.Mutex
	w       io.Writer
	marker  []byte
	partial []byte
	seen    bool
	found   chan []byte
}

func newWatcher(w io.Writer, msg string) *watcher {
	return &watcher{w: w, marker: []byte(`"msg":"` + msg + `"`), found: make(chan []byte, 1)}
}

// Write implements io.Writer.
func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.seen {
		w.partial = append(w.partial, p...)
		for {
			i := bytes.IndexByte(w.partial, '\n')
			if i < 0 {
				break
			}
			line := w.partial[:i]
			if bytes.Contains(line, w.marker) {
				w.seen = true
				w.found <- bytes.Clone(line)
				w.partial = nil
				break
			}
			w.partial = w.partial[i+1:]
		}
		if len(w.partial) > 1<<20 { // a start line is short; never hold more than this
			w.partial = nil
		}
	}
	return w.w.Write(p)
}
