package netx

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// eventually bounds waits for the Run loop; it only guards against hangs.
const eventually = 10 * time.Second

func TestHandshake(t *testing.T) {
	serverCA := newCA(t, "server ca")
	clientCA := newCA(t, "client ca")
	otherCA := newCA(t, "other ca")
	srv := serverCA.issue(t, true)
	good := clientCA.issue(t, false)
	foreign := otherCA.issue(t, false)

	f := newFiles(t)
	f.writeLeaf(t, srv)
	writeFile(t, f.ca, clientCA.pem)

	tests := []struct {
		name    string
		cfg     TLSConfig
		client  *tls.Certificate
		wantErr bool
	}{
		{name: "tls without client cert", cfg: TLSConfig{CertFile: f.cert, KeyFile: f.key}},
		{name: "tls ignores a client cert", cfg: TLSConfig{CertFile: f.cert, KeyFile: f.key}, client: &good.tls},
		{name: "tls 1.3 minimum", cfg: TLSConfig{CertFile: f.cert, KeyFile: f.key, MinVersion: TLS13}},
		{name: "mtls without client cert", cfg: TLSConfig{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca}, wantErr: true},
		{name: "mtls with a cert from another ca", cfg: TLSConfig{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca}, client: &foreign.tls, wantErr: true},
		{name: "mtls with the right cert", cfg: TLSConfig{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca}, client: &good.tls},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReloader(tt.cfg, newLogger(&logBuf{}))
			require.NoError(t, err)
			addr := serveTLS(t, r.ServerConfig())
			serial, err := dial(t, addr, pool(serverCA), tt.client)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, srv.serial, serial)
		})
	}
}

func TestMinVersionEnforced(t *testing.T) {
	ca := newCA(t, "ca")
	f := newFiles(t)
	f.writeLeaf(t, ca.issue(t, true))
	r, err := NewReloader(TLSConfig{CertFile: f.cert, KeyFile: f.key, MinVersion: TLS13}, newLogger(&logBuf{}))
	require.NoError(t, err)
	addr := serveTLS(t, r.ServerConfig())
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool(ca), ServerName: "localhost", MaxVersion: tls.VersionTLS12})
	if err == nil {
		_ = c.Close()
	}
	require.Error(t, err)
}

func TestReloadRotatesServerCert(t *testing.T) {
	ca := newCA(t, "ca")
	first, second := ca.issue(t, true), ca.issue(t, true)
	f := newFiles(t)
	f.writeLeaf(t, first)
	logs := &logBuf{}
	r, err := NewReloader(TLSConfig{CertFile: f.cert, KeyFile: f.key}, newLogger(logs))
	require.NoError(t, err)
	addr := serveTLS(t, r.ServerConfig())

	serial, err := dial(t, addr, pool(ca), nil)
	require.NoError(t, err)
	require.Equal(t, first.serial, serial)

	f.writeLeaf(t, second)
	serial, err = dial(t, addr, pool(ca), nil)
	require.NoError(t, err)
	require.Equal(t, first.serial, serial, "files alone change nothing until a reload")

	require.NoError(t, r.Reload())
	serial, err = dial(t, addr, pool(ca), nil)
	require.NoError(t, err)
	require.Equal(t, second.serial, serial)
	require.NotContains(t, logs.String(), "PRIVATE KEY")
}

func TestRunRotatesServerCert(t *testing.T) {
	ca := newCA(t, "ca")
	first, second := ca.issue(t, true), ca.issue(t, true)
	f := newFiles(t)
	f.writeLeaf(t, first)
	r, err := NewReloader(TLSConfig{CertFile: f.cert, KeyFile: f.key, ReloadInterval: 5 * time.Millisecond}, newLogger(&logBuf{}))
	require.NoError(t, err)
	runReloader(t, r)
	addr := serveTLS(t, r.ServerConfig())

	serial, err := dial(t, addr, pool(ca), nil)
	require.NoError(t, err)
	require.Equal(t, first.serial, serial)

	f.writeLeaf(t, second)
	require.Eventually(t, func() bool {
		serial, err := dial(t, addr, pool(ca), nil)
		return err == nil && serial == second.serial
	}, eventually, 5*time.Millisecond)
}

