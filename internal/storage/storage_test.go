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
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/download-operator/download-operator/internal/storage"
	"github.com/download-operator/download-operator/test/miniotest"
)

// TestPresignedURLsUseTheSigningKey gives the Store operator credentials MinIO does not know
// and the real ones as the signing key: the URL only works, and only shows the signing key's
// id, when presigning really uses the signing key.
func TestPresignedURLsUseTheSigningKey(t *testing.T) {
	server := miniotest.StartForTest(t)
	root := server.ClientForTest(t, "archives")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	content := []byte("archive bytes")
	if _, err := root.PutObject(ctx, "archives", "a.zip", bytes.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	const operatorKey = "operator-key-id-not-for-clients"
	store, err := storage.New(storage.Config{
		Endpoint: server.Endpoint, PublicURL: "http://" + server.Endpoint,
		AccessKey: operatorKey, SecretKey: "operator-secret",
		SigningAccessKey: server.AccessKey, SigningSecretKey: server.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := store.PresignGet(ctx, "archives", "a.zip", time.Minute, "a.zip")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(signed.String(), operatorKey) {
		t.Errorf("the URL shows the operator's access key id: %s", signed)
	}
	if credential := signed.Query().Get("X-Amz-Credential"); !strings.HasPrefix(credential, server.AccessKey+"/") {
		t.Errorf("X-Amz-Credential = %q, want the signing key %q", credential, server.AccessKey)
	}
	resp, err := http.Get(signed.String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
		t.Fatalf("GET the presigned URL: %d %q, want 200 with the archive", resp.StatusCode, body)
	}
}

func TestHalfASigningKeyIsRefused(t *testing.T) {
	_, err := storage.New(storage.Config{Endpoint: "minio:9000", AccessKey: "a", SecretKey: "s", SigningAccessKey: "only-the-id"})
	if err == nil || !strings.Contains(err.Error(), "signing credentials") {
		t.Fatalf("got %v, want an error about incomplete signing credentials", err)
	}
}
