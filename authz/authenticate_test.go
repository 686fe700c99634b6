package authz

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAuthenticate(t *testing.T) {
	e := newEnv(t, nil)
	const approverAud = "https://mcpguard.example.com/approvals"
	good := e.iss.Claims(approverAud, "")
	good["groups"] = []string{"dba"}
	expired := e.iss.Claims(approverAud, "")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	expired["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	tests := []struct {
		name     string
		token    string
		audience string
		ok       bool
	}{
		{name: "valid", token: e.iss.Mint(good), audience: approverAud, ok: true},
		{name: "wrong audience", token: e.iss.Mint(e.iss.Claims(testAudience, "")), audience: approverAud},
		{name: "expired", token: e.iss.Mint(expired), audience: approverAud},
		{name: "garbage", token: "not.a.jwt", audience: approverAud},
		{name: "empty", token: "", audience: approverAud},
		{name: "no audience configured", token: e.iss.Mint(good), audience: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := e.v.Authenticate(t.Context(), tc.token, tc.audience)
			if !tc.ok {
				require.Error(t, err)
				require.Empty(t, id.Subject)
				return
			}
			require.NoError(t, err)
			require.Equal(t, good["sub"], id.Subject)
			require.Equal(t, e.iss.URL, id.Issuer)
			require.Equal(t, []string{"dba"}, id.Groups)
		})
	}
}
