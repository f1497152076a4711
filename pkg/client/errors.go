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

package client

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// APIError is an error response from the API: any status other than the one the call expects.
type APIError struct {
	// StatusCode is the HTTP status, for example 404.
	StatusCode int
	// Code and Message come from the JSON error body. When the body is not the API's JSON (a
	// proxy's error page), Code is derived from the status and Message holds the body's start.
	Code    string
	Message string
	// RequestID is the X-Request-ID the server answered with, to quote in a bug report.
	RequestID string
	// RetryAfter is the wait the server asked for on 429 and 503, zero if none was given.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.StatusCode, e.Code)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	return b.String()
}

// Temporary reports whether repeating the same request later may succeed.
func (e *APIError) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable
}

// JobFailedError is a job that ended in StateFailed, with the server's reason.
type JobFailedError struct {
	JobID   string
	Code    string
	Message string
}

func (e *JobFailedError) Error() string {
	return fmt.Sprintf("job %s failed: %s: %s", e.JobID, e.Code, e.Message)
}

// ChecksumError means the downloaded bytes are not the archive the server described: the
// object was replaced or corrupted between the worker and the client. The bytes must not be used.
type ChecksumError struct {
	WantSHA256, GotSHA256 string
	WantSize, GotSize     int64
}

func (e *ChecksumError) Error() string {
	if e.WantSize > 0 && e.WantSize != e.GotSize {
		return fmt.Sprintf("checksum mismatch: got %d bytes with sha256 %s, want %d bytes with sha256 %s",
			e.GotSize, e.GotSHA256, e.WantSize, e.WantSHA256)
	}
	return fmt.Sprintf("checksum mismatch: got sha256 %s, want %s", e.GotSHA256, e.WantSHA256)
}
