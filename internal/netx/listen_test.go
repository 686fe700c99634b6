package netx

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseAddr(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		network string
		address string
		wantErr string
	}{
		{name: "loopback", addr: "127.0.0.1:9001", network: TCP, address: "127.0.0.1:9001"},
		{name: "ipv6", addr: "[::1]:9001", network: TCP, address: "[::1]:9001"},
		{name: "all interfaces", addr: ":9001", network: TCP, address: ":9001"},
		{name: "hostname", addr: "localhost:0", network: TCP, address: "localhost:0"},
		{name: "unix absolute", addr: "unix:///run/mcpguard/grpc.sock", network: Unix, address: "/run/mcpguard/grpc.sock"},
		{name: "unix short absolute", addr: "unix:/run/g.sock", network: Unix, address: "/run/g.sock"},
		{name: "unix relative", addr: "unix:data/g.sock", network: Unix, address: "data/g.sock"},
		{name: "unix cleaned", addr: "unix:./data/../g.sock", network: Unix, address: "g.sock"},
		{name: "no port", addr: "127.0.0.1", wantErr: "missing port"},
		{name: "named port", addr: "127.0.0.1:http", wantErr: "port must be a number"},
		{name: "port too large", addr: "127.0.0.1:65536", wantErr: "port must be a number"},
		{name: "port leading zero", addr: "127.0.0.1:09001", wantErr: "port must be a number"},
		{name: "scheme", addr: "tcp://127.0.0.1:9001", wantErr: "parse tcp address"},
		{name: "bad host", addr: "exa mple:80", wantErr: "invalid host"},
		{name: "unix host", addr: "unix://host/path", wantErr: "want unix:///absolute/path"},
		{name: "unix empty", addr: "unix:", wantErr: "empty path"},
		{name: "unix empty absolute", addr: "unix://", wantErr: "want unix:///absolute/path"},
		{name: "unix root", addr: "unix:///", wantErr: "names a directory"},
		{name: "unix dir", addr: "unix:/run/", wantErr: "names a directory"},
		{name: "unix abstract", addr: "unix:@mcpguard", wantErr: "abstract sockets"},
		{name: "unix nul", addr: "unix:/run/a\x00b", wantErr: "NUL"},
		{name: "empty", addr: "", wantErr: "parse tcp address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			network, address, err := ParseAddr(tt.addr)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.network, network)
			require.Equal(t, tt.address, address)
		})
	}
}

func TestListenTCP(t *testing.T) {
	l, err := Listen(t.Context(), "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	require.Equal(t, "tcp", l.Addr().Network())
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	require.NoError(t, c.Close())

	_, err = Listen(t.Context(), "127.0.0.1:http")
	require.ErrorContains(t, err, "port must be a number")
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string) // leaves something at path before Listen
		wantErr string
		kept    bool // the pre-existing file must survive a refused Listen
	}{
		{name: "fresh path"},
		{
			name: "stale socket is replaced",
			prepare: func(t *testing.T, path string) {
				l, err := net.Listen("unix", path)
				require.NoError(t, err)
				l.(*net.UnixListener).SetUnlinkOnClose(false)
				require.NoError(t, l.Close())
				fi, err := os.Lstat(path)
				require.NoError(t, err)
				require.Equal(t, fs.ModeSocket, fi.Mode().Type())
			},
		},
		{
			name: "live socket is not stolen",
			prepare: func(t *testing.T, path string) {
				l, err := net.Listen("unix", path)
				require.NoError(t, err)
				t.Cleanup(func() { _ = l.Close() })
			},
			wantErr: "another process is accepting",
			kept:    true,
		},
		{
			name: "regular file is not removed",
			prepare: func(t *testing.T, path string) {
				require.NoError(t, os.WriteFile(path, []byte("data"), 0o600))
			},
			wantErr: "not a socket, refusing to remove it",
			kept:    true,
		},
		{
			name: "directory is not removed",
			prepare: func(t *testing.T, path string) {
				require.NoError(t, os.Mkdir(path, 0o700))
			},
			wantErr: "not a socket",
			kept:    true,
		},
		{
			name: "symlink to a file is not followed",
			prepare: func(t *testing.T, path string) {
				target := path + ".target"
				require.NoError(t, os.WriteFile(target, []byte("data"), 0o600))
				require.NoError(t, os.Symlink(target, path))
			},
			wantErr: "not a socket",
			kept:    true,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, string(rune('a'+i))+".sock")
			if tt.prepare != nil {
				tt.prepare(t, path)
			}
			l, err := Listen(t.Context(), "unix://"+path)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				_, statErr := os.Lstat(path)
				require.Equal(t, tt.kept, statErr == nil, "pre-existing file kept")
				return
			}
			require.NoError(t, err)
			fi, err := os.Lstat(path)
			require.NoError(t, err)
			require.Equal(t, fs.ModeSocket, fi.Mode().Type())
			require.Equal(t, SocketMode, fi.Mode().Perm())

			c, err := net.Dial("unix", path)
			require.NoError(t, err)
			require.NoError(t, c.Close())

			require.NoError(t, l.Close())
			_, err = os.Lstat(path)
			require.ErrorIs(t, err, fs.ErrNotExist, "socket removed on Close")
		})
	}
}

func TestListenUnixRelative(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	l, err := Listen(t.Context(), "unix:g.sock")
	require.NoError(t, err)
	_, err = os.Lstat(filepath.Join(dir, "g.sock"))
	require.NoError(t, err)
	require.NoError(t, l.Close())
	_, err = os.Lstat(filepath.Join(dir, "g.sock"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}
