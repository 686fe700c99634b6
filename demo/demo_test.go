package demo_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/demo"
	"github.com/mcpguard/mcpguard/demo/server"
)

// wait bounds every wait of these tests; it only keeps a broken demo from hanging the suite.
const wait = 60 * time.Second

var built struct {
	once      sync.Once
	bin, root string
	err       error
}

// binaries builds mcpguard, the emulator, the demo server and the driver once, as `make demo` does.
func binaries(t *testing.T) (bin, root string) {
	t.Helper()
	built.once.Do(func() {
		built.root, built.err = filepath.Abs("..")
		if built.err != nil {
			return
		}
		built.bin, built.err = os.MkdirTemp("", "mcpguard-demo-bin-")
		if built.err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", built.bin+string(filepath.Separator),
			"./cmd/mcpguard", "./e2e/cmd/envoy-emulator", "./demo/cmd/demo-server", "./demo/cmd/demo")
		cmd.Dir = built.root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("build: %w\n%s", err, out)
		}
	})
	require.NoError(t, built.err)
	return built.bin, built.root
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.bin != "" {
		os.RemoveAll(built.bin)
	}
	os.Exit(code)
}

// run is one demo process; its output is collected line by line.
type run struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder
	stderr strings.Builder
	lines  chan string // every stdout line, for the test to react to
	done   chan error
}

func startDemo(t *testing.T, env []string, args ...string) *run {
	t.Helper()
	bin, root := binaries(t)
	r := &run{lines: make(chan string, 1024), done: make(chan error, 1)}
	r.cmd = exec.Command(filepath.Join(bin, "demo"), append([]string{"-bin", bin, "-envoy", filepath.Join(root, "envoy", "envoy.yaml")}, args...)...)
	r.cmd.Env = append(os.Environ(), env...)
	r.cmd.Stderr = &syncWriter{mu: &r.mu, w: &r.stderr}
	stdout, err := r.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, r.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.mu.Lock()
			r.out.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			select {
			case r.lines <- sc.Text():
			default: // nobody is looking for more lines
			}
		}
		close(r.lines)
		r.done <- r.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill() // a no-op once it exited
		if t.Failed() {
			t.Logf("demo output:\n%s\nstderr:\n%s", r.output(), r.errors())
		}
	})
	return r
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (r *run) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

func (r *run) errors() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

// await returns the first line from now on that contains s.
func (r *run) await(t *testing.T, s string) string {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-r.lines:
			require.True(t, ok, "the demo ended before printing %q", s)
			if strings.Contains(l, s) {
				return l
			}
		case <-timer.C:
			require.FailNow(t, "timed out waiting for a line", s)
		}
	}
}

// exit waits for the demo to end and returns its exit error.
func (r *run) exit(t *testing.T) error {
	t.Helper()
	go func() { // keep the reader from blocking on lines nobody awaits
		for range r.lines {
		}
	}()
	select {
	case err := <-r.done:
		return err
	case <-time.After(wait):
		require.FailNow(t, "the demo did not end")
		return nil
	}
}

