package authz

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcpguard/mcpguard/authz/authztest"
	"github.com/mcpguard/mcpguard/identity"
)

func header(opts []*corev3.HeaderValueOption, key string) (string, bool) {
	for _, o := range opts {
		if o.GetHeader().GetKey() == key {
			return o.GetHeader().GetValue(), true
		}
	}
	return "", false
}

func TestCheckDecisions(t *testing.T) {
	e := newEnv(t, nil)
	other := authztest.NewIssuer(t)
	now := time.Now()
	valid := func() map[string]any { return e.iss.Claims(testAudience, testScope) }
	with := func(k string, v any) map[string]any {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(valid())).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	pub, err := x509.MarshalPKIXPublicKey(e.iss.RSAPublicKey())
	require.NoError(t, err)
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(valid()))
	confused.Header["kid"] = e.iss.KID()
	hs256, err := confused.SignedString(pub)
	require.NoError(t, err)
	tok := e.iss.Mint(valid())
	parts := strings.Split(tok, ".")
	badSig := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))

	cases := []struct {
		name    string
		auth    string
		extra   map[string]string
		ext     map[string]string
		code    codes.Code
		desc    string // expected error_description; "" for allowed
		wantWWW string // substring of WWW-Authenticate
	}{
		{name: "valid rs256", auth: "Bearer " + tok, code: codes.OK},
		{name: "valid es256", auth: "Bearer " + e.iss.MintES256(valid()), code: codes.OK},
		{name: "lower-case scheme", auth: "bearer " + e.iss.Mint(valid()), code: codes.OK},
		{name: "upper-case scheme", auth: "BEARER " + e.iss.Mint(valid()), code: codes.OK},
		{name: "no scopes", auth: "Bearer " + e.iss.Mint(with("scp", nil)), code: codes.PermissionDenied, desc: "insufficient scope"},
		{name: "scope claim as string", auth: "Bearer " + e.iss.Mint(func() map[string]any {
			c := with("scp", nil)
			c["scope"] = "openid " + testScope
			return c
		}()), code: codes.OK},
		{name: "aud array", auth: "Bearer " + e.iss.Mint(with("aud", []string{"other", testAudience})), code: codes.OK},
		{name: "expired within leeway", auth: "Bearer " + e.iss.Mint(with("exp", now.Add(-10*time.Second).Unix())), code: codes.OK},
		{name: "nbf within leeway", auth: "Bearer " + e.iss.Mint(with("nbf", now.Add(10*time.Second).Unix())), code: codes.OK},
		{name: "expired", auth: "Bearer " + e.iss.Mint(with("exp", now.Add(-2*time.Minute).Unix())), code: codes.Unauthenticated, desc: "token expired"},
		{name: "nbf in future", auth: "Bearer " + e.iss.Mint(with("nbf", now.Add(2*time.Minute).Unix())), code: codes.Unauthenticated, desc: "token not yet valid"},
		{name: "iat in future", auth: "Bearer " + e.iss.Mint(with("iat", now.Add(2*time.Minute).Unix())), code: codes.Unauthenticated, desc: "token issued in the future"},
		{name: "no exp", auth: "Bearer " + e.iss.Mint(with("exp", nil)), code: codes.Unauthenticated, desc: "required claims missing or malformed"},
		{name: "no sub", auth: "Bearer " + e.iss.Mint(with("sub", nil)), code: codes.Unauthenticated, desc: "required claims missing or malformed"},
		{name: "groups wrong type", auth: "Bearer " + e.iss.Mint(with("groups", 7)), code: codes.Unauthenticated, desc: "required claims missing or malformed"},
		{name: "wrong issuer", auth: "Bearer " + e.iss.Mint(with("iss", other.URL)), code: codes.Unauthenticated, desc: "untrusted issuer"},
		{name: "token from other issuer", auth: "Bearer " + other.Mint(other.Claims(testAudience, testScope)), code: codes.Unauthenticated, desc: "untrusted issuer"},
		{name: "wrong audience", auth: "Bearer " + e.iss.Mint(with("aud", "https://other.example/mcp")), code: codes.Unauthenticated, desc: "token not issued for this resource"},
		{
			name: "missing scope", auth: "Bearer " + e.iss.Mint(with("scp", []string{"openid"})), code: codes.PermissionDenied, desc: "insufficient scope",
			wantWWW: `Bearer error="insufficient_scope", scope="mcp:tools", resource_metadata="` + testMetadata + `"`,
		},
		{
			name: "route scope missing", auth: "Bearer " + e.iss.Mint(valid()), ext: map[string]string{"scopes": "mcp:admin"}, code: codes.PermissionDenied, desc: "insufficient scope",
			wantWWW: `scope="mcp:tools mcp:admin"`,
		},
		{name: "route scope granted", auth: "Bearer " + e.iss.Mint(with("scp", []string{testScope, "mcp:admin"})), ext: map[string]string{"scopes": "mcp:admin"}, code: codes.OK},
		{name: "route audience", auth: "Bearer " + e.iss.Mint(with("aud", "https://b.example/mcp")), ext: map[string]string{"audience": "https://b.example/mcp"}, code: codes.OK},
		{name: "route audience mismatch", auth: "Bearer " + e.iss.Mint(valid()), ext: map[string]string{"audience": "https://b.example/mcp"}, code: codes.Unauthenticated, desc: "token not issued for this resource"},
		{name: "alg none", auth: "Bearer " + none, code: codes.Unauthenticated, desc: "signing algorithm not accepted"},
		{name: "hs256 with rsa public key", auth: "Bearer " + hs256, code: codes.Unauthenticated, desc: "signing algorithm not accepted"},
		{name: "bad signature", auth: "Bearer " + badSig, code: codes.Unauthenticated, desc: "invalid signature"},
		{name: "malformed", auth: "Bearer abc.def", code: codes.Unauthenticated, desc: "malformed token"},
		{name: "malformed segments", auth: "Bearer a.b.c", code: codes.Unauthenticated, desc: "malformed token"},
		{name: "oversized", auth: "Bearer " + strings.Repeat("a", 9000), code: codes.Unauthenticated, desc: "token too large"},
		{name: "missing header", code: codes.Unauthenticated, desc: "bearer token required", wantWWW: `Bearer resource_metadata="` + testMetadata + `"`},
		{name: "token in query", auth: "Bearer " + e.iss.Mint(valid()), extra: map[string]string{":path": "/mcp?x=1&access_token=abc"}, code: codes.Unauthenticated, desc: "tokens in the query string are not accepted"},
		{name: "encoded token in query", extra: map[string]string{":path": "/mcp?access%5Ftoken=abc"}, code: codes.Unauthenticated, desc: "tokens in the query string are not accepted"},
		{name: "two values", auth: "Bearer " + tok + ", Bearer " + tok, code: codes.Unauthenticated, desc: "authorization header is not a single bearer token"},
		{name: "basic scheme", auth: "Basic dXNlcjpwYXNz", code: codes.Unauthenticated, desc: "authorization header is not a single bearer token"},
		{name: "scheme only", auth: "Bearer", code: codes.Unauthenticated, desc: "authorization header is not a single bearer token"},
		{
			name: "route challenge url", ext: map[string]string{"resource_metadata": "https://b.example/.well-known/oauth-protected-resource/mcp"}, code: codes.Unauthenticated, desc: "bearer token required",
			wantWWW: `Bearer resource_metadata="https://b.example/.well-known/oauth-protected-resource/mcp"`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.client.Check(t.Context(), request(tc.auth, tc.extra, tc.ext))
			require.NoError(t, err, "a denial is never a gRPC error")
			require.Equal(t, int32(tc.code), resp.GetStatus().GetCode())
			if tc.code == codes.OK {
				require.NotNil(t, resp.GetOkResponse())
				id, err := identity.FromStruct(resp.GetDynamicMetadata())
				require.NoError(t, err)
				require.Equal(t, e.iss.URL, id.Issuer)
				return
			}
			d := resp.GetDeniedResponse()
			require.NotNil(t, d)
			www, ok := header(d.GetHeaders(), "www-authenticate")
			require.True(t, ok)
			ct, _ := header(d.GetHeaders(), "content-type")
			require.Equal(t, "application/json", ct)
			var body map[string]string
			require.NoError(t, json.Unmarshal([]byte(d.GetBody()), &body))
			require.Equal(t, tc.desc, body["error_description"])
			require.Nil(t, resp.GetDynamicMetadata())
			switch tc.code {
			case codes.PermissionDenied:
				require.EqualValues(t, 403, d.GetStatus().GetCode())
				require.Equal(t, "insufficient_scope", body["error"])
			default:
				require.EqualValues(t, 401, d.GetStatus().GetCode())
				if tc.desc == "bearer token required" {
					require.NotContains(t, www, "error=", "RFC 6750 §3.1: no error code without credentials")
				} else {
					require.Contains(t, www, `error="invalid_token", error_description="`+tc.desc+`"`)
					require.Contains(t, www, `resource_metadata="`)
				}
			}
			if tc.wantWWW != "" {
				require.Contains(t, www, tc.wantWWW)
			}
			if tok := strings.TrimPrefix(tc.auth, "Bearer "); len(tok) > 20 {
				require.NotContains(t, www+d.GetBody(), tok, "never echo the token")
			}
		})
	}
	require.Positive(t, value(t, e.s.met.checks.WithLabelValues(resultAllowed)))
	require.Positive(t, value(t, e.s.met.checks.WithLabelValues(resultUnauthenticated)))
	require.Positive(t, value(t, e.s.met.checks.WithLabelValues(resultForbidden)))
	require.NotContains(t, e.logs.String(), tok, "tokens are never logged")
	require.Contains(t, e.logs.String(), `"request_id":"req-1"`)
}

