// Package emulatortest provides scripted ext_proc and ext_authz gRPC servers on 127.0.0.1 for tests of
// the Envoy emulator and of the e2e suite. Each handler sees one message at a time, in stream order,
// and may answer with zero or more responses (M:N for FULL_DUPLEX_STREAMED).
package emulatortest

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// ErrClose ends a Process stream with an OK status when returned by a Handle func.
var ErrClose = errors.New("close stream")

// Handle answers one ProcessingRequest: the returned responses are sent in order after it returns;
// st.Send sends one at once (e.g. an override_message_timeout before a slow decision). Returning ErrClose
// ends the stream OK; any other error ends it with that error's gRPC status.
type Handle func(ctx context.Context, st *Stream, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error)

// Stream is the server side of one Process stream as a Handle sees it.
type Stream struct {
	N    int // index of the current message within the stream, from 0
	send func(*extprocv3.ProcessingResponse) error
}

// Send sends r immediately.
func (s *Stream) Send(r *extprocv3.ProcessingResponse) error { return s.send(r) }

// Processor is a programmable ExternalProcessorServer that records what it receives.
type Processor struct {
	extprocv3.UnimplementedExternalProcessorServer
	Handle Handle // nil: Continue every message

	mu      sync.Mutex
	streams [][]*extprocv3.ProcessingRequest
	ended   []error
	cancels int
}

var _ extprocv3.ExternalProcessorServer = (*Processor)(nil)

// Process serves one stream.
func (p *Processor) Process(s grpc.BidiStreamingServer[extprocv3.ProcessingRequest, extprocv3.ProcessingResponse]) error {
	p.mu.Lock()
	idx := len(p.streams)
	p.streams = append(p.streams, nil)
	p.mu.Unlock()
	err := p.serve(s, idx)
	p.mu.Lock()
	p.ended = append(p.ended, err)
	if s.Context().Err() != nil {
		p.cancels++
	}
	p.mu.Unlock()
	if errors.Is(err, ErrClose) {
		return nil
	}
	return err
}

func (p *Processor) serve(s grpc.BidiStreamingServer[extprocv3.ProcessingRequest, extprocv3.ProcessingResponse], idx int) error {
	st := &Stream{send: s.Send}
	for n := 0; ; n++ {
		st.N = n
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.streams[idx] = append(p.streams[idx], req)
		p.mu.Unlock()
		h := p.Handle
		if h == nil {
			h = func(_ context.Context, _ *Stream, r *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
				return []*extprocv3.ProcessingResponse{Continue(r)}, nil
			}
		}
		resps, err := h(s.Context(), st, req)
		for _, r := range resps {
			if serr := s.Send(r); serr != nil {
				return serr
			}
		}
		if err != nil {
			return err
		}
	}
}

// Streams returns a copy of the requests received, one slice per stream.
func (p *Processor) Streams() [][]*extprocv3.ProcessingRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][]*extprocv3.ProcessingRequest, len(p.streams))
	for i, s := range p.streams {
		out[i] = append([]*extprocv3.ProcessingRequest(nil), s...)
	}
	return out
}

// Ended returns how many streams have finished and how many of those were cancelled by the client.
func (p *Processor) Ended() (ended, cancelled int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ended), p.cancels
}

// Continue is the empty CONTINUE answer matching req's type.
func Continue(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	cr := &extprocv3.CommonResponse{}
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_RequestBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_ResponseBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
	}
	return &extprocv3.ProcessingResponse{}
}

// With returns Continue(req) with its CommonResponse (headers or body responses) set to cr.
func With(req *extprocv3.ProcessingRequest, cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	r := Continue(req)
	switch v := r.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		v.RequestHeaders.Response = cr
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		v.ResponseHeaders.Response = cr
	case *extprocv3.ProcessingResponse_RequestBody:
		v.RequestBody.Response = cr
	case *extprocv3.ProcessingResponse_ResponseBody:
		v.ResponseBody.Response = cr
	}
	return r
}

// Authorizer is a programmable Authorization server; nil Decide allows everything.
type Authorizer struct {
	authv3.UnimplementedAuthorizationServer
	Decide func(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error)
}

var _ authv3.AuthorizationServer = (*Authorizer)(nil)

// Check implements authv3.AuthorizationServer.
func (a *Authorizer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	if a.Decide == nil {
		return &authv3.CheckResponse{Status: &status.Status{}}, nil
	}
	return a.Decide(ctx, req)
}

// Serve runs a gRPC server with the given services on 127.0.0.1 (random port) until the test ends and
// returns its address. Either service may be nil.
func Serve(tb testing.TB, p *Processor, a *Authorizer) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	s := grpc.NewServer()
	if p != nil {
		extprocv3.RegisterExternalProcessorServer(s, p)
	}
	if a != nil {
		authv3.RegisterAuthorizationServer(s, a)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	tb.Cleanup(func() {
		s.Stop()
		<-done
	})
	return ln.Addr().String()
}
