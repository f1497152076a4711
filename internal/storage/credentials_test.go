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

package storage_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/download-operator/download-operator/internal/storage"
	"github.com/download-operator/download-operator/test/miniotest"
)

// TestWorkerCredentialIsScopedToItsDownload mints a credential through MinIO's real STS for one
// Download and tries, with that credential, everything a worker does and everything it must not.
func TestWorkerCredentialIsScopedToItsDownload(t *testing.T) {
	server := miniotest.StartForTest(t)
	root := server.ClientForTest(t, "files", "downloads", "elsewhere")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	put := func(c *minio.Client, bucket, key, content string) error {
		_, err := c.PutObject(ctx, bucket, key, strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{})
		return err
	}
	for bucket, key := range map[string]string{"files": "70000", "downloads": "tenant-b/other.zip", "elsewhere": "secret"} {
		if err := put(root, bucket, key, "bytes of "+key); err != nil {
			t.Fatal(err)
		}
	}

	accessKey, secretKey, err := server.OperatorUser(ctx, "files", "downloads")
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.New(storage.Config{Endpoint: server.Endpoint, AccessKey: accessKey, SecretKey: secretKey})
	if err != nil {
		t.Fatal(err)
	}
	scope := storage.WorkerScope{
		SourceBucket: "files", SourceKeyPattern: storage.SourceKeyPattern("{id}"),
		ArchiveBucket: "downloads", ArchiveKey: "tenant-a/mine.zip",
	}
	before := time.Now()
	credential, err := store.MintWorkerCredential(ctx, scope, time.Minute, "job-a")
	if err != nil {
		t.Fatal(err)
	}
	if credential.AccessKey == accessKey || credential.SessionToken == "" {
		t.Fatalf("got the operator's key or no session token: %+v", credential.AccessKey)
	}
	// A minute is below what STS allows: the store asks for the minimum instead of failing.
	if lifetime := credential.Expiration.Sub(before); lifetime < storage.MinCredentialLifetime-time.Minute || lifetime > storage.MinCredentialLifetime+time.Minute {
		t.Errorf("credential lives %s, want about %s", lifetime, storage.MinCredentialLifetime)
	}
	worker, err := minio.New(server.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(credential.AccessKey, credential.SecretKey, credential.SessionToken), Region: storage.DefaultRegion,
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("does what a worker does", func(t *testing.T) {
		if _, err := worker.StatObject(ctx, "files", "70000", minio.StatObjectOptions{}); err != nil {
			t.Errorf("stat a source: %v", err)
		}
		obj, err := worker.GetObject(ctx, "files", "70000", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if content, err := io.ReadAll(obj); err != nil || string(content) != "bytes of 70000" {
			t.Errorf("read a source: %q, %v", content, err)
		}
		// Unknown size with a small part size: the streaming multipart upload the worker makes.
		big := bytes.Repeat([]byte("x"), 6<<20)
		if _, err := worker.PutObject(ctx, "downloads", "tenant-a/mine.zip", bytes.NewReader(big), -1,
			minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
			t.Errorf("multipart upload of its own archive: %v", err)
		}
		core := minio.Core{Client: worker}
		uploadID, err := core.NewMultipartUpload(ctx, "downloads", "tenant-a/mine.zip", minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := core.AbortMultipartUpload(ctx, "downloads", "tenant-a/mine.zip", uploadID); err != nil {
			t.Errorf("abort its own upload: %v", err)
		}

	})

	t.Run("does nothing else", func(t *testing.T) {
		denied := map[string]error{
			"read another Download's archive": func() error {
				_, err := worker.StatObject(ctx, "downloads", "tenant-b/other.zip", minio.StatObjectOptions{})
				return err
			}(),
			"read another bucket": func() error {
				_, err := worker.StatObject(ctx, "elsewhere", "secret", minio.StatObjectOptions{})
				return err
			}(),
			"list buckets": func() error { _, err := worker.ListBuckets(ctx); return err }(),
			"list other Downloads' uploads": func() error {
				for upload := range worker.ListIncompleteUploads(ctx, "downloads", "tenant-b/", true) {
					return upload.Err
				}
				return nil
			}(),
			"list archives": func() error {
				for obj := range worker.ListObjects(ctx, "downloads", minio.ListObjectsOptions{Recursive: true}) {
					return obj.Err
				}
				return nil
			}(),
			"write another key":         put(worker, "downloads", "tenant-b/forged.zip", "forged"),
			"overwrite a source":        put(worker, "files", "70000", "forged"),
			"delete another archive":    worker.RemoveObject(ctx, "downloads", "tenant-b/other.zip", minio.RemoveObjectOptions{}),
			"delete its own archive":    worker.RemoveObject(ctx, "downloads", "tenant-a/mine.zip", minio.RemoveObjectOptions{}),
			"write into another bucket": put(worker, "elsewhere", "x", "forged"),
			"read its own archive again": func() error {
				_, err := worker.StatObject(ctx, "downloads", "tenant-a/mine.zip", minio.StatObjectOptions{})
				return err
			}(),
		}
		for what, err := range denied {
			if code := minio.ToErrorResponse(err).Code; code != "AccessDenied" {
				t.Errorf("%s: got %v (code %q), want AccessDenied", what, err, code)
			}
		}
		if _, err := root.StatObject(ctx, "downloads", "tenant-b/other.zip", minio.StatObjectOptions{}); err != nil {
			t.Errorf("the other Download's archive is gone: %v", err)
		}
	})
}

func TestOperatorPolicyCoversOnlyItsBuckets(t *testing.T) {
	policy, err := storage.OperatorPolicy("files", "downloads")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"arn:aws:s3:::files"`, `"arn:aws:s3:::files/*"`, `"arn:aws:s3:::downloads"`, `"arn:aws:s3:::downloads/*"`} {
		if !strings.Contains(policy, want) {
			t.Errorf("policy %s lacks %s", policy, want)
		}
	}
	if strings.Contains(policy, `"arn:aws:s3:::*"`) {
		t.Errorf("policy %s grants every bucket", policy)
	}
	if _, err := storage.OperatorPolicy("", "downloads"); err == nil {
		t.Error("a policy without a source bucket was accepted")
	}
}
