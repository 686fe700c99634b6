package extproc

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpguard/mcpguard/identity"
)

func metadataOf(subject string) *corev3.Metadata {
	id := identity.Identity{Subject: subject, Issuer: "https://issuer.example", ClientID: "c1", Scopes: []string{"mcp:tools"}, Groups: []string{"ops"}}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{identity.Namespace: id.Struct()}}
}

// envoyMessages are ProcessingRequests as Envoy sends them: headers (with attributes on
// the first), a body, response headers, each with the same metadata_context.
func envoyMessages(t testing.TB, subject string) [][]byte {
	meta := metadataOf(subject)
	hdrs := &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: ":method", RawValue: []byte("POST")}, {Key: "content-type", RawValue: []byte("application/json")}}}
	msgs := []*extprocv3.ProcessingRequest{
		{
			Request:         &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hdrs}},
			MetadataContext: meta,
			Attributes: map[string]*structpb.Struct{"envoy.filters.http.ext_proc": {Fields: map[string]*structpb.Value{
				"request.id": structpb.NewStringValue("r1"),
			}}},
		},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`), EndOfStream: true}}, MetadataContext: meta},
		{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: hdrs, EndOfStream: true}}, MetadataContext: meta, ObservabilityMode: true},
	}
	var out [][]byte
	for _, m := range msgs {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

func TestUnmarshalMatchesProto(t *testing.T) {
	c := NewCodec()
	for _, b := range envoyMessages(t, "svc-a") {
		got, want := &extprocv3.ProcessingRequest{}, &extprocv3.ProcessingRequest{}
		require.NoError(t, c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got))
		require.NoError(t, proto.Unmarshal(b, want))
		require.True(t, proto.Equal(want, got), "got %v\nwant %v", got, want)
	}
	require.Len(t, c.cache, 1, "three messages of one caller share one decoded metadata_context")
}

func TestMetadataSharedAcrossMessages(t *testing.T) {
	c := NewCodec()
	msgs := envoyMessages(t, "svc-a")
	a, b := &extprocv3.ProcessingRequest{}, &extprocv3.ProcessingRequest{}
	require.NoError(t, c.unmarshalRequest(msgs[0], a))
	require.NoError(t, c.unmarshalRequest(msgs[1], b))
	require.Same(t, a.GetMetadataContext(), b.GetMetadataContext())

	other := &extprocv3.ProcessingRequest{}
	require.NoError(t, c.unmarshalRequest(envoyMessages(t, "svc-b")[0], other))
	require.NotSame(t, a.GetMetadataContext(), other.GetMetadataContext())
	sub, err := identity.FromStruct(other.GetMetadataContext().GetFilterMetadata()[identity.Namespace])
	require.NoError(t, err)
	require.Equal(t, "svc-b", sub.Subject)
}

func TestCacheBounded(t *testing.T) {
	c := NewCodec()
	for i := range 3 * maxMetaEntries {
		req := &extprocv3.ProcessingRequest{}
		require.NoError(t, c.unmarshalRequest(envoyMessages(t, "svc-"+string(rune('a'+i%26))+string(rune(i)))[1], req))
		require.LessOrEqual(t, len(c.cache), maxMetaEntries)
	}
}

// Metadata larger than the cache takes, twice in one message, or of the wrong wire type is
// decoded by proto.Unmarshal as a whole, and lands in no cache.
func TestUnusualMetadataBypassesCache(t *testing.T) {
	msg := envoyMessages(t, "svc-a")[1]
	big := metadataOf(string(make([]byte, maxMetaKey)))
	bigMsg, err := proto.Marshal(&extprocv3.ProcessingRequest{MetadataContext: big})
	require.NoError(t, err)
	metaBytes, err := proto.Marshal(metadataOf("svc-z"))
	require.NoError(t, err)
	twice := protowire.AppendBytes(protowire.AppendTag(append([]byte(nil), msg...), metadataField, protowire.BytesType), metaBytes)
	wrongType := protowire.AppendVarint(protowire.AppendTag(nil, metadataField, protowire.VarintType), 1)
	for name, b := range map[string][]byte{"big": bigMsg, "twice": twice, "wrong type": wrongType} {
		c := NewCodec()
		got, want := &extprocv3.ProcessingRequest{}, &extprocv3.ProcessingRequest{}
		gotErr, wantErr := c.unmarshalRequest(b, got), proto.Unmarshal(b, want)
		require.Equal(t, wantErr == nil, gotErr == nil, name)
		if wantErr == nil {
			require.True(t, proto.Equal(want, got), name)
		}
		require.Empty(t, c.cache, name)
	}
}

func TestMarshalMatchesProto(t *testing.T) {
	c := NewCodec()
	for _, m := range []proto.Message{
		&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}},
		&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}, Body: make([]byte, 64<<10), Details: "denied",
		}}},
		&authv3.CheckResponse{DynamicMetadata: metadataOf("svc-a").GetFilterMetadata()[identity.Namespace]},
	} {
		data, err := c.Marshal(m)
		require.NoError(t, err)
		got := m.ProtoReflect().New().Interface()
		require.NoError(t, proto.Unmarshal(data.Materialize(), got))
		require.True(t, proto.Equal(m, got))
		data.Free()
	}
}

// FuzzUnmarshal holds the codec to proto.Unmarshal: the same error or the same message,
// for any bytes.
func FuzzUnmarshal(f *testing.F) {
	for _, b := range envoyMessages(f, "svc-a") {
		f.Add(b)
	}
	f.Add([]byte{0x42, 0x02, 0x0a, 0x00})
	f.Add([]byte{0x42, 0x80})
	c := NewCodec()
	f.Fuzz(func(t *testing.T, b []byte) {
		got, want := &extprocv3.ProcessingRequest{}, &extprocv3.ProcessingRequest{}
		gotErr, wantErr := c.unmarshalRequest(b, got), proto.Unmarshal(b, want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("codec error %v, proto error %v", gotErr, wantErr)
		}
		if wantErr == nil && !proto.Equal(want, got) {
			t.Fatalf("codec decoded %v, proto %v", got, want)
		}
	})
}
