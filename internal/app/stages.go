package app

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/policy"
	"github.com/mcpguard/mcpguard/recordings"
)

// stages builds the ext_proc pipeline in its fixed order. The protocol checks always run
// first inside extproc. Request path: the session's owner is checked, policy decides,
// approvals hold, then (when masking.requests.tool_arguments is on) tool-call arguments are
// masked, then recording: policy and approvers judge the arguments the agent actually sent,
// while the upstream and the recording only ever get them masked. Response path: session
// (2024-11-05 answers matched to their requests), policy (tools/list visibility, tool
// pinning), then masking, then recording, so what is recorded is what the client received.
// Each feature adds its stage here, at its place.
func stages(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, v *authz.Verifier, admin map[string]http.Handler) (_ []extproc.Stage, closers []func(context.Context) error, _ error) {
	var out []extproc.Stage
	src, err := policy.Open(cfg.Policy, log, reg)
	if err != nil {
		return nil, closers, fmt.Errorf("policy: %w", err)
	}
	// Approvals hold what policy says needs a human; their API and page go on the admin port.
	ap, err := openApprovals(ctx, cfg, log, reg, v)
	closers = append(closers, ap.closers...)
	if err != nil {
		return nil, closers, fmt.Errorf("approvals: %w", err)
	}
	maps.Copy(admin, ap.routes)
	// Sessions first: a request naming a session of another identity goes no further, and
	// on the 2024-11-05 transport it matches answers to requests before policy reads them.
	sess, err := extproc.NewSessions(ap.sessions, reg)
	if err != nil {
		return nil, closers, fmt.Errorf("session stage: %w", err)
	}
	out = append(out, sess)
	pol, err := extproc.NewPolicy(src, ap.sessions, ap.approver, reg)
	if err != nil {
		return nil, closers, fmt.Errorf("policy stage: %w", err)
	}
	out = append(out, pol)
	reloadCtx, stopReload := context.WithCancel(context.WithoutCancel(ctx))
	reloadDone := make(chan struct{})
	go func() {
		defer close(reloadDone)
		src.Run(reloadCtx)
	}()
	closers = append(closers, func(context.Context) error {
		stopReload()
		<-reloadDone
		return nil
	})
	// One masker (the masking section's detectors) serves the masking stages and the
	// recording of request arguments, which is masked even with masking.enabled off.
	var m *masking.Masker
	if cfg.Masking.Enabled || (cfg.Recordings.Enabled && cfg.Recordings.Arguments.Mask) {
		mc := cfg.Masking
		if mc.HashKeyFile != "" {
			key, err := os.ReadFile(mc.HashKeyFile)
			if err != nil {
				return nil, closers, fmt.Errorf("masking: read hash_key_file: %w", err)
			}
			mc.HashKey, mc.HashKeyFile = strings.TrimSpace(string(key)), ""
		}
		if m, err = masking.New(mc); err != nil {
			return nil, closers, fmt.Errorf("masking: %w", err)
		}
	}
	// Masking rewrites secrets and personal data in what comes back, before it is recorded.
	if cfg.Masking.Enabled {
		mc := cfg.Masking
		ms, err := extproc.NewMasking(m, reg)
		if err != nil {
			return nil, closers, fmt.Errorf("masking stage: %w", err)
		}
		out = append(out, ms)
		// After policy and approvals (appended above), before recording (below).
		if mc.Requests.ToolArguments {
			as, err := extproc.NewArgumentMasking(m, reg)
			if err != nil {
				return nil, closers, fmt.Errorf("argument masking stage: %w", err)
			}
			out = append(out, as)
		}
	}
	// Recording stays the last stage: it records what the client received.
	if cfg.Recordings.Enabled {
		var o extproc.RecordingOptions
		if cfg.Recordings.Arguments.Mask {
			o.Mask = m
		}
		if o.Seal, err = recordings.NewSealer(cfg.Recordings.Arguments.SealTo); err != nil {
			return nil, closers, fmt.Errorf("recordings.arguments: %w", err)
		}
		rec, err := openRecorder(cfg, log, reg)
		if err != nil {
			return nil, closers, fmt.Errorf("recordings: %w", err)
		}
		rs := extproc.NewRecording(rec, o)
		out = append(out, rs)
		closers = append(closers, rs.Close, rec.Close) // the stage's waiting events, then the recorder
	}
	if cfg.Recordings.Web.Enabled {
		routes, err := openReplay(cfg, log, ap.people, ap.auth)
		if err != nil {
			return nil, closers, err
		}
		maps.Copy(admin, routes)
	}
	return out, closers, nil
}
