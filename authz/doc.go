// Package authz is the Envoy ext_authz gRPC service: it verifies the caller's bearer JWT against
// the issuers' JWKS and hands the resulting [identity.Identity] to ext_proc as dynamic metadata.
// Invariants: the token comes only from one Authorization header; denials are 401/403 responses
// with RFC 6750/9728 challenges, never gRPC errors; a gRPC error means an internal fault (Envoy then
// fails closed); client-sent x-mcpguard-* headers never reach the upstream; tokens are never logged.
//
// Per-route settings come from the route's ext_authz context_extensions. Keys:
//
//	audience               required audience for this route (overrides issuer and default audience)
//	scopes                 space-separated scopes required in addition to required_scopes
//	resource_metadata      RFC 9728 metadata URL advertised in this route's challenges
//	forward_authorization  "true" or "false": keep the Authorization header upstream
//
// Any other key, or a malformed value, is a misconfiguration: Check returns a gRPC error.
package authz
