package devissuer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	pemType  = "PRIVATE KEY" // PKCS #8
	rsaBits  = 2048
	keyMode  = 0o600
	dirMode  = 0o700
	maxBytes = 64 << 10 // far above any key this package writes; bounds reads of a wrong file
)

// loadOrCreate returns the key file's content, creating the file first if it does not exist.
// Creation is safe against a concurrent creator: the key is written in full to a temporary file and
// hard-linked into place, which fails if the name already exists; everyone then reads the winner's file.
func loadOrCreate(path, alg string) ([]byte, error) {
	b, err := readKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	if err := create(path, alg); err != nil {
		return nil, err
	}
	return readKey(path)
}

func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s: mode %04o lets other users read it, want %04o", path, perm, keyMode)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if len(b) > maxBytes {
		return nil, fmt.Errorf("key file %s: larger than %d bytes", path, maxBytes)
	}
	return b, nil
}

func create(path, alg string) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create key dir: %w", err)
	}
	pemBytes, err := generate(alg)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".key-*.tmp") // created with mode 0600
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	defer func() {
		if rmErr := os.Remove(tmp.Name()); rmErr != nil && err == nil {
			err = fmt.Errorf("remove temporary key file: %w", rmErr)
		}
	}()
	_, werr := tmp.Write(pemBytes)
	clear(pemBytes)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write key file: %w", werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("install key file: %w", err)
	}
	return nil
}

func generate(alg string) ([]byte, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		key, err = rsa.GenerateKey(rand.Reader, rsaBits)
	default:
		return nil, fmt.Errorf("generate key: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// parseKey accepts exactly one PKCS #8 PEM block holding a key that fits alg: a P-256 ECDSA key for
// ES256, an RSA key of at least 2048 bits for RS256. Anything else is refused, never replaced.
func parseKey(b []byte, alg string) (crypto.Signer, error) {
	blk, rest := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("parse key: no PEM block")
	}
	if blk.Type != pemType {
		return nil, fmt.Errorf("parse key: PEM type %q, want %q", blk.Type, pemType)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("parse key: unexpected data after the key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse key: %w", err)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if alg != ES256 || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("parse key: ECDSA %s key does not fit %s", k.Curve.Params().Name, alg)
		}
		return k, nil
	case *rsa.PrivateKey:
		if alg != RS256 || k.N.BitLen() < rsaBits {
			return nil, fmt.Errorf("parse key: %d-bit RSA key does not fit %s", k.N.BitLen(), alg)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("parse key: %T does not fit %s", k, alg)
	}
}
