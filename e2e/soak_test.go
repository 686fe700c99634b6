package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/soak"
)

// TestSoakShort is the short soak of `make test`: under a minute of steady load with
// allowed, denied, masked and approved calls through the emulator, then the same checks as
// `make soak`: no goroutine or RSS growth after warm-up, every exchange recorded and
// `mcpguard recordings verify --all` passing after shutdown, no unexpected errors.
func TestSoakShort(t *testing.T) {
	require.NoError(t, suite.err, "the suite could not start mcpguard")
	c := soak.DefaultConfig()
	c.Duration, c.WarmUp, c.Sample = 45*time.Second, 10*time.Second, time.Second
	c.Rate, c.Workers, c.Reconnect = 20, 8, 25
	c.ApproverPoll = 100 * time.Millisecond
	var log strings.Builder
	o := soak.Options{
		Root: suite.root,
		Bin:  suiteBin(),
		Dir:  t.TempDir(),
		Log:  &log,
	}
	r, err := soak.Run(t.Context(), o, c)
	require.NoError(t, err, log.String())
	var out strings.Builder
	r.Print(&out)
	t.Log("\n" + out.String())
	require.NoError(t, r.Err(), log.String())

	for _, k := range soak.Kinds {
		require.Positive(t, r.ByKind[k].Calls, "%s calls were made", k)
	}
	require.Greater(t, r.Sessions, int64(c.Workers), "sessions were closed and replaced")
	require.Equal(t, r.Storage.Expected, r.Storage.Found)
	require.Equal(t, r.Storage.Expected, r.Requests, "every call got its expected answer and was recorded")
	require.Positive(t, r.Approved)
	require.Positive(t, r.Listings, "the approver listed pending requests")
}
