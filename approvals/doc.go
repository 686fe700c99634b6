// Package approvals holds risky MCP calls until a human decides: requests, grants, waits,
// the approver HTTP API and page, and webhook notifications.
// Invariants: a request is decided at most once, never by its requester; a one-time grant is
// consumed atomically and never passes twice; stores keep masked arguments only, and
// anything unknown, expired or unreadable is refused.
package approvals
