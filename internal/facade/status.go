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
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	// Attempts is the worker attempt the progress belongs to: a retry restarts bytesDone at 0.
	Attempts *int32 `json:"attempts,omitempty"`

	// completed
	DownloadURL string `json:"downloadUrl,omitempty"`
	// ArchiveURL is the stable link: it redirects to a freshly signed URL for as long as the job
	// exists, so a page left open past expiresAt still downloads.
	ArchiveURL string `json:"archiveUrl,omitempty"`
	// SkippedFileIDs are requested ids left out because they do not exist (missing_files: skip).
	SkippedFileIDs []int64 `json:"skippedFileIds,omitempty"`
	ExpiresAt      string  `json:"expiresAt,omitempty"`
	Size           *int64  `json:"size,omitempty"`
	SHA256         string  `json:"sha256,omitempty"`

	// failed
	Error *ErrorBody `json:"error,omitempty"`
}

// ArchivePath is the stable link of a job's archive, relative to the facade's base URL.
func ArchivePath(jobID string) string { return "/v1/download/" + jobID + "/archive" }

// terminal reports whether the job can no longer change.
func (s *Status) terminal() bool { return s.Status == StatusCompleted || s.Status == StatusFailed }

// errBadJobID is a jobId that cannot name any Download the facade created.
var errBadJobID = errors.New(string(msgBadJobID))

const msgBadJobID publicMessage = "jobId must be a UUID like 123e4567-e89b-42d3-a456-426614174000"

// noJob is the 404 message of a well-formed jobId, which parseJobID has made canonical.
func noJob(jobID string) publicMessage { return publicMessage("no job " + jobID) }

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
		s.Error = &ErrorBody{Code: CodeCancelled, Message: string(msgCancelled)}
	case st.Phase == downloadv1alpha1.PhaseCompleted:
		s.Status = StatusCompleted
		s.DownloadURL = st.DownloadURL
		s.ArchiveURL = ArchivePath(d.Name)
		s.SkippedFileIDs = st.SkippedFileIDs
		if st.URLExpiresAt != nil {
			s.ExpiresAt = st.URLExpiresAt.UTC().Format(time.RFC3339)
		}
		if st.Archive != nil {
			s.Size, s.SHA256 = &st.Archive.Size, st.Archive.SHA256
		}
	case st.Phase == downloadv1alpha1.PhaseFailed:
		s.Status = StatusFailed
		s.Error = publicFailure(d, meta.FindStatusCondition(st.Conditions, downloadv1alpha1.ConditionFailed))
	case st.Phase == downloadv1alpha1.PhaseProcessing:
		s.Status = StatusProcessing
		s.Progress, s.BytesDone, s.BytesTotal = &st.Progress, &st.BytesDone, &st.BytesTotal
		s.EtaSeconds = st.EtaSeconds
		if st.Attempts > 0 {
			s.Attempts = &st.Attempts
		}
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
		writeError(w, http.StatusBadRequest, CodeBadRequest, msgBadJobID)
		return nil
	}
	if !f.synced.Load() {
		retryAfter(w, time.Second)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, msgStartingUp)
		return nil
	}
	doc := f.docs.get(name)
	if doc == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, noJob(name))
	}
	return doc
}

func (f *Facade) status(w http.ResponseWriter, r *http.Request) {
	if doc := f.lookup(w, r); doc != nil {
		doc.write(w)
	}
}

// failureTexts are the public messages of a failed job, by the reason of its Failed condition.
// The condition's own message is written for operators by the controller and the worker, and
// may name buckets, object keys and storage endpoints: it stays in the Download and the logs.
var failureTexts = map[string]publicMessage{
	downloadv1alpha1.ReasonSourceNotFound:       "some of the requested files do not exist",
	downloadv1alpha1.ReasonStorageError:         "the archive could not be prepared because storage kept failing; try again later",
	downloadv1alpha1.ReasonDeadlineExceeded:     "preparing the archive took longer than allowed; try again with fewer files",
	downloadv1alpha1.ReasonBackoffLimitExceeded: "the archive could not be prepared; try again later",
	downloadv1alpha1.ReasonNamespaceNotServed:   "this service is not set up to prepare archives; contact its operator",
	downloadv1alpha1.ReasonResultMissing:        "the archive could not be prepared because of an internal error",
	downloadv1alpha1.ReasonResultRejected:       "the archive could not be verified; try again",
	downloadv1alpha1.ReasonArchiveTooLarge:      "the requested files are too large for one archive; ask for fewer files",
}

// maxNamedFiles bounds the file ids a public message names.
const maxNamedFiles = 10

// publicFailure is the error of a failed job: the reason of its Failed condition as the code,
// and that reason's fixed text. A reason outside the closed set of api/v1alpha1 (or no
// condition at all) is reported as BackoffLimitExceeded, the generic failure.
func publicFailure(d *downloadv1alpha1.Download, c *metav1.Condition) *ErrorBody {
	generic := downloadv1alpha1.ReasonBackoffLimitExceeded
	if c == nil {
		return &ErrorBody{Code: generic, Message: string(failureTexts[generic])}
	}
	text, known := failureTexts[c.Reason]
	if !known {
		return &ErrorBody{Code: generic, Message: string(failureTexts[generic])}
	}
	if c.Reason == downloadv1alpha1.ReasonSourceNotFound {
		if ids := mentionedFileIDs(c.Message, d.Spec.FileIDs); len(ids) > 0 {
			text = missingFilesText(ids)
		}
	}
	return &ErrorBody{Code: c.Reason, Message: string(text)}
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

// missingFilesText is "file 99999 does not exist" or "files 1, 2 and 3 do not exist".
func missingFilesText(ids []int64) publicMessage {
	named := make([]string, 0, min(len(ids), maxNamedFiles))
	for _, id := range ids[:min(len(ids), maxNamedFiles)] {
		named = append(named, strconv.FormatInt(id, 10))
	}
	if len(ids) == 1 {
		return publicMessage("file " + named[0] + " does not exist")
	}
	list := strings.Join(named[:len(named)-1], ", ") + " and " + named[len(named)-1]
	if more := len(ids) - len(named); more > 0 {
		list = strings.Join(named, ", ") + " and " + strconv.Itoa(more) + " more"
	}
	return publicMessage("files " + list + " do not exist")
}
