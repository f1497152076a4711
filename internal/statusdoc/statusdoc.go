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

// Package statusdoc is a job's public status document, mapped from its Download: the answer of
// the facade's GET /v1/download/status/{jobId}, the data of its SSE events, and (without the
// presigned URL) the status in the controller's CloudEvents. One mapping serves all three, so a
// client sees the same fields and the same public texts wherever it looks.
//
// Everything in a document is public: a failed job carries a fixed text per reason, never the
// Failed condition's message, which is written for operators and may name buckets, object keys
// and storage hosts.
package statusdoc

import (
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// The values of a document's "status".
const (
	Pending    = "pending"
	Processing = "processing"
	Completed  = "completed"
	Failed     = "failed"
)

// CodeCancelled is the error code of a job whose Download was deleted before it finished. Every
// other failed job's code is the reason of its Failed condition (the Reason constants of
// api/v1alpha1).
const CodeCancelled = "Cancelled"

// MsgCancelled is the public text of CodeCancelled.
const MsgCancelled = "the download was cancelled"

// ErrorBody is a failed job's error, and the shape of the facade's error answers.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Document is the status document of a job. Which fields are set depends on Status.
type Document struct {
	JobID  string `json:"jobId"`
	Status string `json:"status"`

	// processing
	Progress   *int32 `json:"progress,omitempty"`
	BytesDone  *int64 `json:"bytesDone,omitempty"`
	BytesTotal *int64 `json:"bytesTotal,omitempty"`
	EtaSeconds *int64 `json:"etaSeconds,omitempty"`
	// Attempts is the worker attempt the progress belongs to: a retry restarts bytesDone at 0.
	Attempts *int32 `json:"attempts,omitempty"`

	// completed
	DownloadURL string `json:"downloadUrl,omitempty"`
	// ArchiveURL is the stable link: it redirects to a freshly signed URL for as long as the job
	// exists, so a page left open past expiresAt still downloads.
	ArchiveURL string `json:"archiveUrl,omitempty"`
	// ArchiveExpiresAt is when the stable link stops working: the Download and its archive are
	// deleted then (its ExpiresAt). RFC 3339 in UTC, to the second.
	ArchiveExpiresAt string `json:"archiveExpiresAt,omitempty"`
	// SkippedFileIDs are requested ids left out because they do not exist (missing_files: skip).
	SkippedFileIDs []int64 `json:"skippedFileIds,omitempty"`
	// ExpiresAt is when DownloadURL, the presigned URL, stops working. RFC 3339 in UTC.
	ExpiresAt string `json:"expiresAt,omitempty"`
	Size      *int64 `json:"size,omitempty"`
	SHA256    string `json:"sha256,omitempty"`

	// failed
	Error *ErrorBody `json:"error,omitempty"`
}

// ArchivePath is the stable link of a job's archive, relative to the facade's base URL.
func ArchivePath(jobID string) string { return "/v1/download/" + jobID + "/archive" }

// Terminal reports whether the job can no longer change.
func (s *Document) Terminal() bool { return s.Status == Completed || s.Status == Failed }

// WithoutPresignedURL is the document without downloadUrl and its expiresAt, for documents that
// may be stored and forwarded (events): the stable link replaces a URL that expires and that
// anyone holding it could use.
func (s Document) WithoutPresignedURL() Document {
	s.DownloadURL, s.ExpiresAt = "", ""
	return s
}

// Cancelled is the document of a job whose Download was deleted before it finished.
func Cancelled(jobID string) *Document {
	return &Document{JobID: jobID, Status: Failed, Error: &ErrorBody{Code: CodeCancelled, Message: MsgCancelled}}
}

// Of maps a Download onto its document. A Download being deleted before it finished is
// cancelled; a finished one keeps its answer until it is gone.
func Of(d *downloadv1alpha1.Download) *Document {
	st := &d.Status
	finished := st.Phase == downloadv1alpha1.PhaseCompleted || st.Phase == downloadv1alpha1.PhaseFailed
	if !d.DeletionTimestamp.IsZero() && !finished {
		return Cancelled(d.Name)
	}
	s := &Document{JobID: d.Name}
	switch st.Phase {
	case downloadv1alpha1.PhaseCompleted:
		s.Status = Completed
		s.DownloadURL = st.DownloadURL
		s.ArchiveURL = ArchivePath(d.Name)
		if expires := d.ExpiresAt(); !expires.IsZero() {
			s.ArchiveExpiresAt = rfc3339(expires)
		}
		s.SkippedFileIDs = st.SkippedFileIDs
		if st.URLExpiresAt != nil {
			s.ExpiresAt = rfc3339(st.URLExpiresAt.Time)
		}
		if st.Archive != nil {
			s.Size, s.SHA256 = &st.Archive.Size, st.Archive.SHA256
		}
	case downloadv1alpha1.PhaseFailed:
		s.Status = Failed
		s.Error = failure(d)
	case downloadv1alpha1.PhaseProcessing:
		s.Status = Processing
		s.Progress, s.BytesDone, s.BytesTotal = &st.Progress, &st.BytesDone, &st.BytesTotal
		s.EtaSeconds = st.EtaSeconds
		if st.Attempts > 0 {
			s.Attempts = &st.Attempts
		}
	default:
		s.Status = Pending
	}
	return s
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// failureTexts are the public messages of a failed job, by the reason of its Failed condition.
// The condition's own message is written for operators by the controller and the worker, and
// may name buckets, object keys and storage endpoints: it stays in the Download and the logs.
var failureTexts = map[string]string{
	downloadv1alpha1.ReasonSourceNotFound:       "some of the requested files do not exist",
	downloadv1alpha1.ReasonStorageError:         "the archive could not be prepared because storage kept failing; try again later",
	downloadv1alpha1.ReasonDeadlineExceeded:     "preparing the archive took longer than allowed; try again with fewer files",
	downloadv1alpha1.ReasonBackoffLimitExceeded: "the archive could not be prepared; try again later",
	downloadv1alpha1.ReasonNamespaceNotServed:   "this service is not set up to prepare archives; contact its operator",
	downloadv1alpha1.ReasonResultMissing:        "the archive could not be prepared because of an internal error",
	downloadv1alpha1.ReasonResultRejected:       "the archive could not be verified; try again",
	downloadv1alpha1.ReasonArchiveTooLarge:      "the requested files are too large for one archive; ask for fewer files",
}

// FailureText is the fixed public text of a failure reason, or "" for a reason outside the
// closed set of api/v1alpha1.
func FailureText(reason string) string { return failureTexts[reason] }

// maxNamedFiles bounds the file ids a public message names.
const maxNamedFiles = 10

// failure is the error of a failed job: the reason of its Failed condition as the code, and that
// reason's fixed text; for SourceNotFound, the requested ids the condition names. A reason
// outside the closed set of api/v1alpha1 (or no condition at all) is reported as
// BackoffLimitExceeded, the generic failure.
func failure(d *downloadv1alpha1.Download) *ErrorBody {
	generic := &ErrorBody{Code: downloadv1alpha1.ReasonBackoffLimitExceeded, Message: failureTexts[downloadv1alpha1.ReasonBackoffLimitExceeded]}
	c := meta.FindStatusCondition(d.Status.Conditions, downloadv1alpha1.ConditionFailed)
	if c == nil {
		return generic
	}
	text, known := failureTexts[c.Reason]
	if !known {
		return generic
	}
	if c.Reason == downloadv1alpha1.ReasonSourceNotFound {
		if ids := mentionedFileIDs(c.Message, d.Spec.FileIDs); len(ids) > 0 {
			text = missingFilesText(ids)
		}
	}
	return &ErrorBody{Code: c.Reason, Message: text}
}

// mentionedFileIDs are the requested ids that the condition message names, in request order.
// Only ids the client sent itself can come out, so nothing else of the message is disclosed; a
// number counts only as a word of its own, not inside a name, a key, a UUID or a host:port.
func mentionedFileIDs(message string, requested []int64) []int64 {
	mentioned := map[int64]bool{}
	for i := 0; i < len(message); {
		if !isDigit(message[i]) {
			i++
			continue
		}
		end := i
		for end < len(message) && isDigit(message[end]) {
			end++
		}
		if (i == 0 || !partOfName(message[i-1])) && (end == len(message) || !partOfName(message[end])) {
			if id, err := strconv.ParseInt(message[i:end], 10, 64); err == nil {
				mentioned[id] = true
			}
		}
		i = end
	}
	var ids []int64
	for _, id := range requested {
		if mentioned[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// partOfName reports whether b joins a number to a name, a path or an address around it.
func partOfName(b byte) bool {
	return isDigit(b) || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || strings.IndexByte("_-./:@", b) >= 0
}

// missingFilesText is "file 99999 does not exist" or "files 1, 2 and 3 do not exist", naming at
// most maxNamedFiles ids and counting the rest.
func missingFilesText(ids []int64) string {
	named := make([]string, 0, min(len(ids), maxNamedFiles))
	for _, id := range ids[:min(len(ids), maxNamedFiles)] {
		named = append(named, strconv.FormatInt(id, 10))
	}
	if len(ids) == 1 {
		return "file " + named[0] + " does not exist"
	}
	list := strings.Join(named[:len(named)-1], ", ") + " and " + named[len(named)-1]
	if more := len(ids) - len(named); more > 0 {
		list = strings.Join(named, ", ") + " and " + strconv.Itoa(more) + " more"
	}
	return "files " + list + " do not exist"
}
