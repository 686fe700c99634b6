// Package bootstrap forwards to [github.com/mcpguard/mcpguard/envoy/bootstrap], where the
// offline validation of the Envoy bootstrap lives next to the bootstrap it validates (and where
// `mcpguard envoy check` can use it: the production binary imports nothing under e2e/). The
// e2e code keeps this import path; new code imports envoy/bootstrap.
package bootstrap

import (
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/mcpguard/mcpguard/envoy/bootstrap"
)

// ProtocolOptionsKey is [bootstrap.ProtocolOptionsKey].
const ProtocolOptionsKey = bootstrap.ProtocolOptionsKey

// Load is [bootstrap.Load].
func Load(path string) (*bootstrapv3.Bootstrap, error) { return bootstrap.Load(path) }

// Parse is [bootstrap.Parse].
func Parse(data []byte) (*bootstrapv3.Bootstrap, error) { return bootstrap.Parse(data) }

// Validate is [bootstrap.Validate].
func Validate(b *bootstrapv3.Bootstrap) error { return bootstrap.Validate(b) }

// Warnings is [bootstrap.Warnings].
func Warnings(b *bootstrapv3.Bootstrap) []string { return bootstrap.Warnings(b) }
