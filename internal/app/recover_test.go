package app

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/mcpguard/mcpguard/internal/testutil"
)

// A service whose handlers panic the way a bug in a stage would: a runtime error, or a
// value that carries message content.
const secretInPanic = "sk-live-must-not-be-logged"

var panickerDesc = grpc.ServiceDesc{
	ServiceName: "test.Panicker",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Index",
		Handler: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := &emptypb.Empty{}
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) {
				var s []int
				return nil, status.Error(codes.OK, string(rune(s[len(in.String())+1])))
			}
			return ic(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/test.Panicker/Index"}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Value",
		ServerStreams: true,
		ClientStreams: true,
		Handler:       func(any, grpc.ServerStream) error { panic(secretInPanic) },
	}},
}

func TestPanicGuard(t *testing.T) {
	logs := &testutil.Buffer{}
	reg := prometheus.NewRegistry()
	g, err := newPanicGuard(slog.New(slog.NewJSONHandler(logs, nil)), reg)
	require.NoError(t, err)

	srv := grpc.NewServer(g.options()...)
	srv.RegisterService(&panickerDesc, struct{}{})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		require.NoError(t, <-done)
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	for i := range 2 {
		err := conn.Invoke(t.Context(), "/test.Panicker/Index", &emptypb.Empty{}, &emptypb.Empty{})
		require.Equal(t, codes.Internal, status.Code(err), "unary call %d: %v", i, err)
	}
	st, err := conn.NewStream(t.Context(), &panickerDesc.Streams[0], "/test.Panicker/Value")
	require.NoError(t, err)
	err = st.RecvMsg(&emptypb.Empty{})
	require.Equal(t, codes.Internal, status.Code(err), "stream: %v", err)

	resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "the server survives and keeps serving")
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

	require.InDelta(t, 3.0, promtest.ToFloat64(g.panics), 1e-9)
	lines := logs.JSONLines()
	var panics []map[string]any
	for _, l := range lines {
		if l["msg"] == "gRPC handler panicked; this call failed closed" {
			panics = append(panics, l)
		}
	}
	require.Len(t, panics, 3)
	require.Equal(t, "/test.Panicker/Index", panics[0]["method"])
	require.Contains(t, panics[0]["panic"], "index out of range")
	require.Equal(t, "/test.Panicker/Value", panics[2]["method"])
	require.Equal(t, "panic value of type string", panics[2]["panic"])
	require.Contains(t, panics[2]["stack"], "recover_test.go")
	require.NotContains(t, logs.String(), secretInPanic, "a panic value is never logged verbatim")
}