func TestReloadRotatesClientCA(t *testing.T) {
	serverCA, oldCA, newCA := newCA(t, "server"), newCA(t, "old clients"), newCA(t, "new clients")
	oldClient, newClient := oldCA.issue(t, false), newCA.issue(t, false)
	f := newFiles(t)
	f.writeLeaf(t, serverCA.issue(t, true))
	writeFile(t, f.ca, oldCA.pem)
	r, err := NewReloader(TLSConfig{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca}, newLogger(&logBuf{}))
	require.NoError(t, err)
	addr := serveTLS(t, r.ServerConfig())

	_, err = dial(t, addr, pool(serverCA), &oldClient.tls)
	require.NoError(t, err)
	_, err = dial(t, addr, pool(serverCA), &newClient.tls)
	require.Error(t, err)

	writeFile(t, f.ca, newCA.pem)
	require.NoError(t, r.Reload())

	_, err = dial(t, addr, pool(serverCA), &oldClient.tls)
	require.Error(t, err, "a client of the retired CA is refused")
	_, err = dial(t, addr, pool(serverCA), &newClient.tls)
	require.NoError(t, err)
}

func TestReloadFailureKeepsLastGood(t *testing.T) {
	ca := newCA(t, "ca")
	first, second := ca.issue(t, true), ca.issue(t, true)
	tests := []struct {
		name   string
		mutate func(t *testing.T, f files)
		want   string
	}{
		{name: "cert not pem", mutate: func(t *testing.T, f files) { writeFile(t, f.cert, []byte("garbage")) }, want: "load key pair"},
		{name: "key not pem", mutate: func(t *testing.T, f files) { writeFile(t, f.key, []byte("garbage")) }, want: "load key pair"},
		{name: "cert rotated before key", mutate: func(t *testing.T, f files) { writeFile(t, f.cert, second.certPEM) }, want: "load key pair"},
		{name: "cert removed", mutate: func(t *testing.T, f files) { require.NoError(t, os.Remove(f.cert)) }, want: "read certificate"},
		{name: "ca not pem", mutate: func(t *testing.T, f files) { writeFile(t, f.ca, []byte("garbage")) }, want: "parse client ca"},
		{name: "ca truncated", mutate: func(t *testing.T, f files) { writeFile(t, f.ca, ca.pem[:len(ca.pem)/2]) }, want: "parse client ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := ca.issue(t, false)
			f := newFiles(t)
			f.writeLeaf(t, first)
			writeFile(t, f.ca, ca.pem)
			logs := &logBuf{}
			r, err := NewReloader(TLSConfig{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, ReloadInterval: 5 * time.Millisecond}, newLogger(logs))
			require.NoError(t, err)
			addr := serveTLS(t, r.ServerConfig())

			tt.mutate(t, f)
			require.ErrorContains(t, r.Reload(), tt.want)

			runReloader(t, r)
			require.Eventually(t, func() bool {
				return containsCount(logs.String(), "tls reload failed") > 0
			}, eventually, 5*time.Millisecond)

			serial, err := dial(t, addr, pool(ca), &client.tls)
			require.NoError(t, err)
			require.Equal(t, first.serial, serial, "last good certificate still served")
			require.NotContains(t, logs.String(), "PRIVATE KEY")
			require.NotContains(t, logs.String(), "garbage")
		})
	}
}

func TestRunLogsEachFailureOnce(t *testing.T) {
	ca := newCA(t, "ca")
	f := newFiles(t)
	f.writeLeaf(t, ca.issue(t, true))
	logs := &logBuf{}
	r, err := NewReloader(TLSConfig{CertFile: f.cert, KeyFile: f.key, ReloadInterval: time.Millisecond}, newLogger(logs))
	require.NoError(t, err)
	// Drive the checks by hand, as the Run loop does on each tick.
	writeFile(t, f.cert, []byte("garbage"))
	for range 5 {
		r.check()
	}
	require.Equal(t, 1, containsCount(logs.String(), "tls reload failed"))
	// A repaired file clears the failure, so the next breakage is reported again.
	f.writeLeaf(t, ca.issue(t, true))
	r.check()
	writeFile(t, f.cert, []byte("garbage"))
	r.check()
	r.check()
	require.Equal(t, 2, containsCount(logs.String(), "tls reload failed"))
}

func TestReloaderLifecycle(t *testing.T) {
	ca := newCA(t, "ca")
	f := newFiles(t)
	f.writeLeaf(t, ca.issue(t, true))
	cfg := TLSConfig{CertFile: f.cert, KeyFile: f.key}

	t.Run("close stops run", func(t *testing.T) {
		r, err := NewReloader(cfg, newLogger(&logBuf{}))
		require.NoError(t, err)
		returned := make(chan struct{})
		started := make(chan struct{})
		go func() {
			close(started)
			r.Run(t.Context())
			close(returned)
		}()
		<-started
		require.Eventually(t, func() bool {
			r.lifeMu.Lock()
			defer r.lifeMu.Unlock()
			return r.running
		}, eventually, time.Millisecond)
		r.Close()
		select {
		case <-returned:
		case <-time.After(eventually):
			t.Fatal("Run did not return after Close")
		}
		r.Close() // idempotent
	})
	t.Run("close without run", func(t *testing.T) {
		r, err := NewReloader(cfg, newLogger(&logBuf{}))
		require.NoError(t, err)
		r.Close()
		r.Run(t.Context()) // returns at once: closed
	})
	t.Run("context stops run", func(t *testing.T) {
		r, err := NewReloader(cfg, newLogger(&logBuf{}))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			r.Run(ctx)
			close(done)
		}()
		cancel()
		select {
		case <-done:
		case <-time.After(eventually):
			t.Fatal("Run did not return after cancel")
		}
		r.Close()
	})
}