// second runs the approval command the demo printed, as a person would in another terminal.
func second(t *testing.T, line, verb string, extra ...string) string {
	t.Helper()
	f := strings.Fields(line)
	require.GreaterOrEqual(t, len(f), 8, line)
	require.Equal(t, "approve", f[2], line)
	f[2] = verb
	if verb == "deny" {
		f = append(f[:len(f)-2], extra...) // replace --reason release-42
	}
	out, err := exec.CommandContext(t.Context(), f[0], f[1:]...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

var approveLine = regexp.MustCompile(`^\s+/\S+/mcpguard approvals approve [A-Z0-9]+ --url http://127\.0\.0\.1:\d+ --token-file /\S+alice\.token --reason release-42$`)

// steps splits the narration at its step headers.
func steps(t *testing.T, out string) map[string]string {
	t.Helper()
	parts := regexp.MustCompile(`━━ Step \d/5: (.+) ━━\n`).FindAllStringSubmatchIndex(out, -1)
	require.Len(t, parts, 5, out)
	m := map[string]string{}
	for i, p := range parts {
		end := len(out)
		if i+1 < len(parts) {
			end = parts[i+1][0]
		}
		m[out[p[2]:p[3]]] = out[p[1]:end]
	}
	return m
}

// checkSteps asserts what every step printed; approval is what step 4 must show.
func checkSteps(t *testing.T, out string, approval []string) {
	t.Helper()
	session := regexp.MustCompile(`MCP session ([A-Z0-9]+)\.`).FindStringSubmatch(out)
	require.NotNil(t, session, "the session id is announced")
	st := steps(t, out)
	cases := []struct {
		step    string
		want    []string
		notWant []string
	}{
		{"An allowed call", []string{"tools/call query", "✓ allowed", server.Customers}, nil},
		{"A blocked DROP DATABASE", []string{
			`{"sql":"DROP DATABASE billing"}`,
			`✗ blocked: JSON-RPC error -31003 "Destructive SQL is not allowed." (rule sql-destructive: DROP DATABASE is destructive)`,
		}, nil},
		{"A masked secret", []string{
			"postgres://billing:[REDACTED:CONN_PASSWORD]@db.internal", "AWS_ACCESS_KEY_ID=[REDACTED:AWS_ACCESS_KEY]",
			"AWS_SECRET_ACCESS_KEY=[REDACTED:AWS_SECRET_KEY]", "LOG_LEVEL=info",
		}, nil},
		{"An approval", append([]string{"⏸ held: approval request", "rule deploy-needs-release-manager"}, approval...), nil},
		{"The recording, replayed and verified", []string{
			"$ mcpguard recordings play " + session[1], "SESSION START billing-agent", "tools/call query",
			"✗ DENIED", "DROP DATABASE billing", "sql-destructive", `"AWS_ACCESS_KEY":1`, "[REDACTED:AWS_SECRET_KEY]",
			"deploy-needs-release-manager", "SESSION END",
			"$ mcpguard recordings verify " + session[1], "OK   " + session[1], "signatures valid",
		}, []string{"Tr0ub4dor-horse-9", "AKIA4HXQ2ZJ7PLM3KDRT"}},
	}
	for _, c := range cases {
		t.Run(c.step, func(t *testing.T) {
			body, ok := st[c.step]
			require.True(t, ok, "step %q printed", c.step)
			for _, w := range c.want {
				require.Contains(t, body, w)
			}
			for _, w := range c.notWant {
				require.NotContains(t, body, w)
			}
		})
	}
	// The secrets appear once, where the demo shows what the server sent; never in what the
	// agent received or in the recording.
	require.Equal(t, 1, strings.Count(out, "Tr0ub4dor-horse-9"))
	require.Contains(t, out, "✔ Demo complete.")
}

func TestDemo(t *testing.T) {
	cases := []struct {
		name  string
		env   []string
		args  []string
		act   func(t *testing.T, r *run) // what the person in the second terminal does
		shows []string
	}{
		{
			name:  "DEMO_AUTO_APPROVE=1 approves by itself",
			env:   []string{"DEMO_AUTO_APPROVE=1"},
			shows: []string{"DEMO_AUTO_APPROVE=1: running that command now.", "approved by alice", `✓ approved: the call went upstream and returned "deployed billing 1.4.2 to production"`},
		},
		{
			name: "approved from a second terminal while held",
			env:  []string{"DEMO_AUTO_APPROVE="},
			act: func(t *testing.T, r *run) {
				line := r.await(t, "approvals approve")
				require.Regexp(t, approveLine, line)
				r.await(t, "Waiting for the decision")
				require.Contains(t, second(t, line, "approve"), "approved by alice")
			},
			shows: []string{`✓ approved: the call went upstream and returned "deployed billing 1.4.2 to production"`},
		},
		{
			name: "approved after the hold ended: deferred, retried, passes",
			env:  []string{"DEMO_AUTO_APPROVE="},
			args: []string{"-hold", "1s"},
			act: func(t *testing.T, r *run) {
				line := r.await(t, "approvals approve")
				r.await(t, "the hold ended before a decision")
				require.Contains(t, second(t, line, "approve"), "approved by alice")
			},
			shows: []string{"(up to 1s)", "JSON-RPC error -31041 (deferred)", `✓ approved: the call went upstream and returned "deployed billing 1.4.2 to production"`},
		},
		{
			name: "denied from a second terminal",
			env:  []string{"DEMO_AUTO_APPROVE="},
			act: func(t *testing.T, r *run) {
				line := r.await(t, "approvals approve")
				r.await(t, "Waiting for the decision")
				require.Contains(t, second(t, line, "deny", "--reason", "not today"), "denied by alice")
			},
			shows: []string{"✗ not approved: JSON-RPC error -31042", "not today"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := startDemo(t, c.env, c.args...)
			if c.act != nil {
				c.act(t, r)
			}
			require.NoError(t, r.exit(t))
			checkSteps(t, r.output(), c.shows)
		})
	}
}

// Ctrl-C while the demo waits for an approver stops every process and removes its directory.
func TestDemoInterrupted(t *testing.T) {
	r := startDemo(t, []string{"DEMO_AUTO_APPROVE="})
	dir := strings.TrimSuffix(strings.TrimPrefix(r.await(t, "Starting the demo in "), "Starting the demo in "), " (logs: *.log there)")
	require.DirExists(t, dir)
	topo := r.await(t, "agent ──► Envoy")
	gateway := regexp.MustCompile(`emulator, (127\.0\.0\.1:\d+)`).FindStringSubmatch(topo)
	require.NotNil(t, gateway, topo)
	line := r.await(t, "approvals approve")
	admin := regexp.MustCompile(`--url http://(\S+)`).FindStringSubmatch(line)
	require.NotNil(t, admin, line)
	r.await(t, "Waiting for the decision")
	for _, addr := range []string{gateway[1], admin[1]} {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err, "%s serves while the demo runs", addr)
		c.Close()
	}

	require.NoError(t, r.cmd.Process.Signal(syscall.SIGINT))
	err := r.exit(t)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the demo reports the interruption")
	require.Contains(t, r.errors(), "context canceled")
	require.NotContains(t, r.errors(), "last lines of", "an interruption is not a failure to diagnose")
	for _, addr := range []string{gateway[1], admin[1]} {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			c.Close()
		}
		require.Error(t, err, "%s is closed after the demo", addr)
	}
	require.NoDirExists(t, dir)
}

// The demo's config is valid and its policy decides as the narration says.
func TestDemoConfig(t *testing.T) {
	bin, root := binaries(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		// The demo runs mcpguard next to its policy.yaml, which the config names relative to the
		// working directory; validate opens it as serve would, so it runs there too.
		{"config validates", []string{"config", "validate", "mcpguard.yaml"}, "mcpguard.yaml: ok"},
		{"policy cases pass", []string{"policy", "test", "policy.yaml", "policy_cases.yaml"}, "6 cases, 0 failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, demo.GuardBin), c.args...)
			cmd.Dir = filepath.Join(root, "demo")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Contains(t, string(out), c.want)
		})
	}
}
