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

// Package filecheck is the controller's small, read-only HTTP view of the source bucket. It lets
// the facade answer "does file 70000 exist, and how big is it?" and "is storage up?" without the
// facade ever holding storage credentials: only the controller (and its workers) do.
//
//	GET /v1/files/{id}       200 {"file_id","available","size"}; a missing object is available=false
//	GET /v1/storage/health   200 {"status":"ok"} when the source bucket answers, 503 otherwise
//
// It serves no writes and lists nothing, so a caller learns only what the facade's
// POST /v1/download/check already promised to reveal.
package filecheck

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/worker"
)

// storageTimeout bounds each storage call, so a hung endpoint turns into a quick 503 that the
// facade can report instead of tying up its own short deadline.
const storageTimeout = 5 * time.Second

// FileStatus is the answer for one file id; its JSON is what the facade's /v1/download/check
// returns, which is what the service the facade replaces returned.
type FileStatus struct {
	FileID    int64 `json:"file_id"`
	Available bool  `json:"available"`
	Size      int64 `json:"size"`
}

// Health is the answer of /v1/storage/health.
type Health struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Handler serves the endpoints over one source bucket.
type Handler struct {
	storage *minio.Client
	bucket  string
	keys    worker.Config
	mux     *http.ServeMux
}

// New returns the handler. keyTemplate maps a file id to its object key exactly as the worker
// does ("{id}" stands for the id), so both agree on what "available" means.
func New(storage *minio.Client, bucket, keyTemplate string) *Handler {
	h := &Handler{storage: storage, bucket: bucket, keys: worker.Config{SourceKeyTemplate: keyTemplate}, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /v1/files/{id}", h.file)
	h.mux.HandleFunc("GET /v1/storage/health", h.health)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) file(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < downloadv1alpha1.MinFileID || id > downloadv1alpha1.MaxFileID {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "file id must be an integer in [10000, 100000000]"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storageTimeout)
	defer cancel()
	info, err := h.storage.StatObject(ctx, h.bucket, h.keys.SourceKey(id), minio.StatObjectOptions{})
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, FileStatus{FileID: id, Available: true, Size: info.Size})
	case isNoSuchKey(err):
		writeJSON(w, http.StatusOK, FileStatus{FileID: id})
	default:
		// The storage error may name the endpoint or bucket; that is for our logs, not for callers.
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "storage unavailable"})
	}
}

func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), storageTimeout)
	defer cancel()
	exists, err := h.storage.BucketExists(ctx, h.bucket)
	switch {
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "error", Error: "storage unreachable"})
	case !exists:
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "error", Error: "source bucket missing"})
	default:
		writeJSON(w, http.StatusOK, Health{Status: "ok"})
	}
}

func isNoSuchKey(err error) bool {
	resp, ok := errors.AsType[minio.ErrorResponse](err)
	return ok && resp.Code == minio.NoSuchKey
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
