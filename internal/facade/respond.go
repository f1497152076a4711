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
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Error codes of {"error":{"code","message"}}. A failed job's code is instead the reason of its
// Failed condition (the Reason constants of api/v1alpha1), or CodeCancelled.
const (
	CodeBadRequest           = "BadRequest"
	CodeNotFound             = "NotFound"
	CodeMethodNotAllowed     = "MethodNotAllowed"
	CodePayloadTooLarge      = "PayloadTooLarge"
	CodeUnsupportedMediaType = "UnsupportedMediaType"
	CodeIdempotencyConflict  = "IdempotencyKeyReused"
	CodeRateLimited          = "RateLimited"
	CodeTooManyActive        = "TooManyActiveDownloads"
	CodeUnavailable          = "Unavailable"
	CodeInternal             = "InternalError"
	// CodeCancelled is the error code of a job whose Download was deleted before it finished.
	CodeCancelled = "Cancelled"
)

// ErrorBody is the error object of every error response and of a failed job's status.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	raw, err := json.Marshal(body)
	if err != nil {
		// Only our own types are marshalled; this is a bug, and must still answer in JSON.
		status, raw = http.StatusInternalServerError, []byte(`{"error":{"code":"InternalError","message":"encoding the response failed"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Job status changes from poll to poll; no proxy or browser may answer a poll from cache.
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(raw)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(raw, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, ErrorResponse{Error: ErrorBody{Code: code, Message: message}})
}

// retryAfter sets Retry-After in whole seconds, at least one: zero would invite a tight loop.
func retryAfter(w http.ResponseWriter, d time.Duration) {
	secs := max(1, int64((d+time.Second-1)/time.Second))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}
