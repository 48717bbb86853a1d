package export

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/fhirgate/fhirgate/fhir"
)

// S3Config locates an S3-compatible bucket.
type S3Config struct {
	// Endpoint is host[:port] of the service, e.g. s3.amazonaws.com or
	// minio.local:9000.
	Endpoint string
	// Insecure talks plain HTTP (a local MinIO); default HTTPS.
	Insecure  bool
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
	// Prefix is prepended to every key, e.g. "fhirgate/exports/".
	Prefix string
	// PathStyle forces path-style bucket addressing (most non-AWS
	// services); default: chosen by the endpoint.
	PathStyle bool
	// Transport is the HTTP transport (tests); nil: the default.
	Transport http.RoundTripper
}

// S3Storage keeps export files in an S3-compatible bucket. Files are
// uploaded once finished (parts are written to the local spool first), and
// read back either through fhirgate (Range requests map onto ranged GETs)
// or by the client itself through a presigned URL.
type S3Storage struct {
	c      *minio.Client
	bucket string
	prefix string
}

// NewS3Storage connects to the bucket and checks that it exists.
func NewS3Storage(ctx context.Context, cfg S3Config) (*S3Storage, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("export s3: endpoint and bucket are required")
	}
	opts := &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    !cfg.Insecure,
		Region:    cfg.Region,
		Transport: cfg.Transport,
	}
	if cfg.PathStyle {
		opts.BucketLookup = minio.BucketLookupPath
	}
	c, err := minio.New(cfg.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("export s3: %w", err)
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("export s3: bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("export s3: bucket %s does not exist at %s", cfg.Bucket, cfg.Endpoint)
	}
	return &S3Storage{c: c, bucket: cfg.Bucket, prefix: cfg.Prefix}, nil
}

func (s *S3Storage) key(k string) string { return s.prefix + k }

// Put uploads the finished file, then removes it from the spool. The
// object is stored with Content-Encoding: gzip, so that a presigned
// download tells the client to decompress.
func (s *S3Storage) Put(ctx context.Context, key, path string) error {
	_, err := s.c.FPutObject(ctx, s.bucket, s.key(key), path, minio.PutObjectOptions{
		ContentType:     fhir.MediaNDJSON,
		ContentEncoding: "gzip",
		NumThreads:      1, // bounded memory; parts stream from the file
		// No aws-chunked streaming signature over plain HTTP: some
		// S3-compatible stores then keep "aws-chunked" in the object's
		// Content-Encoding, which presigned downloads would pass on.
		DisableContentSha256: true,
	})
	if err != nil {
		return fmt.Errorf("export s3: upload %s: %w", key, err)
	}
	return os.Remove(path)
}

// Open returns the object; reads and seeks map to ranged GETs.
func (s *S3Storage) Open(ctx context.Context, key string) (Object, error) {
	o, err := s.c.GetObject(ctx, s.bucket, s.key(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("export s3: %w", err)
	}
	st, err := o.Stat()
	if err != nil {
		o.Close()
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, ErrNotExist
		}
		return nil, fmt.Errorf("export s3: stat %s: %w", key, err)
	}
	return &s3Object{Object: o, size: st.Size, mod: st.LastModified}, nil
}

type s3Object struct {
	*minio.Object
	size int64
	mod  time.Time
}

func (o *s3Object) Size() int64        { return o.size }
func (o *s3Object) ModTime() time.Time { return o.mod }

// CanPresign is true.
func (s *S3Storage) CanPresign() bool { return true }

// Presign returns a presigned GET URL valid for ttl.
func (s *S3Storage) Presign(ctx context.Context, key string, ttl time.Duration) (string, error) {
	u, err := s.c.PresignedGetObject(ctx, s.bucket, s.key(key), ttl, nil)
	if err != nil {
		return "", fmt.Errorf("export s3: presign: %w", err)
	}
	return u.String(), nil
}

// Delete removes one object.
func (s *S3Storage) Delete(ctx context.Context, key string) error {
	return s.c.RemoveObject(ctx, s.bucket, s.key(key), minio.RemoveObjectOptions{})
}

// DeletePrefix removes every object under prefix.
func (s *S3Storage) DeletePrefix(ctx context.Context, prefix string) error {
	objs := s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true})
	var errs []error
	for o := range objs {
		if o.Err != nil {
			return fmt.Errorf("export s3: list %s: %w", prefix, o.Err)
		}
		if !strings.HasPrefix(o.Key, s.key(prefix)) {
			continue
		}
		if err := s.c.RemoveObject(ctx, s.bucket, o.Key, minio.RemoveObjectOptions{}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
