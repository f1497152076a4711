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

package miniotest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/download-operator/download-operator/test/miniotest"
)

func TestServerStoresAndStatsAnObject(t *testing.T) {
	server := miniotest.StartForTest(t)
	client := server.ClientForTest(t, "files")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	payload := bytes.Repeat([]byte("download-operator "), 4096)
	if _, err := client.PutObject(ctx, "files", "70000", bytes.NewReader(payload), int64(len(payload)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"}); err != nil {
		t.Fatalf("putting object: %v", err)
	}

	info, err := client.StatObject(ctx, "files", "70000", minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("stat object: %v", err)
	}
	if info.Size != int64(len(payload)) {
		t.Errorf("stat size = %d, want %d", info.Size, len(payload))
	}
	if info.ContentType != "application/octet-stream" {
		t.Errorf("stat content type = %q, want application/octet-stream", info.ContentType)
	}

	object, err := client.GetObject(ctx, "files", "70000", minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("getting object: %v", err)
	}
	defer func() { _ = object.Close() }()
	got := sha256.New()
	if _, err := io.Copy(got, object); err != nil {
		t.Fatalf("reading object: %v", err)
	}
	want := sha256.Sum256(payload)
	if hex.EncodeToString(got.Sum(nil)) != hex.EncodeToString(want[:]) {
		t.Error("object read back differs from what was put")
	}

	if _, err := client.StatObject(ctx, "files", "70001", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		t.Errorf("stat of a missing key: got %v, want NoSuchKey", err)
	}
}

func TestStopReleasesPortAndIsIdempotent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	server, err := miniotest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", server.Endpoint, time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("MinIO still listens on %s after Stop", server.Endpoint)
	}
	if err := server.Stop(); err != nil {
		t.Errorf("second Stop should be a no-op, got %v", err)
	}
}

func TestMissingBinaryIsAClearError(t *testing.T) {
	t.Setenv("MINIO_BIN", "/nonexistent/minio")
	_, err := miniotest.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/minio") {
		t.Fatalf("Start with a missing binary: got %v, want an error naming the path", err)
	}
}
