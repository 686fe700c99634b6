package identity

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestRoundTrip(t *testing.T) {
	in := Identity{
		Subject: "agent-1", ClientID: "0oa1", Issuer: "https://idp.example/oauth2/default",
		Scopes: []string{"mcp:tools"}, Groups: []string{"dba", "ops"}, TokenID: "jti-1",
		ExpiresAt: time.Unix(1_900_000_000, 0).UTC(),
	}
	out, err := FromStruct(in.Struct())
	require.NoError(t, err)
	require.Equal(t, in, out)
}

func TestFromStructRejects(t *testing.T) {
	cases := map[string]*structpb.Struct{
		"nil":        nil,
		"empty":      {},
		"no subject": Identity{Issuer: "i"}.Struct(),
		"no issuer":  Identity{Subject: "s"}.Struct(),
		"wrong kind": {Fields: map[string]*structpb.Value{Key: structpb.NewStringValue("x")}},
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := FromStruct(s)
			require.ErrorIs(t, err, ErrMissing)
		})
	}
	bad, err := structpb.NewStruct(map[string]any{Key: map[string]any{"subject": "s", "issuer": "i", "scopes": "x"}})
	require.NoError(t, err)
	_, err = FromStruct(bad)
	require.Error(t, err)
}