func TestGRPCOverMutualTLS(t *testing.T) {
	serverCA, clientCA := newCA(t, "server"), newCA(t, "clients")
	client := clientCA.issue(t, false)
	f := newFiles(t)
	f.writeLeaf(t, serverCA.issue(t, true))
	writeFile(t, f.ca, clientCA.pem)
	r, err := NewReloader(TLSConfig{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca}, newLogger(&logBuf{}))
	require.NoError(t, err)

	l, err := Listen(t.Context(), "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(r.ServerConfig("h2"))))
	healthpb.RegisterHealthServer(s, health.NewServer())
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Serve(l) })
	t.Cleanup(func() {
		s.Stop()
		wg.Wait()
	})

	tests := []struct {
		name    string
		certs   []tls.Certificate
		wantErr bool
	}{
		{name: "client certificate", certs: []tls.Certificate{client.tls}},
		{name: "no client certificate", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds := credentials.NewTLS(&tls.Config{RootCAs: pool(serverCA), ServerName: "localhost", Certificates: tt.certs, MinVersion: tls.VersionTLS12})
			conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(creds))
			require.NoError(t, err)
			defer conn.Close()
			resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
		})
	}
}

func TestHTTPServerNegotiatesALPN(t *testing.T) {
	ca := newCA(t, "ca")
	f := newFiles(t)
	f.writeLeaf(t, ca.issue(t, true))
	r, err := NewReloader(TLSConfig{CertFile: f.cert, KeyFile: f.key}, newLogger(&logBuf{}))
	require.NoError(t, err)

	tests := []struct {
		name   string
		protos []string
		want   string
	}{
		{name: "http2 and http1", protos: []string{"h2", "http/1.1"}, want: "HTTP/2.0"},
		{name: "http1 only", protos: []string{"http/1.1"}, want: "HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Listen(t.Context(), "127.0.0.1:0")
			require.NoError(t, err)
			srv := &http.Server{
				Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }),
				TLSConfig:         r.ServerConfig(tt.protos...),
				ReadHeaderTimeout: eventually,
			}
			var wg sync.WaitGroup
			wg.Go(func() { _ = srv.ServeTLS(l, "", "") })
			defer func() {
				_ = srv.Close()
				wg.Wait()
			}()
			c := &http.Client{Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: pool(ca), ServerName: "localhost", MinVersion: tls.VersionTLS12},
				ForceAttemptHTTP2: true,
			}}
			defer c.CloseIdleConnections()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+l.Addr().String()+"/", nil)
			require.NoError(t, err)
			resp, err := c.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tt.want, resp.Proto)
		})
	}
}

func TestServerConfigUnixSocket(t *testing.T) {
	ca := newCA(t, "ca")
	f := newFiles(t)
	srv := ca.issue(t, true)
	f.writeLeaf(t, srv)
	r, err := NewReloader(TLSConfig{CertFile: f.cert, KeyFile: f.key}, newLogger(&logBuf{}))
	require.NoError(t, err)
	path := t.TempDir() + "/t.sock"
	l, err := Listen(t.Context(), "unix://"+path)
	require.NoError(t, err)
	tl := tls.NewListener(l, r.ServerConfig())
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := tl.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.(*tls.Conn).HandshakeContext(t.Context())
	})
	defer func() {
		_ = tl.Close()
		wg.Wait()
	}()
	raw, err := net.Dial("unix", path)
	require.NoError(t, err)
	c := tls.Client(raw, &tls.Config{RootCAs: pool(ca), ServerName: "localhost", MinVersion: tls.VersionTLS12})
	defer c.Close()
	require.NoError(t, c.HandshakeContext(t.Context()))
	require.Equal(t, srv.serial, c.ConnectionState().PeerCertificates[0].SerialNumber.Int64())
}

func runReloader(t *testing.T, r *Reloader) {
	t.Helper()
	go r.Run(t.Context())
	t.Cleanup(r.Close)
}
