package app

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/internal/config"
)

func TestAdminPprofOnlyWhenEnabled(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := config.Default()
		cfg.Admin.Pprof = on
		mux, err := adminMux(&cfg, prometheus.NewRegistry(), func() error { return nil }, nil)
		require.NoError(t, err)
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1"} {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if on {
				require.Equal(t, http.StatusOK, rec.Code, path)
				require.NotEmpty(t, rec.Body.String(), path)
			} else {
				require.Equal(t, http.StatusNotFound, rec.Code, path)
			}
		}
	}
}
