package app

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/internal/config"
)

// stages builds the ext_proc pipeline in its fixed order. The protocol checks always run
// first inside extproc. Request path: policy decides, approvals hold. Response path:
// policy (tools/list visibility, tool pinning), then masking, then recording, so what is
// recorded is what the client received. Each feature adds its stage here, at its place.
func stages(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (_ []extproc.Stage, closers []func(context.Context) error, _ error) {
	var out []extproc.Stage
	return out, closers, nil
}
