package recordingstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

// Test credentials of the versitygw root user.
const (
	AccessKey = "mcpguard-test"
	SecretKey = "mcpguard-test-secret"
)

// Server is a versitygw process serving a temporary directory (posix backend, versioning on).
type Server struct {
	Endpoint string
	root     string
	bin      string
	cmd      *exec.Cmd
	log      *bytes.Buffer
}

// Binary finds versitygw in PATH, in the module's bin/ (where `make test` builds it) or in
// $(go env GOPATH)/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if root, ok := moduleRoot(); ok {
		dirs = append(dirs, filepath.Join(root, "bin"))
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		dirs = append(dirs, filepath.Join(dir, "bin"))
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errMissing
}

// moduleRoot is the nearest directory above the working directory (a test's package
// directory) that holds a go.mod.
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// StartS3 starts versitygw on a random loopback port; it stops with the test, and what it
// printed is logged when the test failed.
func StartS3(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	require.NoError(t, err)
	dir := t.TempDir()
	s := &Server{root: dir, bin: bin}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.Endpoint = l.Addr().String()
	require.NoError(t, l.Close())
	s.Start(t)
	t.Cleanup(func() {
		s.Stop(t)
		if t.Failed() {
			t.Logf("versitygw log:\n%s", s.Log()) // read once the process is gone: no writer left
		}
	})
	return s
}

// Start (re)starts the server on its endpoint and waits until it answers.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	for _, d := range []string{"data", "versions"} {
		require.NoError(t, os.MkdirAll(filepath.Join(s.root, d), 0o750))
	}
	s.log = &bytes.Buffer{}
	s.cmd = exec.Command(s.bin, "--port", s.Endpoint, "--access", AccessKey, "--secret", SecretKey,
		"posix", "--versioning-dir", filepath.Join(s.root, "versions"), filepath.Join(s.root, "data"))
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, s.cmd.Start())
	c := s.Client(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not start: %v\n%s", err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (the data directory stays for a restart).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Client is a minio client for the server.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), BucketLookup: minio.BucketLookupPath, Region: "us-east-1"})
	require.NoError(t, err)
	return c
}

// Bucket creates a bucket (with Object Lock when lock is set) and returns a sink config for it.
func (s *Server) Bucket(t testing.TB, name string, lock bool) recordings.S3Config {
	t.Helper()
	err := s.Client(t).MakeBucket(t.Context(), name, minio.MakeBucketOptions{Region: "us-east-1", ObjectLocking: lock})
	require.NoError(t, err, "make bucket %s: %s", name, s.log)
	return recordings.S3Config{
		Endpoint: s.Endpoint, Region: "us-east-1", Bucket: name, PathStyle: true, Insecure: true,
		AccessKey: AccessKey, SecretKey: SecretKey,
	}
}

// Log returns what the server printed (for failure messages); call it once the server stopped.
func (s *Server) Log() string { return fmt.Sprint(s.log) }
