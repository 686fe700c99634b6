package authz

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/mcpguard/mcpguard/authz/authztest"
)

// FuzzCheck drives the whole decision with untrusted header, path and route values: it must
// never panic, never allow without a verified token, and every denial carries a challenge.
func FuzzCheck(f *testing.F) {
	iss := authztest.NewIssuer(f)
	cfg := testConfig(nil)
	v, err := NewVerifier(f.Context(), cfg, slog.New(slog.DiscardHandler), nil, WithStaticIssuer(iss.URL, iss.JWKS()))
	require.NoError(f, err)
	s := NewServer(v, cfg, slog.New(slog.DiscardHandler), nil)
	valid := iss.Mint(iss.Claims(testAudience, testScope))
	for _, seed := range []struct{ auth, path, key, val string }{
		{"Bearer " + valid, "/mcp", "", ""},
		{"bearer " + valid, "/mcp?x=1", "scopes", "mcp:tools"},
		{"Bearer " + valid, "/mcp?access_token=x", "", ""},
		{"Bearer " + valid + ", Bearer " + valid, "/mcp", "", ""},
		{"Basic dXNlcjpwYXNz", "/", "forward_authorization", "maybe"},
		{"Bearer  a.b.c", "/mcp", "audience", testAudience},
		{"Bearer ====", "/mcp?%zz", "scope", "x"},
	} {
		f.Add(seed.auth, seed.path, seed.key, seed.val)
	}
	f.Fuzz(func(t *testing.T, auth, path, key, val string) {
		var ext map[string]string
		if key != "" {
			ext = map[string]string{key: val}
		}
		resp, err := s.Check(t.Context(), request(auth, map[string]string{":path": path}, ext))
		if err != nil {
			require.Nil(t, resp)
			return
		}
		switch resp.GetStatus().GetCode() {
		case int32(codes.OK):
			tok, r := bearer(headers{m: map[string]string{"authorization": auth}})
			require.Equal(t, reasonNone, r)
			require.False(t, queryHasToken(path))
			vf, err := v.verify(t.Context(), tok)
			require.NoError(t, err)
			require.Equal(t, iss.URL, vf.id.Issuer)
		default:
			d := resp.GetDeniedResponse()
			require.NotNil(t, d)
			www, ok := header(d.GetHeaders(), "www-authenticate")
			require.True(t, ok)
			require.True(t, strings.HasPrefix(www, "Bearer"))
		}
	})
}

// FuzzVerify feeds arbitrary token strings to the verifier: only the issuer's own signed
// tokens may pass, and nothing panics.
func FuzzVerify(f *testing.F) {
	iss := authztest.NewIssuer(f)
	v, err := NewVerifier(f.Context(), testConfig(nil), slog.New(slog.DiscardHandler), nil, WithStaticIssuer(iss.URL, iss.JWKS()))
	require.NoError(f, err)
	claims := iss.Claims(testAudience, testScope)
	f.Add(iss.Mint(claims))
	f.Add(iss.MintES256(claims))
	f.Add(iss.MintWithKID("", claims))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("....")
	f.Fuzz(func(t *testing.T, tok string) {
		vf, err := v.verify(t.Context(), tok)
		if err != nil {
			var d *denial
			require.ErrorAs(t, err, &d, "a bad token is a denial, never an internal fault")
			return
		}
		require.Equal(t, iss.URL, vf.id.Issuer)
		require.Equal(t, claims["sub"], vf.id.Subject)
	})
}

// FuzzParseBearer checks the Authorization header parser alone.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer x", "Bearer", "Bearer  x==", "Basic x", "Bearer a b", "Bearer a,b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, r := bearer(headers{m: map[string]string{"authorization": h}})
		if r != reasonNone {
			require.Empty(t, tok)
			return
		}
		require.True(t, isToken68(tok))
		require.True(t, strings.HasSuffix(h, tok))
		require.True(t, strings.EqualFold(h[:7], "bearer "))
	})
}
