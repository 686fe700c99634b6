package app

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/recordings"
	"github.com/mcpguard/mcpguard/replay"
	"github.com/mcpguard/mcpguard/signin"
)

// openReplay serves the web replay of recordings on the admin port: people sign in as on
// the approvals page (OpenID Connect when approvals.signin is set, else approver tokens).
func openReplay(cfg *config.Config, log *slog.Logger, si *signin.SignIn, auth approvals.Authenticator) (map[string]http.Handler, error) {
	rc := recordingsConfig(cfg)
	sink, err := openReadSink(rc)
	if err != nil {
		return nil, fmt.Errorf("recordings.web: %w", err)
	}
	pub, err := verifyKey(cfg, "")
	if err != nil {
		return nil, fmt.Errorf("recordings.web: %w", err)
	}
	rp, err := replay.New(sink, rc.Sink.Prefix, replay.Options{
		Readers: rc.Web.Readers, SignIn: si, Auth: auth, PublicKey: pub, Log: log.With("component", "replay"),
	})
	if err != nil {
		return nil, err
	}
	return rp.Routes(), nil
}

// recordingLink is the approvals page's link to the recording of a held request.
func recordingLink(r approvals.Request) string {
	var session string
	if r.SessionID != "" {
		session = recordings.SessionKey(r.SessionID, nil, "")
	}
	return replay.Link(session, r.RequestID)
}
