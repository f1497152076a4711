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
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/api/meta"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// The values of a status document's "status".
const (
	StatusPending    = "pending"
	StatusProcessing = "processing"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
)

// Status is the status document of a job: the answer of GET /v1/download/status/{jobId} and the
// data of each SSE event. Which fields are set depends on Status.
type Status struct {
	JobID  string `json:"jobId"`
	Status string `json:"status"`

	// processing
	Progress   *int32 `json:"progress,omitempty"`
	BytesDone  *int64 `json:"bytesDone,omitempty"`
	BytesTotal *int64 `json:"bytesTotal,omitempty"`
	EtaSeconds *int64 `json:"etaSeconds,omitempty"`

	// completed
	DownloadURL string `json:"downloadUrl,omitempty"`
	ExpiresAt   string `json:"expiresAt,omitempty"`
	Size        *int64 `json:"size,omitempty"`
	SHA256      string `json:"sha256,omitempty"`

	// failed
	Error *ErrorBody `json:"error,omitempty"`
}

// terminal reports whether the job can no longer change.
func (s *Status) terminal() bool { return s.Status == StatusCompleted || s.Status == StatusFailed }

// errBadJobID is a jobId that cannot name any Download the facade created.
var errBadJobID = errors.New("jobId must be a UUID like 123e4567-e89b-42d3-a456-426614174000")

// parseJobID accepts the canonical 36-character UUID form in any case and returns it lower-case,
// as Kubernetes names are. Other UUID spellings (braces, urn:) are refused rather than guessed.
func parseJobID(raw string) (string, error) {
	if len(raw) != 36 {
		return "", errBadJobID
	}
	id, err := uuid.Parse(raw)
	if err != nil {
		return "", errBadJobID
	}
	if !strings.ContainsFunc(raw, unicode.IsUpper) {
		// Already the canonical spelling: reusing it spares every poll an allocation.
		return raw, nil
	}
	return id.String(), nil
}

// statusOf maps a Download onto the status document.
func statusOf(d *downloadv1alpha1.Download) *Status {
	s := &Status{JobID: d.Name}
	st := &d.Status
	finished := st.Phase == downloadv1alpha1.PhaseCompleted || st.Phase == downloadv1alpha1.PhaseFailed
	switch {
	case !d.DeletionTimestamp.IsZero() && !finished:
		s.Status = StatusFailed
		s.Error = &ErrorBody{Code: CodeCancelled, Message: "the download was cancelled"}
	case st.Phase == downloadv1alpha1.PhaseCompleted:
		s.Status = StatusCompleted
		s.DownloadURL = st.DownloadURL
		if st.URLExpiresAt != nil {
			s.ExpiresAt = st.URLExpiresAt.UTC().Format(time.RFC3339)
		}
		if st.Archive != nil {
			s.Size, s.SHA256 = &st.Archive.Size, st.Archive.SHA256
		}
	case st.Phase == downloadv1alpha1.PhaseFailed:
		s.Status = StatusFailed
		s.Error = &ErrorBody{Code: downloadv1alpha1.ReasonBackoffLimitExceeded, Message: "the download failed"}
		if c := meta.FindStatusCondition(st.Conditions, downloadv1alpha1.ConditionFailed); c != nil {
			s.Error = &ErrorBody{Code: c.Reason, Message: c.Message}
		}
	case st.Phase == downloadv1alpha1.PhaseProcessing:
		s.Status = StatusProcessing
		s.Progress, s.BytesDone, s.BytesTotal = &st.Progress, &st.BytesDone, &st.BytesTotal
		s.EtaSeconds = st.EtaSeconds
	default:
		s.Status = StatusPending
	}
	return s
}

// lookup finds a job's document, never asking the apiserver, whatever the request rate.
// It writes the error answer itself and returns nil when there is nothing to serve.
func (f *Facade) lookup(w http.ResponseWriter, r *http.Request) *document {
	name, err := parseJobID(r.PathValue("jobId"))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return nil
	}
	if !f.synced.Load() {
		retryAfter(w, time.Second)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "starting up; retry shortly")
		return nil
	}
	doc := f.docs.get(name)
	if doc == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no job %s", name))
	}
	return doc
}

func (f *Facade) status(w http.ResponseWriter, r *http.Request) {
	if doc := f.lookup(w, r); doc != nil {
		doc.write(w)
	}
}
