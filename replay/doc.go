// Package replay serves recorded sessions to security engineers on the admin port: a
// search with the filters of `mcpguard recordings ls`, and a session timeline with its
// verification verdict. Invariants: read-only (GET only); every reader is signed in and in
// a configured group; sealed originals are never shown; every value is HTML-escaped and
// its hidden characters made visible.
package replay
