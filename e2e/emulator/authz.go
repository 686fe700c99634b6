package emulator

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const nsExtAuthz = "envoy.filters.http.ext_authz"

// checkAuthz runs the ext_authz filter: one unary Check with the configured deadline. It returns nil to
// continue the chain, or the local reply to send.
func (x *exchange) checkAuthz(ctx context.Context) error {
	a := x.e.p.authz
	req := &authv3.CheckRequest{Attributes: x.checkAttributes()}
	x.e.trace(TraceEvent{RequestID: x.id, Kind: TraceCheckRequest, Message: req})
	started := time.Now()
	resp, err := x.callCheck(ctx, a, req)
	x.timing.addAuthz(time.Since(started))
	if err != nil {
		x.log.Debug("ext_authz call failed", "err", err)
		if a.failOpen {
			if a.failOpenHdr {
				x.hdr.set("x-envoy-auth-failure-mode-allowed", "true")
			}
			return nil
		}
		return &localReply{status: a.statusOnError, details: "ext_authz_error"}
	}
	x.e.trace(TraceEvent{RequestID: x.id, Kind: TraceCheckResponse, Message: resp})
	x.storeAuthzMetadata(resp, time.Since(started))
	if resp.GetErrorResponse() != nil {
		// An error_response is an error, not a denial: failure_mode_allow and status_on_error apply.
		if a.failOpen {
			return nil
		}
		st := a.statusOnError
		if c := resp.GetErrorResponse().GetStatus().GetCode(); c != 0 {
			st = int(c)
		}
		return &localReply{status: st, details: "ext_authz_error", body: []byte(resp.GetErrorResponse().GetBody())}
	}
	if resp.GetStatus().GetCode() != int32(code.Code_OK) {
		d := resp.GetDeniedResponse()
		st := int(d.GetStatus().GetCode())
		if st == 0 {
			st = 403
		}
		var h fields
		applyAuthz(&h, d.GetHeaders())
		return &localReply{status: st, details: "ext_authz_denied", hdr: h, body: []byte(d.GetBody())}
	}
	ok := resp.GetOkResponse()
	applyAuthz(&x.hdr, ok.GetHeaders())
	for _, k := range ok.GetHeadersToRemove() {
		// Envoy removes Http::LowerCaseString(k): names match whatever their case.
		k = strings.ToLower(k)
		if k == "host" || len(k) > 0 && k[0] == ':' {
			continue
		}
		x.hdr.del(k)
	}
	x.respAdd = ok.GetResponseHeadersToAdd()
	return nil
}

// storeAuthzMetadata writes CheckResponse.dynamic_metadata as Envoy's ext_authz filter does
// (ext_authz.cc, Filter::onComplete): only a non-empty struct is stored, under the filter's
// name, merged into what the namespace already holds (StreamInfo::setDynamicMetadata is a
// MergeFrom); an allowing answer also gets ext_authz_duration, the Check call's duration in
// milliseconds.
func (x *exchange) storeAuthzMetadata(resp *authv3.CheckResponse, took time.Duration) {
	md := resp.GetDynamicMetadata()
	if len(md.GetFields()) == 0 {
		return
	}
	md = proto.Clone(md).(*structpb.Struct)
	if resp.GetStatus().GetCode() == int32(code.Code_OK) && resp.GetErrorResponse() == nil {
		md.Fields["ext_authz_duration"] = structpb.NewNumberValue(float64(took.Milliseconds()))
	}
	x.metaMu.Lock()
	defer x.metaMu.Unlock()
	if old, ok := x.meta[nsExtAuthz]; ok {
		merged := proto.Clone(old).(*structpb.Struct)
		proto.Merge(merged, md)
		md = merged
	}
	x.meta[nsExtAuthz] = md
}

func (x *exchange) callCheck(ctx context.Context, a *authzConf, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	release, ok := x.e.acquire(a.cluster)
	if !ok {
		return nil, fmt.Errorf("cluster %s: circuit breaker overflow", a.cluster)
	}
	defer release()
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	ctx = withInitialMetadata(ctx, a.metadata)
	var opts []grpc.CallOption
	if a.authority != "" {
		opts = append(opts, grpc.CallAuthority(a.authority))
	}
	resp, err := authv3.NewAuthorizationClient(x.e.conns[a.cluster]).Check(ctx, req, opts...)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	return resp, nil
}

func withInitialMetadata(ctx context.Context, md [][2]string) context.Context {
	for _, kv := range md {
		ctx = metadata.AppendToOutgoingContext(ctx, kv[0], kv[1])
	}
	return ctx
}

// checkAttributes shapes AttributeContext as Envoy's gRPC ext_authz client does.
func (x *exchange) checkAttributes() *authv3.AttributeContext {
	h := x.wireRequestHeaders()
	hr := &authv3.AttributeContext_HttpRequest{
		Id:       x.id,
		Method:   x.method,
		Path:     x.path,
		Host:     x.authority,
		Scheme:   x.scheme,
		Protocol: x.protocol,
		Size:     x.r.ContentLength,
	}
	if x.e.p.authz.rawHeaders {
		hr.HeaderMap = h.headerMap()
	} else {
		hr.Headers = h.joined()
	}
	return &authv3.AttributeContext{
		Source:            &authv3.AttributeContext_Peer{Address: sockAddr(x.src)},
		Destination:       &authv3.AttributeContext_Peer{Address: sockAddr(x.dst)},
		Request:           &authv3.AttributeContext_Request{Time: timestamppb.New(x.start), Http: hr},
		ContextExtensions: x.route.authzExt,
		MetadataContext:   &corev3.Metadata{},
	}
}

func sockAddr(a addrPort) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: a.host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: a.port},
	}}}
}

// metadataContext is the ext_proc metadata_context: the forwarded namespaces present so far.
func (x *exchange) metadataContext(ns []string) *corev3.Metadata {
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	x.metaMu.Lock()
	defer x.metaMu.Unlock()
	for _, n := range ns {
		if s, ok := x.meta[n]; ok {
			md.FilterMetadata[n] = s
		}
	}
	return md
}
