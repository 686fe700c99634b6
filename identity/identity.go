// Package identity is the caller identity that ext_authz establishes and ext_proc trusts.
//
// authz and extproc never import each other: authz encodes an [Identity] into the
// ext_authz CheckResponse dynamic metadata, Envoy forwards that namespace to ext_proc
// as metadata_context, and extproc decodes it here. The encoding is this package's contract.
package identity

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

// Namespace is the dynamic-metadata namespace under which Envoy stores what ext_authz
// returns; ext_proc receives it in metadata_context.filter_metadata[Namespace].
const Namespace = "envoy.filters.http.ext_authz"

// Key is the field of the ext_authz dynamic metadata that holds the identity.
const Key = "mcpguard_identity"

// ErrMissing reports metadata without an identity: the request did not pass ext_authz.
var ErrMissing = errors.New("identity metadata missing")

// Identity is a verified caller: a non-human identity from an Okta (or other OIDC) token.
type Identity struct {
	Subject   string    `json:"subject"`
	ClientID  string    `json:"client_id"`
	Issuer    string    `json:"issuer"`
	Scopes    []string  `json:"scopes"`
	Groups    []string  `json:"groups"`
	TokenID   string    `json:"token_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Struct encodes the identity as the ext_authz dynamic metadata: {Key: {...}}.
func (id Identity) Struct() *structpb.Struct {
	inner := &structpb.Struct{Fields: map[string]*structpb.Value{
		"subject":    structpb.NewStringValue(id.Subject),
		"client_id":  structpb.NewStringValue(id.ClientID),
		"issuer":     structpb.NewStringValue(id.Issuer),
		"scopes":     strings(id.Scopes),
		"groups":     strings(id.Groups),
		"token_id":   structpb.NewStringValue(id.TokenID),
		"expires_at": structpb.NewNumberValue(float64(id.ExpiresAt.Unix())),
	}}
	return &structpb.Struct{Fields: map[string]*structpb.Value{Key: structpb.NewStructValue(inner)}}
}

// FromStruct decodes what [Identity.Struct] produced, i.e. the content of the
// ext_authz namespace. A missing identity or subject is [ErrMissing].
func FromStruct(s *structpb.Struct) (Identity, error) {
	v, ok := s.GetFields()[Key]
	if !ok || v.GetStructValue() == nil {
		return Identity{}, ErrMissing
	}
	f := v.GetStructValue().GetFields()
	id := Identity{
		Subject:  f["subject"].GetStringValue(),
		ClientID: f["client_id"].GetStringValue(),
		Issuer:   f["issuer"].GetStringValue(),
		TokenID:  f["token_id"].GetStringValue(),
	}
	var err error
	if id.Scopes, err = list(f["scopes"]); err != nil {
		return Identity{}, fmt.Errorf("identity scopes: %w", err)
	}
	if id.Groups, err = list(f["groups"]); err != nil {
		return Identity{}, fmt.Errorf("identity groups: %w", err)
	}
	if n, ok := f["expires_at"].GetKind().(*structpb.Value_NumberValue); ok {
		id.ExpiresAt = time.Unix(int64(n.NumberValue), 0).UTC()
	}
	if id.Subject == "" || id.Issuer == "" {
		return Identity{}, ErrMissing
	}
	return id, nil
}

func strings(ss []string) *structpb.Value {
	vals := make([]*structpb.Value, len(ss))
	for i, s := range ss {
		vals[i] = structpb.NewStringValue(s)
	}
	return structpb.NewListValue(&structpb.ListValue{Values: vals})
}

func list(v *structpb.Value) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	l := v.GetListValue()
	if l == nil {
		return nil, errors.New("not a list")
	}
	out := make([]string, 0, len(l.GetValues()))
	for _, e := range l.GetValues() {
		s, ok := e.GetKind().(*structpb.Value_StringValue)
		if !ok {
			return nil, errors.New("element not a string")
		}
		out = append(out, s.StringValue)
	}
	return out, nil
}
