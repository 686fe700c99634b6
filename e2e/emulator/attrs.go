package emulator

import (
	"net"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
)

// attributes evaluates the configured attribute expressions (a fixed set, see knownAttrs) into the
// Struct Envoy sends under ProcessingRequest.attributes["envoy.filters.http.ext_proc"].
func (x *exchange) attributes(names []string) *structpb.Struct {
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	path, query, _ := strings.Cut(x.path, "?")
	for _, n := range names {
		var v *structpb.Value
		switch n {
		case "request.id":
			v = structpb.NewStringValue(x.id)
		case "request.path":
			v = structpb.NewStringValue(x.path)
		case "request.url_path":
			v = structpb.NewStringValue(path)
		case "request.query":
			v = structpb.NewStringValue(query)
		case "request.method":
			v = structpb.NewStringValue(x.method)
		case "request.host":
			v = structpb.NewStringValue(x.authority)
		case "request.scheme":
			v = structpb.NewStringValue(x.scheme)
		case "request.protocol":
			v = structpb.NewStringValue(x.protocol)
		case "source.address":
			v = structpb.NewStringValue(net.JoinHostPort(x.src.host, strconv.Itoa(int(x.src.port))))
		case "source.port":
			v = structpb.NewNumberValue(float64(x.src.port))
		case "destination.address":
			v = structpb.NewStringValue(net.JoinHostPort(x.dst.host, strconv.Itoa(int(x.dst.port))))
		case "destination.port":
			v = structpb.NewNumberValue(float64(x.dst.port))
		case "connection.mtls":
			v = structpb.NewBoolValue(false)
		case "xds.route_name":
			v = structpb.NewStringValue(x.route.name)
		case "xds.cluster_name":
			v = structpb.NewStringValue(x.route.cluster)
		case "response.code":
			v = structpb.NewNumberValue(float64(x.code))
		default:
			continue
		}
		s.Fields[n] = v
	}
	return s
}
