/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package storage is the controller's view of object storage: presigning archive URLs for the
// public endpoint and removing archives. The worker streams archives itself (internal/worker).
package storage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// DefaultRegion is used when none is configured. Presigning needs a region: without one
// minio-go asks the bucket's location from the endpoint, and the public endpoint is often
// unreachable from inside the cluster.
const DefaultRegion = "us-east-1"

// Config locates object storage. Endpoint is how the operator reaches it inside the cluster;
// PublicURL is how browsers reach it, and is what presigned URLs are signed for, because S3
// signatures cover the Host header.
type Config struct {
	Endpoint  string
	Secure    bool
	PublicURL string
	Region    string
	AccessKey string
	SecretKey string
	// SigningAccessKey and SigningSecretKey, when set, sign the presigned URLs instead of
	// AccessKey and SecretKey. A SigV4 URL carries its access key id to every client that gets
	// it, so signing with a key that may only read archives keeps the operator's own key private.
	SigningAccessKey string
	SigningSecretKey string
	// STSEndpoint is the URL of the STS service that mints worker credentials; empty means the
	// storage endpoint itself, which is where MinIO serves STS.
	STSEndpoint string
	// RoleARN is the role STS assumes for workers; AWS requires one, MinIO ignores it.
	RoleARN string
}

// Store presigns and deletes archives, and mints worker credentials.
type Store struct {
	cfg         Config
	internal    *minio.Client
	public      *minio.Client
	stsEndpoint string
	httpClient  *http.Client
}

// New builds clients for the internal and the public endpoint. It makes no network call.
func New(cfg Config) (*Store, error) {
	internal, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if (cfg.SigningAccessKey == "") != (cfg.SigningSecretKey == "") {
		return nil, errors.New("storage signing credentials need both an access key and a secret key")
	}
	signing := cfg
	if cfg.SigningAccessKey != "" {
		signing.AccessKey, signing.SecretKey = cfg.SigningAccessKey, cfg.SigningSecretKey
	}
	publicHost, publicSecure := cfg.Endpoint, cfg.Secure
	if cfg.PublicURL != "" {
		publicURL, err := url.Parse(cfg.PublicURL)
		if err != nil || publicURL.Host == "" || (publicURL.Scheme != "http" && publicURL.Scheme != "https") {
			return nil, fmt.Errorf("storage public URL %q must look like https://host[:port]", cfg.PublicURL)
		}
		publicHost, publicSecure = publicURL.Host, publicURL.Scheme == "https"
	}
	public, err := newClient(publicHost, publicSecure, signing)
	if err != nil {
		return nil, fmt.Errorf("storage public URL %q: %w", cfg.PublicURL, err)
	}
	stsEndpoint := cfg.STSEndpoint
	if stsEndpoint == "" {
		scheme := "http"
		if cfg.Secure {
			scheme = "https"
		}
		stsEndpoint = scheme + "://" + cfg.Endpoint
	}
	if u, err := url.Parse(stsEndpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("STS endpoint %q must look like https://host[:port]", stsEndpoint)
	}
	return &Store{
		cfg: cfg, internal: internal, public: public, stsEndpoint: stsEndpoint,
		// A hung STS call must not hold a reconcile forever.
		httpClient: &http.Client{Timeout: 30 * time.Second},
	}, nil
}

// NewClient returns a client for the internal endpoint, for reads the Store does not cover (the
// controller's file-check endpoint).
func NewClient(cfg Config) (*minio.Client, error) {
	c, err := newClient(cfg.Endpoint, cfg.Secure, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage endpoint %q: %w", cfg.Endpoint, err)
	}
	return c, nil
}

// region applies DefaultRegion in one place: every client must presign without asking the
// endpoint for its bucket's location, and STS signs for the same region.
func (cfg Config) region() string {
	if cfg.Region == "" {
		return DefaultRegion
	}
	return cfg.Region
}

// newClient uses Config.region: every client must presign without asking the
// endpoint for its bucket's location.
func newClient(endpoint string, secure bool, cfg Config) (*minio.Client, error) {
	return minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: secure,
		Region: cfg.region(),
	})
}

// PresignGet returns a GET URL for the archive, valid for expiry, that makes browsers save it
// as fileName.
func (s *Store) PresignGet(ctx context.Context, bucket, key string, expiry time.Duration, fileName string) (*url.URL, error) {
	params := url.Values{}
	params.Set("response-content-disposition", fmt.Sprintf("attachment; filename=%q", fileName))
	u, err := s.public.PresignedGetObject(ctx, bucket, key, expiry, params)
	if err != nil {
		return nil, fmt.Errorf("presigning %s/%s: %w", bucket, key, err)
	}
	return u, nil
}

// DeleteArchive removes the archive and any multipart upload still in flight for it, so that a
// cancelled Download leaves neither a visible object nor orphan parts. Missing objects are fine.
func (s *Store) DeleteArchive(ctx context.Context, bucket, key string) error {
	var errs []error
	if err := s.RemoveIncompleteUploads(ctx, bucket, key); err != nil {
		errs = append(errs, err)
	}
	if err := s.internal.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		errs = append(errs, fmt.Errorf("removing %s/%s: %w", bucket, key, err))
	}
	return errors.Join(errs...)
}

// RemoveIncompleteUploads aborts every multipart upload still open for the key: a worker killed
// mid-upload (SIGKILL, OOM, node loss) cannot abort its own, and its worker credential may not
// list uploads. None is fine.
func (s *Store) RemoveIncompleteUploads(ctx context.Context, bucket, key string) error {
	if err := s.internal.RemoveIncompleteUpload(ctx, bucket, key); err != nil && !isNotFound(err) {
		return fmt.Errorf("aborting uploads of %s/%s: %w", bucket, key, err)
	}
	return nil
}

func isNotFound(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, minio.NoSuchBucket, minio.NoSuchUpload:
		return true
	}
	return false
}
