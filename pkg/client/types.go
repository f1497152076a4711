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
	"time"
)

// State is where a job is in its lifecycle.
type State string

// The states a job passes through. Completed and Failed are terminal: a job never leaves them.
const (
	StatePending    State = "pending"
	StateProcessing State = "processing"
	StateCompleted  State = "completed"
	StateFailed     State = "failed"
)

// Terminal reports whether a job in this state will never change again.
func (s State) Terminal() bool { return s == StateCompleted || s == StateFailed }

// ErrorDetail is the machine-readable code and human-readable message of an error response or
// of a failed job. Codes form a closed set a program may match on, for example "NotFound" or
// "SourceNotFound".
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Initiated is the answer to Initiate: the job exists and is being prepared in the background.
type Initiated struct {
	// JobID identifies the job in every later call.
	JobID string `json:"jobId"`
	// Status is StatePending for a new job; a repeated Idempotency-Key may return a job that has
	// moved on.
	Status State `json:"status"`
	// EtaSeconds is the server's first guess at how long preparation takes.
	EtaSeconds int64 `json:"etaSeconds"`
	// TotalFileIDs is how many files the archive will bundle.
	TotalFileIDs int `json:"totalFileIds"`

	// Location is the status URL path from the Location header.
	Location string `json:"-"`
	// RetryAfter is how long the server asks clients to wait before polling, zero if not given.
	RetryAfter time.Duration `json:"-"`
}

// Status is a job's state as served by the status endpoint and carried by every server-sent
// event. Which fields are set depends on Status: progress fields while processing, the URL and
// checksum once completed, Error once failed.
type Status struct {
	JobID  string `json:"jobId"`
	Status State  `json:"status"`

	// Progress is the percentage of BytesTotal already archived (processing).
	Progress int `json:"progress,omitempty"`
	// BytesDone and BytesTotal count source bytes; BytesTotal is zero until the worker knows it.
	BytesDone  int64 `json:"bytesDone,omitempty"`
	BytesTotal int64 `json:"bytesTotal,omitempty"`
	// EtaSeconds estimates the time left (processing); nil when the server has no estimate yet.
	EtaSeconds *int64 `json:"etaSeconds,omitempty"`
	// Attempts is the worker attempt Progress belongs to (processing). A retry restarts the
	// archive, so BytesDone goes back to 0 when Attempts goes up.
	Attempts int `json:"attempts,omitempty"`

	// DownloadURL is a presigned URL for the archive, valid until ExpiresAt (completed).
	DownloadURL string    `json:"downloadUrl,omitempty"`
	ExpiresAt   time.Time `json:"expiresAt,omitzero"`
	// Size and SHA256 describe the archive so that a download can be verified (completed).
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// ArchiveURL is the stable link of the archive, relative to the facade (completed): it
	// redirects to a freshly signed URL whenever it is called, so it outlives ExpiresAt.
	ArchiveURL string `json:"archiveUrl,omitempty"`
	// ArchiveExpiresAt is when ArchiveURL stops working (completed): the job and its archive are
	// deleted then, ttlSecondsAfterFinished after completion. Zero from older facades.
	ArchiveExpiresAt time.Time `json:"archiveExpiresAt,omitzero"`
	// SkippedFileIDs are requested ids the archive lacks because they do not exist; only a job
	// initiated with SkipMissingFiles completes without them (completed).
	SkippedFileIDs []int64 `json:"skippedFileIds,omitempty"`

	// Error says why the job failed (failed).
	Error *ErrorDetail `json:"error,omitempty"`

	// EventID is the server-sent event id this status arrived with; empty when it was polled.
	EventID string `json:"-"`
	// RetryAfter is the poll interval the server asked for on a polled status, zero if none.
	RetryAfter time.Duration `json:"-"`
}

// Terminal reports whether the job has completed or failed.
func (s *Status) Terminal() bool { return s.Status.Terminal() }

// Err is a *JobFailedError when the job failed, and nil otherwise.
func (s *Status) Err() error {
	if s.Status != StateFailed {
		return nil
	}
	e := &JobFailedError{JobID: s.JobID}
	if s.Error != nil {
		e.Code, e.Message = s.Error.Code, s.Error.Message
	}
	return e
}

// FileCheck says whether one source file exists.
type FileCheck struct {
	FileID    int64 `json:"file_id"`
	Available bool  `json:"available"`
	// Size is the file's length in bytes, when it is available.
	Size int64 `json:"size"`
}

// Health values.
const (
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	CheckOK         = "ok"
	CheckError      = "error"
)

// Health is the facade's view of its dependencies.
type Health struct {
	// Status is HealthHealthy or HealthUnhealthy.
	Status string `json:"status"`
	// Checks maps each dependency ("storage", "kubernetes") to CheckOK or CheckError.
	Checks map[string]string `json:"checks"`
}

// Healthy reports whether the facade said it can serve requests.
func (h *Health) Healthy() bool { return h.Status == HealthHealthy }

// initiateRequest is the body of POST /v1/download/initiate.
type initiateRequest struct {
	FileIDs      []int64 `json:"file_ids"`
	MissingFiles string  `json:"missing_files,omitempty"`
}

// InitiateOption changes what Initiate asks for.
type InitiateOption func(*initiateRequest)

// SkipMissingFiles makes a job complete without the requested files that do not exist, instead
// of failing; Status.SkippedFileIDs then names them. Unless every file is missing.
func SkipMissingFiles() InitiateOption {
	return func(r *initiateRequest) { r.MissingFiles = "skip" }
}

// checkRequest is the body of POST /v1/download/check.
type checkRequest struct {
	FileID int64 `json:"file_id"`
}

// errorEnvelope is the body of every error response.
type errorEnvelope struct {
	Error *ErrorDetail `json:"error"`
}
