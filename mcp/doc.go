// Package mcp models JSON-RPC 2.0 / MCP messages as they cross the gateway: a strict single-pass
// parser, the protocol revisions and their HTTP transport rules, and an incremental SSE codec.
// Invariants: anything ambiguous (duplicate or case-colliding keys, bad envelopes, unknown revisions)
// is refused; parsed fields alias the input body; SSE events re-emit their input byte for byte.
package mcp