func TestCheckCriticalHeader(t *testing.T) {
	e := newEnv(t, nil)
	c := e.iss.Claims(testAudience, testScope)
	good := e.iss.Mint(c)
	// Re-sign with a crit header using the issuer's own key material is not exposed, so splice a
	// header onto a valid token: the signature no longer matches, but crit is refused before that.
	hdr := `{"alg":"RS256","kid":"` + e.iss.KID() + `","crit":["exp"]}`
	spliced := b64(hdr) + good[strings.Index(good, "."):]
	resp, err := e.client.Check(t.Context(), request("Bearer "+spliced, nil, nil))
	require.NoError(t, err)
	require.Equal(t, int32(codes.Unauthenticated), resp.GetStatus().GetCode())
	require.Contains(t, resp.GetDeniedResponse().GetBody(), "token cannot be verified")
}

func TestCheckHeaderMap(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.iss.Mint(e.iss.Claims(testAudience, testScope))
	build := func(vals ...string) *authv3.CheckRequest {
		req := request("", nil, nil)
		h := req.Attributes.Request.Http
		for k, v := range h.Headers {
			h.HeaderMap = &corev3.HeaderMap{Headers: append(h.GetHeaderMap().GetHeaders(), &corev3.HeaderValue{Key: k, RawValue: []byte(v)})}
		}
		for _, v := range vals {
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: "authorization", RawValue: []byte(v)})
		}
		h.Headers = nil
		return req
	}
	cases := []struct {
		name string
		vals []string
		code codes.Code
	}{
		{"one value", []string{"Bearer " + tok}, codes.OK},
		{"two values", []string{"Bearer " + tok, "Bearer " + tok}, codes.Unauthenticated},
		{"none", nil, codes.Unauthenticated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.client.Check(t.Context(), build(tc.vals...))
			require.NoError(t, err)
			require.Equal(t, int32(tc.code), resp.GetStatus().GetCode())
		})
	}
}

