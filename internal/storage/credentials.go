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

package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sync/errgroup"
)

// STS AssumeRole bounds: both MinIO and AWS refuse sessions shorter than 15 minutes, and AWS
// roles allow at most 12 hours.
const (
	MinCredentialLifetime = 15 * time.Minute
	MaxCredentialLifetime = 12 * time.Hour
)

// WorkerScope is everything one worker may touch: it reads the sources, and writes its own
// archive. Nothing else: no listing, no deletion, no other key or bucket.
type WorkerScope struct {
	SourceBucket string
	// SourceKeyPattern matches every source key, with * for the file id (e.g. "{id}" -> "*").
	SourceKeyPattern string
	ArchiveBucket    string
	ArchiveKey       string
}

// Credential is a short-lived key for one worker.
type Credential struct {
	AccessKey    string
	SecretKey    string
	SessionToken string
	Expiration   time.Time
}

// sessionPolicy is the IAM session policy of a worker credential. STS intersects it with the
// operator's own permissions, so it can only narrow them.
func (s WorkerScope) sessionPolicy() (string, error) {
	if s.SourceBucket == "" || s.SourceKeyPattern == "" || s.ArchiveBucket == "" || s.ArchiveKey == "" {
		return "", errors.New("a worker scope needs a source bucket and key pattern, and an archive bucket and key")
	}
	return encodePolicy(
		// GetObject covers HEAD (StatObject) too.
		statement{Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{objectARN(s.SourceBucket, s.SourceKeyPattern)}},
		// A multipart upload needs PutObject for every part and for completing it, and
		// AbortMultipartUpload to clean up after a failed attempt.
		statement{Effect: "Allow", Action: []string{"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
			Resource: []string{objectARN(s.ArchiveBucket, s.ArchiveKey)}},
		// No s3:ListBucketMultipartUploads: it cannot be narrowed to one key (MinIO refuses an
		// s3:prefix condition on it), and the keys it shows name other Downloads. The controller
		// removes what a killed attempt left (RemoveIncompleteUploads) when the Download finishes.
	)
}

// OperatorPolicy is the IAM policy of the operator's own storage user (or, on AWS, of the role
// workers assume): everything on the source and archive buckets, nothing elsewhere. Each worker
// gets only a slice of it through its session policy.
func OperatorPolicy(sourceBucket, archiveBucket string) (string, error) {
	if sourceBucket == "" || archiveBucket == "" {
		return "", errors.New("the operator policy needs a source and an archive bucket")
	}
	return encodePolicy(statement{
		Effect: "Allow", Action: []string{"s3:*"},
		Resource: []string{
			bucketARN(sourceBucket), objectARN(sourceBucket, "*"),
			bucketARN(archiveBucket), objectARN(archiveBucket, "*"),
		},
	})
}

type statement struct {
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

func encodePolicy(statements ...statement) (string, error) {
	raw, err := json.Marshal(struct {
		Version   string      `json:"Version"`
		Statement []statement `json:"Statement"`
	}{Version: "2012-10-17", Statement: statements})
	if err != nil {
		return "", fmt.Errorf("encoding an IAM policy: %w", err)
	}
	return string(raw), nil
}

func bucketARN(bucket string) string      { return "arn:aws:s3:::" + bucket }
func objectARN(bucket, key string) string { return bucketARN(bucket) + "/" + key }

// SourceKeyPattern turns a source key template ("{id}", "files/{id}.bin") into the wildcard
// pattern a policy resource needs.
func SourceKeyPattern(template string) string { return strings.ReplaceAll(template, "{id}", "*") }

// MintWorkerCredential asks STS (AssumeRole) for a credential limited to scope that expires
// after lifetime, clamped to what STS allows. The operator's own key signs the request and never
// leaves the controller.
func (s *Store) MintWorkerCredential(ctx context.Context, scope WorkerScope, lifetime time.Duration, sessionName string) (Credential, error) {
	policy, err := scope.sessionPolicy()
	if err != nil {
		return Credential{}, err
	}
	lifetime = min(max(lifetime, MinCredentialLifetime), MaxCredentialLifetime)
	sts, err := credentials.NewSTSAssumeRole(s.stsEndpoint, credentials.STSAssumeRoleOptions{
		AccessKey:       s.cfg.AccessKey,
		SecretKey:       s.cfg.SecretKey,
		Policy:          policy,
		Location:        s.cfg.region(),
		DurationSeconds: int(lifetime / time.Second),
		RoleARN:         s.cfg.RoleARN,
		RoleSessionName: sessionName,
	})
	if err != nil {
		return Credential{}, fmt.Errorf("configuring STS AssumeRole: %w", err)
	}
	value, err := sts.GetWithContext(&credentials.CredContext{Client: s.httpClient, Context: ctx})
	if err != nil {
		return Credential{}, fmt.Errorf("minting a worker credential with STS AssumeRole: %w", err)
	}
	return Credential{
		AccessKey: value.AccessKeyID, SecretKey: value.SecretAccessKey,
		SessionToken: value.SessionToken, Expiration: value.Expiration,
	}, nil
}

// ArchiveSize returns the size of a stored archive, so that the controller trusts what it sees
// in storage rather than what a worker reports.
func (s *Store) ArchiveSize(ctx context.Context, bucket, key string) (int64, error) {
	info, err := s.internal.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		if isNotFound(err) {
			return 0, fmt.Errorf("archive %s/%s: %w", bucket, key, ErrNotFound)
		}
		return 0, fmt.Errorf("reading archive %s/%s: %w", bucket, key, err)
	}
	return info.Size, nil
}

// sourceStatConcurrency bounds the HEAD requests SourceETags has in flight at once: a Download
// may name a thousand files, and one at a time would hold its reconcile for seconds.
const sourceStatConcurrency = 8

// SourceETags returns the ETag of each key in the bucket, in order, with one HEAD request per
// key. A missing key fails the call with an error wrapping ErrNotFound.
func (s *Store) SourceETags(ctx context.Context, bucket string, keys []string) ([]string, error) {
	etags := make([]string, len(keys))
	group, ctx := errgroup.WithContext(ctx)
	group.SetLimit(sourceStatConcurrency)
	for i, key := range keys {
		group.Go(func() error {
			info, err := s.internal.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
			switch {
			case isNotFound(err):
				return fmt.Errorf("source %s/%s: %w", bucket, key, ErrNotFound)
			case err != nil:
				return fmt.Errorf("reading source %s/%s: %w", bucket, key, err)
			}
			etags[i] = info.ETag
			return nil
		})
	}
	if err := group.Wait(); err != nil {
		return nil, err
	}
	return etags, nil
}

// ErrNotFound reports an object that does not exist.
var ErrNotFound = errors.New("object not found")
