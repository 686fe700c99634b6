// Package netx opens the service's listeners: TCP or a Unix domain socket, plaintext, TLS or mutual TLS.
// Certificates and client CAs are reloaded from disk without a restart; a reload that fails keeps the
// last good material, so a half-written rotation never takes a port down. Private keys are never logged.
package netx

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// Supported values of [TLSConfig.MinVersion].
const (
	TLS12 = "1.2"
	TLS13 = "1.3"
)

// DefaultReloadInterval is how often certificate files are checked when [TLSConfig.ReloadInterval] is zero.
const DefaultReloadInterval = 10 * time.Second

// TLSConfig is one listener's TLS settings. TLS is off when no file is set (plaintext, meant for loopback).
// Setting ClientCAFile turns on mutual TLS: every client must present a certificate issued by one of its CAs.
type TLSConfig struct {
	CertFile       string        `yaml:"cert_file"`
	KeyFile        string        `yaml:"key_file"`
	ClientCAFile   string        `yaml:"client_ca_file"`
	MinVersion     string        `yaml:"min_version"`     // "1.2" (default when empty) or "1.3"
	ReloadInterval time.Duration `yaml:"reload_interval"` // zero means DefaultReloadInterval
}

// DefaultTLSConfig returns the defaults the service config is decoded onto: TLS off, TLS 1.2 minimum,
// files checked every 10s once TLS is turned on.
func DefaultTLSConfig() TLSConfig {
	return TLSConfig{MinVersion: TLS12, ReloadInterval: DefaultReloadInterval}
}

// Enabled reports whether the listener speaks TLS. Any file set counts, so a lone client_ca_file is
// reported by Validate instead of silently serving plaintext.
func (c TLSConfig) Enabled() bool {
	return c.CertFile != "" || c.KeyFile != "" || c.ClientCAFile != ""
}

// Validate returns every problem at once. When TLS is enabled it also reads the files: the certificate
// and key must load as a pair and the client CA file must hold at least one certificate.
func (c TLSConfig) Validate() error {
	var errs []error
	if _, err := c.minVersion(); err != nil {
		errs = append(errs, err)
	}
	if c.ReloadInterval < 0 {
		errs = append(errs, errors.New("reload_interval: must not be negative"))
	}
	if !c.Enabled() {
		return errors.Join(errs...)
	}
	switch {
	case c.CertFile == "" && c.KeyFile == "":
		errs = append(errs, errors.New("cert_file: required with client_ca_file"),
			errors.New("key_file: required with client_ca_file"))
	case c.CertFile == "":
		errs = append(errs, errors.New("cert_file: required with key_file"))
	case c.KeyFile == "":
		errs = append(errs, errors.New("key_file: required with cert_file"))
	default:
		errs = append(errs, checkPair(c.CertFile, c.KeyFile))
	}
	if c.ClientCAFile != "" {
		if _, err := loadPool(c.ClientCAFile); err != nil {
			errs = append(errs, fmt.Errorf("client_ca_file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// checkPair reports which file of the pair is at fault, so the message names the right field.
func checkPair(certFile, keyFile string) error {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("key_file: %w", err)
	}
	if _, err := parsePair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("cert_file: %w", err)
	}
	return nil
}

func (c TLSConfig) minVersion() (uint16, error) {
	switch c.MinVersion {
	case "", TLS12:
		return tls.VersionTLS12, nil
	case TLS13:
		return tls.VersionTLS13, nil
	default:
		return 0, fmt.Errorf("min_version: must be %q or %q, got %q", TLS12, TLS13, c.MinVersion)
	}
}

func (c TLSConfig) interval() time.Duration {
	if c.ReloadInterval <= 0 {
		return DefaultReloadInterval
	}
	return c.ReloadInterval
}

// parsePair loads a certificate chain and its key. The error never contains key material:
// crypto/tls reports only the kind of mismatch.
func parsePair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load key pair: %w", err)
	}
	return &cert, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err // an *fs.PathError already names the operation and the file
	}
	return parsePool(b)
}

// parsePool is strict where x509.CertPool.AppendCertsFromPEM is lenient: a block that is not a
// certificate, or a certificate that does not parse, refuses the whole file instead of being skipped.
func parsePool(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("block %d: unexpected PEM type %q", n+1, blk.Type)
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificates found")
	}
	return pool, nil
}
