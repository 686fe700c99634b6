package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mcpguard/mcpguard/identity"
)

// Authenticate verifies a bearer token presented to mcpguard itself (the approver API)
// rather than through Envoy: signature, issuer, expiry and claims as for [Server.Check],
// and the token must be issued for audience. Any failure is an error; callers answer 401.
func (v *Verifier) Authenticate(ctx context.Context, token, audience string) (identity.Identity, error) {
	if audience == "" {
		return identity.Identity{}, errors.New("authenticate: no audience configured")
	}
	if token == "" {
		return identity.Identity{}, fmt.Errorf("authenticate: %w", deny(reasonMissing))
	}
	vf, err := v.verify(ctx, token)
	if err != nil {
		return identity.Identity{}, fmt.Errorf("authenticate: %w", err)
	}
	if !slices.Contains(vf.aud, audience) {
		return identity.Identity{}, fmt.Errorf("authenticate: %w", deny(reasonAudience))
	}
	return vf.id, nil
}
