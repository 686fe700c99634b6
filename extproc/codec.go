package extproc

import (
	"fmt"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Cache bounds: a metadata_context larger than maxMetaKey bytes is decoded every time, and
// the cache is emptied when it holds maxMetaEntries (distinct callers in flight are far fewer).
const (
	maxMetaKey     = 4 << 10
	maxMetaEntries = 1024
)

// metadataField is the field number of ProcessingRequest.metadata_context.
var metadataField = (&extprocv3.ProcessingRequest{}).ProtoReflect().Descriptor().Fields().ByName("metadata_context").Number()

// Codec is the gRPC codec for the server that serves ext_proc (and ext_authz beside it):
// protobuf, as grpc-go's own codec, with two shortcuts for what Envoy sends and receives most.
//
//   - Every ext_proc ProcessingRequest carries metadata_context: the ext_authz namespace
//     with the caller's identity, the same bytes on every message of a stream and on every
//     stream of the same caller. Decoding it is most of the allocations of a small message
//     (a Struct is maps of Values). The codec decodes each distinct metadata_context once
//     and hands out the decoded message, read-only, from a bounded cache.
//   - Responses that go-control-plane generated vtprotobuf marshalling for are marshalled
//     with it instead of reflection.
//
// The result of Unmarshal is the message proto.Unmarshal would produce (FuzzUnmarshal holds
// it to that); anything unusual (a malformed message, metadata_context twice or larger
// than the cache takes) goes through proto.Unmarshal unchanged.
type Codec struct {
	base encoding.CodecV2

	mu    sync.RWMutex
	cache map[string]*corev3.Metadata
}

// NewCodec returns a codec with an empty metadata cache; internal/app serves gRPC with it
// (grpc.ForceServerCodecV2).
func NewCodec() *Codec {
	return &Codec{base: encoding.GetCodecV2("proto"), cache: make(map[string]*corev3.Metadata)}
}

// Name is "proto": the codec speaks plain protobuf on the wire.
func (c *Codec) Name() string { return "proto" }

// vtMessage is what go-control-plane's vtprotobuf code generates for its messages.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVTStrict([]byte) (int, error)
}

// Marshal uses the generated vtprotobuf marshaller when the message has one, grpc's proto
// codec otherwise.
func (c *Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMessage)
	if !ok {
		return c.base.Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBufferVTStrict(buf); err != nil {
			return nil, fmt.Errorf("marshal %T: %w", v, err)
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVTStrict((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, fmt.Errorf("marshal %T: %w", v, err)
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal decodes data into v; a ProcessingRequest's metadata_context comes from the cache.
func (c *Codec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*extprocv3.ProcessingRequest)
	if !ok {
		return c.base.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return c.unmarshalRequest(buf.ReadOnlyData(), req)
}

// unmarshalRequest decodes b into req as proto.Unmarshal does. The fields before and after
// the one metadata_context are decoded as two merged halves (the protobuf encoding of a
// message is the concatenation of its fields, and decoding concatenated encodings merges
// them), and metadata_context is looked up by its bytes.
func (c *Codec) unmarshalRequest(b []byte, req *extprocv3.ProcessingRequest) error {
	start, end, found := -1, -1, 0
	for off := 0; off < len(b); {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return proto.Unmarshal(b, req)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		if m < 0 {
			return proto.Unmarshal(b, req)
		}
		if num == metadataField {
			found++
			if typ != protowire.BytesType {
				return proto.Unmarshal(b, req)
			}
			start, end = off, off+n+m
		}
		off += n + m
	}
	if found != 1 {
		return proto.Unmarshal(b, req)
	}
	_, _, n := protowire.ConsumeTag(b[start:])
	value, m := protowire.ConsumeBytes(b[start+n : end])
	if m < 0 || len(value) > maxMetaKey {
		return proto.Unmarshal(b, req)
	}
	meta, err := c.metadata(value)
	if err != nil {
		return proto.Unmarshal(b, req) // the same error, from the whole message
	}
	if err := proto.Unmarshal(b[:start], req); err != nil {
		return err
	}
	if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(b[end:], req); err != nil {
		return err
	}
	req.MetadataContext = meta
	return nil
}

// metadata returns the decoded metadata_context for its encoding, shared and read-only.
func (c *Codec) metadata(value []byte) (*corev3.Metadata, error) {
	c.mu.RLock()
	meta, ok := c.cache[string(value)]
	c.mu.RUnlock()
	if ok {
		return meta, nil
	}
	meta = &corev3.Metadata{}
	if err := proto.Unmarshal(value, meta); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.cache) >= maxMetaEntries {
		clear(c.cache)
	}
	c.cache[string(value)] = meta
	c.mu.Unlock()
	return meta, nil
}
