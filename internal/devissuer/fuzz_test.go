package devissuer

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"net/http"
	"net/url"
	"testing"
)

// FuzzParseKey feeds arbitrary key files to the loader: it must never panic, and any key it accepts
// must fit the configured algorithm and yield a public JWK.
func FuzzParseKey(f *testing.F) {
	for _, alg := range []string{ES256, RS256} {
		b, err := generate(alg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, alg == RS256)
		f.Add(b, alg != RS256)
	}
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"), false)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n"), false)
	f.Add([]byte(""), true)
	f.Fuzz(func(t *testing.T, b []byte, rs bool) {
		alg := ES256
		if rs {
			alg = RS256
		}
		k, err := parseKey(b, alg)
		if err != nil {
			return
		}
		switch k.(type) {
		case *ecdsa.PrivateKey:
			if alg != ES256 {
				t.Fatalf("ECDSA key accepted for %s", alg)
			}
		case *rsa.PrivateKey:
			if alg != RS256 {
				t.Fatalf("RSA key accepted for %s", alg)
			}
		default:
			t.Fatalf("unexpected key type %T", k)
		}
		j, err := publicJWK(k, alg)
		if err != nil || j.Kid == "" {
			t.Fatalf("accepted key has no JWK: %v", err)
		}
	})
}

// FuzzIssuerURL checks that every issuer URL Validate accepts can be served: its path must build
// valid ServeMux patterns (a bad pattern panics at registration).
func FuzzIssuerURL(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:9002/dev", "https://h", "http://h/a/b", "http://h/{x}", "http://h/dev/", "http://h/%2F",
		"http://h/a b", "http://u@h/dev", "http://h/dev?q", "http://h/dev#f", "http:dev", "//h/dev",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validateIssuer(s) != nil {
			return
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("accepted unparsable issuer %q", s)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			t.Fatalf("accepted non-http issuer %q", s)
		}
		mux := http.NewServeMux()
		mux.Handle("GET "+u.Path+"/.well-known/openid-configuration", http.NotFoundHandler())
		mux.Handle("GET "+u.Path+"/keys", http.NotFoundHandler())
		mux.Handle(u.Path+"/", http.NotFoundHandler())
	})
}
