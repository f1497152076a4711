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

package filecheck_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/download-operator/download-operator/internal/filecheck"
	"github.com/download-operator/download-operator/test/miniotest"
)

func TestFileCheckAgainstMinIO(t *testing.T) {
	server := miniotest.StartForTest(t)
	s3 := server.ClientForTest(t, "files")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	content := []byte("0123456789")
	if _, err := s3.PutObject(ctx, "files", "sources/70000.csv", bytes.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(filecheck.New(s3, "files", "sources/{id}.csv"))
	defer srv.Close()

	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}
	for path, want := range map[string]filecheck.FileStatus{
		"/v1/files/70000": {FileID: 70000, Available: true, Size: 10},
		"/v1/files/70001": {FileID: 70001},
	} {
		code, body := get(path)
		var got filecheck.FileStatus
		if err := json.Unmarshal(body, &got); err != nil || code != http.StatusOK || got != want {
			t.Errorf("GET %s: %d %s, want %+v", path, code, body, want)
		}
	}
	for _, path := range []string{"/v1/files/9999", "/v1/files/abc", "/v1/files/100000001", "/v1/files/-1"} {
		if code, body := get(path); code != http.StatusBadRequest {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	if code, body := get("/v1/storage/health"); code != http.StatusOK {
		t.Errorf("health: %d %s", code, body)
	}

	// A missing bucket and a stopped server are both unhealthy, and neither leaks details.
	missing := httptest.NewServer(filecheck.New(s3, "no-such-bucket", "{id}"))
	defer missing.Close()
	resp, err := http.Get(missing.URL + "/v1/storage/health")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("missing bucket: %d", resp.StatusCode)
	}
	if err := server.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/storage/health", "/v1/files/70000"} {
		code, body := get(path)
		if code != http.StatusServiceUnavailable || bytes.Contains(body, []byte(server.Endpoint)) {
			t.Errorf("GET %s with storage down: %d %s", path, code, body)
		}
	}
}
