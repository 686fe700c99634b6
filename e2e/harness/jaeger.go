package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNoJaeger reports that no jaeger binary is installed: `make deps` builds one into bin/.
var ErrNoJaeger = errors.New("jaeger not found in bin/ or on PATH: run make deps (scripts/test-deps.sh builds it from tools/jaeger)")

// JaegerBin finds the jaeger binary: bin/jaeger of the module at root, else PATH.
func JaegerBin(root string) (string, error) {
	if p := filepath.Join(root, "bin", "jaeger"); isExec(p) {
		return p, nil
	}
	if p, err := exec.LookPath("jaeger"); err == nil {
		return p, nil
	}
	return "", ErrNoJaeger
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Jaeger is a running Jaeger (v2, in-memory storage) with an OTLP/gRPC receiver and the
// query API on loopback ports of its own.
type Jaeger struct {
	// OTLP is the OTLP/gRPC receiver as a URL (http://127.0.0.1:PORT).
	OTLP string
	// Query is the base URL of the query HTTP API and UI.
	Query string

	cmd  *exec.Cmd
	logs *Logs
	done chan struct{}
}

// jaegerConfig is Jaeger's all-in-one pipeline with every port chosen here and its own
// telemetry off.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:%d
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// StartJaeger starts bin (from [JaegerBin]) with its config in dir and returns once its
// health check answers.
func StartJaeger(ctx context.Context, bin, dir string) (*Jaeger, error) {
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	health, query, queryGRPC, otlp := ports[0], ports[1], ports[2], ports[3]
	cfg := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, health, query, queryGRPC, otlp), 0o600); err != nil {
		return nil, fmt.Errorf("write jaeger config: %w", err)
	}
	j := &Jaeger{
		OTLP:  fmt.Sprintf("http://127.0.0.1:%d", otlp),
		Query: fmt.Sprintf("http://127.0.0.1:%d", query),
		logs:  newLogs(), done: make(chan struct{}),
	}
	j.cmd = exec.Command(bin, "--config", cfg)
	j.cmd.Stdout, j.cmd.Stderr = j.logs, j.logs
	if err := j.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start jaeger: %w", err)
	}
	go func() {
		_ = j.cmd.Wait()
		close(j.done)
	}()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d/status", health)
	for {
		if code, _, err := get(ctx, url); err == nil && code == http.StatusOK {
			if code, _, err := get(ctx, j.Query+"/api/services"); err == nil && code == http.StatusOK {
				return j, nil
			}
		}
		select {
		case <-j.done:
			return nil, fmt.Errorf("jaeger exited before ready:\n%s", j.logs)
		case <-ctx.Done():
			return nil, errors.Join(fmt.Errorf("wait for jaeger: %w\n%s", ctx.Err(), j.logs), j.Stop(context.WithoutCancel(ctx)))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Logs returns what Jaeger printed.
func (j *Jaeger) Logs() string { return j.logs.String() }

// Stop ends Jaeger (SIGTERM, then SIGKILL after ctx) and waits.
func (j *Jaeger) Stop(ctx context.Context) error {
	_ = j.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		_ = j.cmd.Process.Kill()
		<-j.done
		return fmt.Errorf("jaeger did not stop: %w", ctx.Err())
	}
}

// JaegerSpan is a span as Jaeger's query API returns it.
type JaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`
}

// Parent is the span id of the CHILD_OF reference, "" for a root.
func (s JaegerSpan) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Tag returns the value of tag k as a string, "" when absent.
func (s JaegerSpan) Tag(k string) string {
	for _, t := range s.Tags {
		if t.Key == k {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// Trace fetches the spans of one trace (32 hex digits); none (and no error) while Jaeger
// has not stored it yet.
func (j *Jaeger) Trace(ctx context.Context, traceID string) ([]JaegerSpan, error) {
	code, body, err := get(ctx, j.Query+"/api/traces/"+traceID)
	if err != nil {
		return nil, err
	}
	if code == http.StatusNotFound {
		return nil, nil
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("jaeger trace %s: status %d: %s", traceID, code, body)
	}
	var out struct {
		Data []struct {
			Spans []JaegerSpan `json:"spans"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode jaeger trace: %w", err)
	}
	var spans []JaegerSpan
	for _, d := range out.Data {
		spans = append(spans, d.Spans...)
	}
	return spans, nil
}

func get(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("request %s: %w", url, err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", url, err)
	}
	return resp.StatusCode, body, nil
}

// freePorts reserves n loopback ports and releases them for the child to bind.
func freePorts(n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
