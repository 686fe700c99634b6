package netx

import (
	"net"
	"strings"
	"testing"
)

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:9001", "[::1]:0", ":9002", "localhost:65535", "host:http", "1.2.3.4:99999",
		"unix:///run/x.sock", "unix:rel.sock", "unix://", "unix:", "unix://h/p", "unix:@abs", "tcp://a:1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		network, address, err := ParseAddr(addr)
		if err != nil {
			if network != "" || address != "" {
				t.Fatalf("error with results %q %q", network, address)
			}
			return
		}
		switch network {
		case Unix:
			if address == "" || strings.ContainsRune(address, 0) || !strings.HasPrefix(addr, "unix:") {
				t.Fatalf("bad unix result %q from %q", address, addr)
			}
		case TCP:
			if _, _, err := net.SplitHostPort(address); err != nil || address != addr {
				t.Fatalf("bad tcp result %q from %q: %v", address, addr, err)
			}
		default:
			t.Fatalf("unknown network %q", network)
		}
	})
}
