package authz

import (
	"fmt"
	"log/slog"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
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
	check := func(b *testing.B, req *authv3.CheckRequest) {
		resp, err := s.Check(b.Context(), req)
		if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) {
			b.Fatalf("check: %v %v", err, resp.GetStatus())
		}
	}
	b.Run("cached", func(b *testing.B) {
		req := request("Bearer "+iss.Mint(iss.Claims(testAudience, testScope)), nil, nil)
		check(b, req)
		b.ReportAllocs()
		for b.Loop() {
			check(b, req)
		}
	})
	// The same cached check over real gRPC on loopback, as Envoy calls it: the difference to
	// "cached" is the cost of gRPC and HTTP/2 on both ends (client and server in this process).
	b.Run("grpc_cached", func(b *testing.B) {
		client := serve(b, s)
		req := request("Bearer "+iss.Mint(iss.Claims(testAudience, testScope)), nil, nil)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Check(b.Context(), req)
				if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) {
					b.Errorf("check: %v %v", err, resp.GetStatus())
					return
				}
			}
		})
	})
	b.Run("first_seen_rs256", func(b *testing.B) {
		reqs := make([]*authv3.CheckRequest, b.N)
		for i := range reqs {
			c := iss.Claims(testAudience, testScope)
			c["jti"] = fmt.Sprint("bench-", i)
			reqs[i] = request("Bearer "+iss.Mint(c), nil, nil)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			check(b, reqs[i])
		}
	})
}
