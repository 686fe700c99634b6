// Package envoy holds the Envoy bootstrap that users deploy in front of an MCP server (envoy.yaml)
// and the test that validates it offline and enforces mcpguard's rules: fail closed, identity
// forwarded from ext_authz to ext_proc, timers that outlast approval holds. It has no runtime code.
package envoy
