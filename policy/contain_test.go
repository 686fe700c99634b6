package policy

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestContain(t *testing.T) {
	for _, c := range []struct {
		name    string
		f       func() (int, error)
		want    int
		wantErr error
	}{
		{"value passes", func() (int, error) { return 7, nil }, 7, nil},
		{"error passes", func() (int, error) { return 0, errShellDepth }, 0, errShellDepth},
		{"panic is a parse failure", func() (int, error) { panic("index out of range") }, 0, errParserFailed},
		{"panic after a partial result drops it", func() (int, error) {
			var s []int
			return 1, errors.New(string(rune(s[3])))
		}, 0, errParserFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := contain(c.f)
			require.Equal(t, c.want, got)
			require.ErrorIs(t, err, c.wantErr)
			if c.wantErr == nil {
				require.NoError(t, err)
			}
		})
	}
}
