// Package signin signs people in with OpenID Connect (authorization code flow with PKCE,
// state and nonce) and keeps who they are in a sealed session cookie.
// Invariants: an identity comes only from an ID token verified against the configured
// issuer and client; cookies are AES-GCM sealed, bounded in size and lifetime; anything
// unreadable, mismatched, tampered or expired means "not signed in".
package signin
