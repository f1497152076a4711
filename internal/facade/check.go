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

package facade

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/filecheck"
)

// CheckRequest is the body of POST /v1/download/check.
type CheckRequest struct {
	FileID int64 `json:"file_id"`
}

// CheckResponse is its answer, the same as the service the facade replaces gave.
type CheckResponse = filecheck.FileStatus

// maxControllerAnswer bounds what is read from the controller; its answers are tiny.
const maxControllerAnswer = 4 << 10

// check asks the controller's file-check endpoint, since the facade holds no storage credentials.
func (f *Facade) check(w http.ResponseWriter, r *http.Request) {
	var req CheckRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.FileID < downloadv1alpha1.MinFileID || req.FileID > downloadv1alpha1.MaxFileID {
		writeError(w, http.StatusBadRequest, CodeBadRequest, publicMessage(fmt.Sprintf("file_id must be in [%d, %d]",
			downloadv1alpha1.MinFileID, downloadv1alpha1.MaxFileID)))
		return
	}
	var answer CheckResponse
	if err := f.askController(r.Context(), "/v1/files/"+strconv.FormatInt(req.FileID, 10), &answer); err != nil {
		f.log.WarnContext(r.Context(), "file check failed", "error", err, "fileId", req.FileID)
		retryAfter(w, time.Second)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "storage cannot be checked right now; retry shortly")
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

// askController GETs path from the controller's file-check endpoint and decodes a 200 answer.
func (f *Facade) askController(ctx context.Context, path string, into any) error {
	status, body, err := f.getFromController(ctx, path)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("controller answered %d %s: %s", status, http.StatusText(status), truncate(string(body)))
	}
	if into == nil {
		return nil
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("decoding the controller's answer: %w", err)
	}
	return nil
}

// getFromController GETs path from the controller's internal endpoint and returns the status
// and the body, whatever the status; err means no answer came.
func (f *Facade) getFromController(ctx context.Context, path string) (int, []byte, error) {
	if f.cfg.ControllerURL == "" {
		return 0, nil, fmt.Errorf("no --controller-url configured")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cfg.ControllerURL+path, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("building controller request: %w", err)
	}
	resp, err := f.controller.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("calling the controller: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxControllerAnswer))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the controller's answer: %w", err)
	}
	return resp.StatusCode, body, nil
}

// truncate keeps the controller's answers short in the log.
func truncate(s string) string {
	const limit = 300
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "..."
}

func (f *Facade) checkStorage(ctx context.Context) error {
	return f.askController(ctx, "/v1/storage/health", nil)
}
