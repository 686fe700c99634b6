// Package envoy holds the Envoy bootstrap that users deploy in front of an MCP server (envoy.yaml).
// Its bootstrap package validates a bootstrap offline and enforces mcpguard's rules (fail closed,
// identity forwarded from ext_authz to ext_proc, timers that outlast approval holds); the tests
// here hold every shipped bootstrap to them, and `mcpguard envoy check` runs them on yours.
package envoy
