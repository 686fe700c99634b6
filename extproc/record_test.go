package extproc_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/recordings"
)

// spoolText returns what the spool holds on disk for open chains, without any flush.
func spoolText(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "chains", "*", "*", "current.jsonl"))
	require.NoError(t, err)
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		b.Write(data)
	}
	return b.String()
}

func TestRecordingStage(t *testing.T) {
	policy := &stage{name: "policy", req: func(_ context.Context, x *extproc.Exchange) (extproc.Verdict, error) {
		tool := x.Body.Messages[0].Tool
		x.AddNote(extproc.Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{"rule": "rule-" + tool}})
		if tool == "drop_db" {
			return extproc.Refuse(-31003, "tool blocked by policy"), nil
		}
		return extproc.Pass, nil
	}}
	masking := &stage{name: "masking", resp: func(_ context.Context, x *extproc.Exchange, r *extproc.Response) (extproc.Verdict, error) {
		x.AddNote(extproc.Note{Stage: "masking", Kind: "summary", Attrs: map[string]any{"aws_key": 1}})
		return extproc.Verdict{Action: extproc.Replace, Message: []byte(strings.Replace(string(r.Msg.Raw), "AKIAIOSFODNN7EXAMPLE", "[MASKED]", 1))}, nil
	}}
	cases := []struct {
		name     string
		tool     string
		response string
		want     []string // substrings that must be durable in the spool when the answer arrives
		never    string
	}{
		{
			"allowed and masked", "query", result(1, "key AKIAIOSFODNN7EXAMPLE"),
			[]string{`"kind":"request"`, `"tool":"query"`, `"rule":"rule-query"`, `"kind":"response"`, `[MASKED]`, `"aws_key":1`, `"request_id":"req-1"`},
			"AKIAIOSFODNN7EXAMPLE",
		},
		{
			"denied", "drop_db", "",
			[]string{`"kind":"request"`, `"tool":"drop_db"`, `"rule":"rule-drop_db"`, `"kind":"denial"`, `tool blocked by policy`},
			"",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := recordings.DefaultConfig()
			cfg.ReplicaID = "r1"
			cfg.Spool.Dir = t.TempDir()
			sink, err := recordings.NewDir(t.TempDir())
			require.NoError(t, err)
			_, key, err := ed25519.GenerateKey(rand.Reader)
			require.NoError(t, err)
			rec, err := recordings.Open(cfg, sink, key, nil, prometheus.NewRegistry())
			require.NoError(t, err)
			h := start(t, extproc.DefaultConfig(), policy, masking, extproc.NewRecording(rec, extproc.RecordingOptions{}))
			e := h.open(t, t.Context())
			e.post(toolsCall(1, c.tool), "mcp-protocol-version", "2025-06-18", "mcp-session-id", "sess-rec")
			if c.response == "" {
				_, rpc := immediate(t, e.recv())
				require.Equal(t, -31003, rpc.Error.Code)
			} else {
				e.passed()
				e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "70")
				require.NotNil(t, e.recv().GetResponseHeaders())
				e.responseBody([]byte(c.response), true)
				require.NotNil(t, e.recv().GetResponseBody())
			}
			got := spoolText(t, cfg.Spool.Dir)
			for _, w := range c.want {
				require.Contains(t, got, w)
			}
			if c.never != "" {
				require.NotContains(t, got, c.never)
			}

			require.NoError(t, rec.Close(t.Context()))
			a := recordings.NewArchive(sink, "")
			s, err := a.Find(t.Context(), "sess-rec")
			require.NoError(t, err)
			v, err := a.Verify(t.Context(), s, key.Public().(ed25519.PublicKey))
			require.NoError(t, err)
			require.True(t, v.OK(), v.String())
			require.Equal(t, "svc-reports", s.Chains[0].Manifest.Identity.Subject)
		})
	}
}
