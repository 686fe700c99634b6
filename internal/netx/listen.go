package netx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Network names returned by [ParseAddr].
const (
	TCP  = "tcp"
	Unix = "unix"
)

// SocketMode is the permission of a Unix socket created by [Listen]: owner and group may connect.
const SocketMode fs.FileMode = 0o660

const unixPrefix = "unix:"

// ParseAddr splits a listen address into a network and an address for net.Listen. It accepts
// "host:port" with a numeric port (TCP), "unix:///abs/path" and "unix:path" (absolute or relative).
// Anything else, including other schemes and service names as ports, is refused.
func ParseAddr(addr string) (network, address string, err error) {
	if rest, ok := strings.CutPrefix(addr, unixPrefix); ok {
		p, err := unixPath(rest)
		if err != nil {
			return "", "", fmt.Errorf("parse unix address %q: %w", addr, err)
		}
		return Unix, p, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("parse tcp address %q: %w", addr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.FormatUint(n, 10) {
		return "", "", fmt.Errorf("parse tcp address %q: port must be a number from 0 to 65535", addr)
	}
	if !validHost(host) {
		return "", "", fmt.Errorf("parse tcp address %q: invalid host", addr)
	}
	return TCP, addr, nil
}

func unixPath(rest string) (string, error) {
	if r, ok := strings.CutPrefix(rest, "//"); ok {
		if !strings.HasPrefix(r, "/") {
			return "", errors.New("want unix:///absolute/path or unix:relative/path")
		}
		rest = r
	}
	if rest == "" {
		return "", errors.New("empty path")
	}
	if strings.ContainsRune(rest, 0) {
		return "", errors.New("path contains NUL")
	}
	if strings.HasPrefix(rest, "@") {
		return "", errors.New("abstract sockets are not supported")
	}
	p := filepath.Clean(rest)
	if p == "." || p == "/" || strings.HasSuffix(rest, "/") {
		return "", errors.New("path names a directory")
	}
	return p, nil
}

// validHost accepts an empty host (all interfaces), an IP literal or a DNS name.
func validHost(h string) bool {
	if h == "" || net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Listen opens addr (see [ParseAddr]). For a Unix socket it first removes a stale socket file left by a
// crashed process, but only if the file is a socket and nobody accepts on it; the new socket gets
// [SocketMode] and is removed when the listener is closed. Between bind and chmod the socket briefly has
// the process umask's mode, so keep it in a directory only the service's users can enter.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	network, address, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	if network == TCP {
		l, err := lc.Listen(ctx, TCP, address)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", address, err)
		}
		return l, nil
	}
	if err := removeStale(ctx, address); err != nil {
		return nil, err
	}
	l, err := lc.Listen(ctx, Unix, address)
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", address, err)
	}
	if ul, ok := l.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(true)
	}
	if err := os.Chmod(address, SocketMode); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	return l, nil
}

// probeTimeout bounds the connect attempt that tells a live socket from a stale one.
const probeTimeout = 2 * time.Second

func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat socket path: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("listen unix %s: file exists and is not a socket, refusing to remove it", path)
	}
	d := net.Dialer{Timeout: probeTimeout}
	c, err := d.DialContext(ctx, Unix, path)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("listen unix %s: another process is accepting on this socket", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe existing socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}
