package mcp

import "fmt"

// Revision is an MCP protocol revision.
type Revision string

// Known protocol revisions, oldest first.
const (
	Rev20241105 Revision = "2024-11-05" // HTTP+SSE transport (GET /sse + POST endpoint)
	Rev20250326 Revision = "2025-03-26" // Streamable HTTP, sessions, batches allowed
	Rev20250618 Revision = "2025-06-18"
	Rev20251125 Revision = "2025-11-25"
	Rev20260728 Revision = "2026-07-28" // stateless, _meta, Mcp-Method/Mcp-Name headers
)

// Revisions lists every known revision, oldest first.
var Revisions = []Revision{Rev20241105, Rev20250326, Rev20250618, Rev20251125, Rev20260728}

// Validate reports whether r is a known revision.
func (r Revision) Validate() error {
	switch r {
	case Rev20241105, Rev20250326, Rev20250618, Rev20251125, Rev20260728:
		return nil
	}
	return fmt.Errorf("unknown protocol revision %q", string(r))
}

// AllowsBatch reports whether JSON-RPC batch arrays are allowed (only 2025-03-26).
func (r Revision) AllowsBatch() bool { return r == Rev20250326 }

// Stateless reports whether the revision is the stateless, header-carrying era (2026-07-28).
func (r Revision) Stateless() bool { return r == Rev20260728 }

// HasSessions reports whether the revision uses Streamable HTTP sessions (2025-03-26 … 2025-11-25).
func (r Revision) HasSessions() bool {
	return r == Rev20250326 || r == Rev20250618 || r == Rev20251125
}
