package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpguard/mcpguard/mcp"
)

// Tool is one entry of a tools/list result, as far as policy reads it.
type Tool struct {
	Name string
	// Raw is the tool's JSON object as the server sent it.
	Raw json.RawMessage
}

// fingerprinted are the members of a tool definition that change what an agent is told
// or what the tool accepts; a change in any of them is a rug pull candidate.
var fingerprinted = []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"}

// Fingerprint hashes a tool definition's name, description, schemas and annotations in a
// canonical form (key order and whitespace do not matter). Members whose names differ from
// those only by letter case or Unicode folding ("Description") are hashed too: a client that
// decodes case-insensitively may read them instead, so changing them is a change.
func Fingerprint(raw json.RawMessage) (string, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("decode tool: %w", err)
	}
	var variants []string
	for k := range m {
		if !slices.Contains(fingerprinted, k) && slices.ContainsFunc(fingerprinted, func(f string) bool { return strings.EqualFold(f, k) }) {
			variants = append(variants, k)
		}
	}
	slices.Sort(variants)
	h := sha256.New()
	// The exact members first and in a fixed order, so that definitions without variants
	// keep the fingerprint they had before variants were hashed.
	for _, k := range append(slices.Clone(fingerprinted), variants...) {
		b, err := json.Marshal(m[k]) // map keys are marshalled sorted: canonical
		if err != nil {
			return "", fmt.Errorf("encode tool %s: %w", k, err)
		}
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(bytes.TrimSpace(b))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FoldError reports a tools/call whose arguments carry a member whose name differs from an
// argument named in the policy's tools: section only by letter case or Unicode folding
// ("Query" for query; ſ U+017F folds to s, K U+212A to k). Its text names the argument, never
// the value, so it can be shown to the agent.
type FoldError struct {
	Tool string
	// Argument is the configured path up to the folded member: "query", "options" or "options.sql".
	Argument string
}

func (e *FoldError) Error() string {
	return "arguments member name differs from " + strconv.Quote(e.Argument) + " only by letter case or Unicode folding"
}

// CheckArguments refuses a tools/call whose arguments name, along the path of an argument the
// policy classifies (tools.<tool>.sql.argument or .shell.argument) or that a rule's condition
// reads (request.arguments.mode, request.arguments["mode"], "mode" in request.arguments), a
// member that folds to that name without being it. An upstream that decodes case-insensitively (Go's
// encoding/json and many others) takes such a member for the argument while policy would see
// no SQL or command at all. It returns a [*FoldError]; members of one object that fold to
// each other are already refused by [mcp.Parse] at every depth of params.
func (s *Set) CheckArguments(m *mcp.Message) error {
	if m == nil || len(m.Arguments) == 0 {
		return nil
	}
	if spec, ok := s.tools[m.Tool]; ok && m.Method == "tools/call" {
		for _, a := range []*ArgSpec{spec.SQL, spec.Shell} {
			if a == nil {
				continue
			}
			if p, found := foldedPath(m.Arguments, a.Argument); found {
				return &FoldError{Tool: m.Tool, Argument: p}
			}
		}
	}
	// Conditions read arguments by name too (request.arguments.mode, for tools/call and
	// prompts/get alike): a "Mode" would reach
	// the upstream as mode while the rule saw none.
	for _, path := range s.argPaths {
		if p, found := foldedPath(m.Arguments, path); found {
			return &FoldError{Tool: m.Tool, Argument: p}
		}
	}
	return nil
}

// foldedPath follows the dotted path through raw and reports the path up to the first level
// holding a member whose name folds to that level's segment without equalling it. It stops
// where the path ends or leaves objects, as [lookup] does.
func foldedPath(raw json.RawMessage, path string) (string, bool) {
	segs := strings.Split(path, ".")
	cur := raw
	for i, seg := range segs {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(cur, &obj); err != nil || obj == nil {
			return "", false
		}
		for k := range obj {
			if k != seg && strings.EqualFold(k, seg) {
				return strings.Join(segs[:i+1], "."), true
			}
		}
		next, ok := obj[seg]
		if !ok {
			return "", false
		}
		cur = next
	}
	return "", false
}

// member returns obj's member named k or, failing that, the one whose name folds to k: the
// member an upstream decoding case-insensitively takes for k. Classification then sees that
// value even where [Set.CheckArguments] is not consulted. With several folded names (which
// [mcp.Parse] refuses) the smallest wins, so the choice does not depend on map order.
func member(obj map[string]any, k string) (any, bool) {
	if v, ok := obj[k]; ok {
		return v, true
	}
	var (
		name  string
		v     any
		found bool
	)
	for n, e := range obj {
		if strings.EqualFold(n, k) && (!found || n < name) {
			name, v, found = n, e, true
		}
	}
	return v, found
}
