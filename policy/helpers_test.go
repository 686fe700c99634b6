package policy_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

// corpusCase is one entry of testdata/corpus.yaml.
type corpusCase struct {
	Name    string         `yaml:"name"`
	Dialect policy.Dialect `yaml:"dialect"`
	Shell   bool           `yaml:"shell"`
	Input   string         `yaml:"input"`
	Block   bool           `yaml:"block"`
}

func loadCorpus(tb testing.TB) []corpusCase {
	tb.Helper()
	data, err := os.ReadFile("testdata/corpus.yaml")
	require.NoError(tb, err)
	var cs []corpusCase
	require.NoError(tb, yaml.Unmarshal(data, &cs))
	require.NotEmpty(tb, cs)
	return cs
}

// corpusPolicy is the embedded default policy plus a MySQL tool, so both dialects go
// through the rules that ship.
func corpusPolicy(tb testing.TB) *policy.Set {
	tb.Helper()
	set, err := policy.Compile(corpusPolicySource())
	require.NoError(tb, err)
	return set
}

func corpusPolicySource() []byte {
	return []byte(strings.Replace(string(policy.DefaultPolicy()), "tools:\n",
		"tools:\n  execute_mysql:\n    sql: {argument: query, dialect: mysql}\n", 1))
}

// call builds a tools/call message as the mcp parser would.
func call(tb testing.TB, tool string, args map[string]any) *mcp.Message {
	tb.Helper()
	if args == nil {
		args = map[string]any{}
	}
	a, err := json.Marshal(args)
	require.NoError(tb, err)
	p, err := json.Marshal(map[string]any{"name": tool, "arguments": json.RawMessage(a)})
	require.NoError(tb, err)
	body, err := mcp.Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + string(p) + `}`))
	require.NoError(tb, err)
	return &body.Messages[0]
}

// corpusInput is the tools/call a corpus case stands for.
func corpusInput(tb testing.TB, c corpusCase) policy.Input {
	tb.Helper()
	var m *mcp.Message
	switch {
	case c.Shell:
		m = call(tb, "run_command", map[string]any{"command": c.Input})
	case c.Dialect == policy.MySQL:
		m = call(tb, "execute_mysql", map[string]any{"query": c.Input})
	default:
		m = call(tb, "execute_sql", map[string]any{"query": c.Input})
	}
	return policy.Input{Identity: policy.Identity{Subject: "agent-1"}, Msg: m}
}