func TestCheckAllowedHeaders(t *testing.T) {
	cases := []struct {
		name        string
		identity    bool
		forwardCfg  bool
		ext         map[string]string
		wantRemove  []string
		wantHeaders map[string]string
	}{
		{
			name: "strip client headers and authorization", ext: nil,
			wantRemove: []string{"x-mcpguard-groups", "x-mcpguard-subject", "x-mcpguard-x", "authorization"},
		},
		{
			name: "route forwards authorization", ext: map[string]string{"forward_authorization": "true"},
			wantRemove: []string{"x-mcpguard-groups", "x-mcpguard-subject", "x-mcpguard-x"},
		},
		{
			name: "route overrides config forwarding", forwardCfg: true, ext: map[string]string{"forward_authorization": "false"},
			wantRemove: []string{"x-mcpguard-groups", "x-mcpguard-subject", "x-mcpguard-x", "authorization"},
		},
		{
			name: "identity headers overwrite client ones", identity: true,
			wantRemove:  []string{"x-mcpguard-x", "authorization"},
			wantHeaders: map[string]string{headerSubject: "agent%0A1", headerClientID: "0oa-agent-1", headerGroups: "dba,o%2Cps"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.IdentityHeaders, c.ForwardAuthorization = tc.identity, tc.forwardCfg })
			c := e.iss.Claims(testAudience, testScope)
			c["sub"], c["groups"] = "agent\n1", []string{"dba", "o,ps"}
			extra := map[string]string{"x-mcpguard-subject": "admin", "x-mcpguard-groups": "root", "x-mcpguard-x": "1"}
			resp, err := e.client.Check(t.Context(), request("Bearer "+e.iss.Mint(c), extra, tc.ext))
			require.NoError(t, err)
			ok := resp.GetOkResponse()
			require.NotNil(t, ok)
			require.Equal(t, tc.wantRemove, ok.GetHeadersToRemove())
			require.Len(t, ok.GetHeaders(), len(tc.wantHeaders))
			for _, h := range ok.GetHeaders() {
				require.Equal(t, tc.wantHeaders[h.GetHeader().GetKey()], h.GetHeader().GetValue())
				require.Empty(t, h.GetHeader().GetRawValue(), "ext_authz reads value, not raw_value")
				require.False(t, h.GetAppend().GetValue())
				require.NotNil(t, h.GetAppend())
			}
			id, err := identity.FromStruct(resp.GetDynamicMetadata())
			require.NoError(t, err)
			require.Equal(t, "agent\n1", id.Subject)
			require.Equal(t, []string{"dba", "o,ps"}, id.Groups)
			require.Equal(t, []string{testScope}, id.Scopes)
			require.Equal(t, "0oa-agent-1", id.ClientID)
		})
	}
}

