// Package extproctest holds the no-op ext_proc server that measures the protocol floor:
// what gRPC, HTTP/2 and protobuf cost any ext_proc server, whatever it does.
package extproctest

import (
	"errors"
	"io"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// NullProcessor answers every ext_proc message with "continue" and looks at nothing. It
// enforces nothing: a measuring instrument (BenchmarkProcessFloor, e2e/cmd/nullguard).
type NullProcessor struct {
	extprocv3.UnimplementedExternalProcessorServer
}

// Process answers each message of the stream in turn until the client ends it.
func (NullProcessor) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err //nolint:wrapcheck // the stream's own status
		}
		c := &extprocv3.CommonResponse{}
		var resp extprocv3.ProcessingResponse
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp.Response = &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: c}}
		case *extprocv3.ProcessingRequest_RequestBody:
			resp.Response = &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: c}}
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp.Response = &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: c}}
		case *extprocv3.ProcessingRequest_ResponseBody:
			resp.Response = &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: c}}
		default:
			resp.Response = &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}
		}
		if err := s.Send(&resp); err != nil {
			return err //nolint:wrapcheck // the stream's own status
		}
	}
}
