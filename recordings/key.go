package recordings

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LoadKey reads the PEM (PKCS#8) Ed25519 private key at path. When the file does not
// exist and create is set, a new key is generated and written (0600); created reports it.
func LoadKey(path string, create bool) (key ed25519.PrivateKey, created bool, err error) {
	data, err := os.ReadFile(path) //nolint:gosec // G703: the key path is the operator's configuration
	if errors.Is(err, os.ErrNotExist) && create {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, false, fmt.Errorf("generate signing key: %w", gerr)
		}
		der, merr := x509.MarshalPKCS8PrivateKey(priv)
		if merr != nil {
			return nil, false, fmt.Errorf("encode signing key: %w", merr)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil { //nolint:gosec // G703: as above
			return nil, false, fmt.Errorf("create key dir: %w", err)
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := writeFileSync(path, out, 0o600); err != nil {
			return nil, false, fmt.Errorf("write signing key: %w", err)
		}
		return priv, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read signing key: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, false, fmt.Errorf("signing key %s: not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("parse signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, false, fmt.Errorf("signing key %s: not Ed25519", path)
	}
	return priv, false, nil
}

// EncodePublicKey is the base64 form of pub used in config and on the command line.
func EncodePublicKey(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// KeyID is a short fingerprint of pub recorded in manifests.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// writeFileSync writes data to path atomically and durably (temp file, fsync, rename, dir fsync).
func writeFileSync(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil { //nolint:gosec // G703: callers pass configured paths or validated keys
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // G703: a directory this package created
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
