package authz

// reason is why a request is denied. Each has a fixed client-facing description and a short
// class for logs: nothing from the token is ever echoed.
type reason int

const (
	reasonNone reason = iota
	reasonMissing
	reasonMalformedHeader
	reasonQueryToken
	reasonTooLarge
	reasonMalformed
	reasonAlgorithm
	reasonUnknownKey
	reasonSignature
	reasonUnverifiable
	reasonExpired
	reasonNotYetValid
	reasonIssuedInFuture
	reasonIssuer
	reasonAudience
	reasonClaims
	reasonScope
)

var reasons = [...]struct{ class, description string }{
	reasonNone:            {"none", ""},
	reasonMissing:         {"missing_token", "bearer token required"},
	reasonMalformedHeader: {"malformed_header", "authorization header is not a single bearer token"},
	reasonQueryToken:      {"token_in_query", "tokens in the query string are not accepted"},
	reasonTooLarge:        {"token_too_large", "token too large"},
	reasonMalformed:       {"malformed_token", "malformed token"},
	reasonAlgorithm:       {"algorithm", "signing algorithm not accepted"},
	reasonUnknownKey:      {"unknown_key", "unknown signing key"},
	reasonSignature:       {"signature", "invalid signature"},
	reasonUnverifiable:    {"unverifiable", "token cannot be verified"},
	reasonExpired:         {"expired", "token expired"},
	reasonNotYetValid:     {"not_yet_valid", "token not yet valid"},
	reasonIssuedInFuture:  {"issued_in_future", "token issued in the future"},
	reasonIssuer:          {"issuer", "untrusted issuer"},
	reasonAudience:        {"audience", "token not issued for this resource"},
	reasonClaims:          {"claims", "required claims missing or malformed"},
	reasonScope:           {"scope", "insufficient scope"},
}

func (r reason) class() string       { return reasons[r].class }
func (r reason) description() string { return reasons[r].description }

// denial is a verification failure that becomes a 401 or 403 response.
type denial struct{ r reason }

func deny(r reason) *denial { return &denial{r: r} }

func (d *denial) Error() string { return d.r.description() }
