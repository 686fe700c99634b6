package app

import (
	"log/slog"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/signin"
)

// signInOptions gives the approvals page OpenID Connect sign-in when approvals.signin is
// configured; without it the page keeps taking pasted approver tokens.
// The recordings replay shares the returned SignIn (nil when off).
func signInOptions(ac approvals.Config, log *slog.Logger) (*signin.SignIn, []approvals.Option, error) {
	if !ac.SignIn.Enabled() {
		return nil, nil, nil
	}
	si, err := signin.New(ac.SignIn, signin.Options{PublicURL: ac.PublicURL, Log: log.With("component", "signin")})
	if err != nil {
		return nil, nil, err
	}
	return si, []approvals.Option{approvals.WithSignIn(si)}, nil
}