func TestCheckRouteMisconfigured(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.iss.Mint(e.iss.Claims(testAudience, testScope))
	cases := []struct {
		name string
		ext  map[string]string
	}{
		{"typo scope", map[string]string{"scope": "mcp:admin"}},
		{"forward maybe", map[string]string{"forward_authorization": "maybe"}},
		{"empty audience", map[string]string{"audience": ""}},
		{"scopes double space", map[string]string{"scopes": "a  b"}},
		{"metadata with quote", map[string]string{"resource_metadata": `https://x/"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.client.Check(t.Context(), request("Bearer "+tok, nil, tc.ext))
			require.Nil(t, resp)
			require.Equal(t, codes.Internal, status.Code(err))
			require.Contains(t, status.Convert(err).Message(), "req-1")
		})
	}
	require.Contains(t, e.logs.String(), "authz check failed")
	require.Contains(t, e.logs.String(), `unknown key \"scope\"`)
	require.InDelta(t, float64(len(cases)), value(t, e.s.met.checks.WithLabelValues(resultError)), 1e-9)
}

func TestCheckNoAudience(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Audience = "" })
	tok := e.iss.Mint(e.iss.Claims(testAudience, testScope))
	_, err := e.client.Check(t.Context(), request("Bearer "+tok, nil, nil))
	require.Equal(t, codes.Internal, status.Code(err), "no audience anywhere fails closed")
	resp, err := e.client.Check(t.Context(), request("Bearer "+tok, nil, map[string]string{"audience": testAudience}))
	require.NoError(t, err)
	require.Equal(t, int32(codes.OK), resp.GetStatus().GetCode())
}

func TestCheckIssuerAudience(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Issuers[0].Audience = "api://mcp" })
	resp, err := e.client.Check(t.Context(), request("Bearer "+e.iss.Mint(e.iss.Claims("api://mcp", testScope)), nil, nil))
	require.NoError(t, err)
	require.Equal(t, int32(codes.OK), resp.GetStatus().GetCode())
	resp, err = e.client.Check(t.Context(), request("Bearer "+e.iss.Mint(e.iss.Claims(testAudience, testScope)), nil, nil))
	require.NoError(t, err)
	require.Equal(t, int32(codes.Unauthenticated), resp.GetStatus().GetCode())
}

func TestQueryHasToken(t *testing.T) {
	cases := map[string]bool{
		"/mcp": false, "/mcp?": false, "/mcp?a=1": false, "/mcp?access_token=x": true,
		"/mcp?a=1&ACCESS_TOKEN=x": true, "/mcp?a=1;access_token=x": true, "/mcp?access%5ftoken": true,
		"/mcp?x=access_token": false, "/mcp#access_token=x": false, "/mcp?%zz&access_token": true,
	}
	for p, want := range cases {
		t.Run(p, func(t *testing.T) { require.Equal(t, want, queryHasToken(p)) })
	}
}

func TestEscapeHeader(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain value", "plain value"}, {"a\r\nb", "a%0D%0Ab"}, {"50%", "50%25"}, {"é", "%C3%A9"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) { require.Equal(t, tc.want, escapeHeader(tc.in, 0)) })
	}
	require.Equal(t, "a%2Cb", escapeHeader("a,b", ','))
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
