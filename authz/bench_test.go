package authz

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/mcpguard/mcpguard/authz/authztest"
)

func BenchmarkCheck(b *testing.B) {
	iss := authztest.NewIssuer(b)
	cfg := testConfig(nil)
	v, err := NewVerifier(b.Context(), cfg, slog.New(slog.DiscardHandler), nil, WithStaticIssuer(iss.URL, iss.JWKS()))
	require.NoError(b, err)
	s := NewServer(v, cfg, slog.New(slog.DiscardHandler), nil)
	check := func(b *testing.B, tok string) {
		resp, err := s.Check(b.Context(), request("Bearer "+tok, nil, nil))
		if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) {
			b.Fatalf("check: %v %v", err, resp.GetStatus())
		}
	}
	b.Run("cached", func(b *testing.B) {
		tok := iss.Mint(iss.Claims(testAudience, testScope))
		check(b, tok)
		b.ReportAllocs()
		for b.Loop() {
			check(b, tok)
		}
	})
	b.Run("first_seen_rs256", func(b *testing.B) {
		toks := make([]string, b.N)
		for i := range toks {
			c := iss.Claims(testAudience, testScope)
			c["jti"] = fmt.Sprint("bench-", i)
			toks[i] = iss.Mint(c)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			check(b, toks[i])
		}
	})
}
