package extproc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcpguard/mcpguard/extproc"
)

// nullProcessor answers every ext_proc message with "continue" and looks at nothing: the
// cost of the protocol itself (gRPC, HTTP/2, protobuf) that any ext_proc server pays.
type nullProcessor struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (nullProcessor) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		cont := &extprocv3.CommonResponse{}
		var resp extprocv3.ProcessingResponse
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp.Response = &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: cont}}
		case *extprocv3.ProcessingRequest_RequestBody:
			resp.Response = &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: cont}}
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp.Response = &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: cont}}
		default:
			resp.Response = &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: cont}}
		}
		if err := s.Send(&resp); err != nil {
			return err
		}
	}
}

// BenchmarkProcessFloor drives BenchmarkProcess's exchange against nullProcessor over the
// same real gRPC: what is left of BenchmarkProcess above it is mcpguard's own work.
//
//	go test ./extproc -run '^$' -bench 'Process(Floor)?$' -cpu 1 -count 6
func BenchmarkProcessFloor(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	gs := grpc.NewServer(grpc.ForceServerCodecV2(extproc.NewCodec()))
	extprocv3.RegisterExternalProcessorServer(gs, nullProcessor{})
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
