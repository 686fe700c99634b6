package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
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
// canonical form (key order and whitespace do not matter).
func Fingerprint(raw json.RawMessage) (string, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("decode tool: %w", err)
	}
	h := sha256.New()
	for _, k := range fingerprinted {
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
