package recordings

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// S3 is a [Sink] on an S3-compatible bucket, applying Object Lock retention and
// server-side encryption per object as configured.
type S3 struct {
	c   *minio.Client
	cfg S3Config
}

var _ Sink = (*S3)(nil)

// NewS3 builds the client; it does not contact the server.
func NewS3(cfg S3Config) (*S3, error) {
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
	})
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds: creds, Secure: !cfg.Insecure, Region: cfg.Region, BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return &S3{c: c, cfg: cfg}, nil
}

// Put uploads the object with its retention and encryption settings.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	o := minio.PutObjectOptions{ContentType: "application/octet-stream", SendContentMd5: true}
	if strings.HasSuffix(key, manifestName) {
		o.ContentType = "application/json"
	}
	if m := s.cfg.ObjectLock.Mode; m != "" {
		o.Mode = minio.RetentionMode(m)
		o.RetainUntilDate = time.Now().Add(time.Duration(s.cfg.ObjectLock.Days) * 24 * time.Hour).UTC()
	}
	switch s.cfg.SSE {
	case "s3":
		o.ServerSideEncryption = encrypt.NewSSE()
	case "kms":
		sse, err := encrypt.NewSSEKMS(s.cfg.KMSKeyID, nil)
		if err != nil {
			return fmt.Errorf("put %s: sse-kms: %w", key, err)
		}
		o.ServerSideEncryption = sse
	}
	if _, err := s.c.PutObject(ctx, s.cfg.Bucket, key, bytes.NewReader(data), int64(len(data)), o); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Get downloads the object.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	obj, err := s.c.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, maxSegment+1))
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "NoSuchKey" {
			return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return b, nil
}

// List lists every key under prefix.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, o.Err)
		}
		keys = append(keys, o.Key)
	}
	sort.Strings(keys)
	return keys, nil
}

// Dirs lists the common prefixes one level below dir.
func (s *S3) Dirs(ctx context.Context, dir string) ([]string, error) {
	if dir != "" && !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	var names []string
	for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: false}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, o.Err)
		}
		if name, ok := strings.CutSuffix(o.Key[len(dir):], "/"); ok && name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Client exposes the minio client (tests check retention with it).
func (s *S3) Client() *minio.Client { return s.c }
