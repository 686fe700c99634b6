package extproc_test

import (
	"context"
	"net"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/extproc/extproctest"
)

// BenchmarkProcessFloor drives BenchmarkProcess's exchange against extproctest.NullProcessor over the
// same real gRPC: what is left of BenchmarkProcess above it is mcpguard's own work.
//
//	go test ./extproc -run '^$' -bench 'Process(Floor)?$' -cpu 1 -count 6
func BenchmarkProcessFloor(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	gs := grpc.NewServer(grpc.ForceServerCodecV2(extproc.NewCodec()))
	extprocv3.RegisterExternalProcessorServer(gs, extproctest.NullProcessor{})
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	defer conn.Close()
	h := &harness{client: extprocv3.NewExternalProcessorClient(conn)}
	call := toolsCall(1, "query")
	res := []byte(result(1, "1 row: SELECT 1"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		e := h.open(b, ctx)
		e.post(call, "mcp-protocol-version", "2025-06-18", "mcp-session-id", "s1")
		e.passed()
		e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "60")
		e.recv()
		e.responseBody(res, true)
		r := e.recv()
		require.NotNil(b, r.GetResponseBody())
	}
}
