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

	"github.com/download-operator/download-operator/internal/statusdoc"
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
	CodeTooManyConnections   = "TooManyConnections"
	CodeTooManyStreams       = "TooManyStreams"
	CodeUnavailable          = "Unavailable"
	CodeInternal             = "InternalError"
	// CodeCancelled is the error code of a job whose Download was deleted before it finished.
	CodeCancelled = statusdoc.CodeCancelled
)

// publicMessage is the message of an error answer or of a failed job's status. Every one is a
// fixed text per code, at most with numbers, file ids or the caller's canonical jobId filled in:
// never an error string, which may name buckets, object keys, endpoints or hosts, and never
// other text the caller sent. A plain string needs an explicit conversion to become one, which
// keeps every source of public text visible in review. Details go to the logs and, for jobs, to
// the Download's conditions.
type publicMessage string

// Fixed public texts used in more than one place.
const (
	msgStartingUp         publicMessage = "starting up; retry shortly"
	msgNoEndpoint         publicMessage = "no such endpoint; see /openapi.json"
	msgTooManyConnections               = "too many connections from your address are open; close one and retry"
	msgTooManyStreams     publicMessage = "too many event streams of yours are open; close one, or poll the status instead"
)

// ErrorBody is the error object of every error response and of a failed job's status.
type ErrorBody = statusdoc.ErrorBody

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// Canonical header keys and constant values, assigned to header maps directly: Header.Set
// canonicalises its key and allocates a new value slice on every call, which was a measurable
// part of a poll. Sharing the value slices between responses is safe because nothing writes into
// them: net/http only reads a response's header values, the facade only assigns, Sets (a new
// slice) or Adds them, and every slice here has no spare capacity, so an Add copies it before
// appending instead of writing into the shared array. TestHeaderKeysAreCanonical checks the keys.
const (
	headerContentType      = "Content-Type"
	headerCacheControl     = "Cache-Control"
	headerContentLength    = "Content-Length"
	headerRequestID        = "X-Request-Id"
	headerContentTypeOpts  = "X-Content-Type-Options"
	headerFrameOptions     = "X-Frame-Options"
	headerTransportSec     = "Strict-Transport-Security"
	headerReferrerPolicy   = "Referrer-Policy"
	headerAllowOrigin      = "Access-Control-Allow-Origin"
	headerExposeHeaders    = "Access-Control-Expose-Headers"
	headerRateLimitLimit   = "Ratelimit-Limit"
	headerRateLimitRemains = "Ratelimit-Remaining"
	headerRateLimitReset   = "Ratelimit-Reset"
	headerTraceparent      = "Traceparent"
	headerTracestate       = "Tracestate"
)

var (
	valueJSON = []string{"application/json"}
	// Job status changes from poll to poll; no proxy or browser may answer a poll from cache.
	valueNoStore       = []string{"no-store"}
	valueNoSniff       = []string{"nosniff"}
	valueDeny          = []string{"DENY"}
	valueHSTS          = []string{"max-age=31536000; includeSubDomains"}
	valueNoReferrer    = []string{"no-referrer"}
	valueAnyOrigin     = []string{"*"}
	valueExposeHeaders = []string{"Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, X-Request-ID"}
)

// internalErrorBody answers when a response cannot be encoded; it must still be JSON.
var internalErrorBody = []byte(`{"error":{"code":"InternalError","message":"encoding the response failed"}}` + "\n")

// encodeJSON is the body of a JSON answer with its trailing newline, or the internal error's
// when body cannot be encoded (only our own types are, so that would be a bug).
func encodeJSON(status int, body any) (int, []byte) {
	raw, err := json.Marshal(body)
	if err != nil {
		return http.StatusInternalServerError, internalErrorBody
	}
	return status, append(raw, '\n')
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	status, raw := encodeJSON(status, body)
	h := w.Header()
	h[headerContentType] = valueJSON
	h[headerCacheControl] = valueNoStore
	h[headerContentLength] = []string{strconv.Itoa(len(raw))}
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

func writeError(w http.ResponseWriter, status int, code string, message publicMessage) {
	writeJSON(w, status, ErrorResponse{Error: ErrorBody{Code: code, Message: string(message)}})
}

// retryAfter sets Retry-After in whole seconds, at least one: zero would invite a tight loop.
func retryAfter(w http.ResponseWriter, d time.Duration) {
	secs := max(1, int64((d+time.Second-1)/time.Second))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}
