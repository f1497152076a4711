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

// Package archivelink signs short-lived URLs for completed archives, on the controller's small
// internal HTTP server (beside internal/filecheck), so that the facade's stable link
// GET /v1/download/{jobId}/archive can redirect to a fresh URL whenever it is followed, while the
// facade itself never holds a storage credential.
//
//	GET /v1/archives/{namespace}/{name}[?filename=x.zip]
//	  200 {"url","expiresAt"}  a presigned GET of the archive in the Download's status
//	  400 a filename outside [A-Za-z0-9._-]{1,128} ending in .zip
//	  404 no such Download, not served, not completed (codes JobPending, JobProcessing, JobFailed)
//	  410 completed, but past its ttlSecondsAfterFinished or being deleted (ArchiveExpired)
//	  503 the cache or the signer failed
//
// It reads Downloads from the manager's cache, which every replica runs, leader or not. It signs
// only the bucket and key a Download's status records, in the operator's archive bucket, and
// never past the Download's own expiry.
package archivelink

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// Pattern is the route the handler serves; Path builds a request for it.
const Pattern = "GET /v1/archives/{namespace}/{name}"

// MaxValidity bounds a signed URL's life. A link is asked for right before it is followed, so a
// few minutes cover any redirect, and a leaked URL is soon worthless; a download that outlives
// it resumes with a fresh one (Range), which is what the stable link is for.
const MaxValidity = 5 * time.Minute

// minValidity is the shortest URL worth signing: S3 counts expiry in whole seconds.
const minValidity = time.Second

// cacheTimeout bounds the cache read, which only waits when the informer is not synced yet.
const cacheTimeout = 5 * time.Second

// Error codes of the {"error":{"code","message"}} answers. The facade passes them on to its
// clients, so they are part of the public API (internal/facade/openapi.json).
const (
	CodeBadRequest  = "BadRequest"
	CodeNotFound    = "NotFound"
	CodePending     = "JobPending"
	CodeProcessing  = "JobProcessing"
	CodeFailed      = "JobFailed"
	CodeExpired     = "ArchiveExpired"
	CodeUnavailable = "Unavailable"
)

// Link is the 200 answer: a presigned GET URL and when it stops working.
type Link struct {
	URL string `json:"url"`
	// ExpiresAt is RFC 3339, in UTC, to the second.
	ExpiresAt string `json:"expiresAt"`
}

// ErrorBody and ErrorResponse are the shape of every other answer, the facade's own.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorResponse wraps ErrorBody as {"error":{...}}.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// Verdict is what a link to a Download's archive can be at one moment: Status 200 with the
// Download's ExpiresAt, or 404 or 410 with a Code.
type Verdict struct {
	Status    int
	Code      string
	ExpiresAt time.Time
}

// Judge decides a Download's Verdict. The controller's handler and the facade (on its own
// cache, to answer without a call) both use it, so they cannot disagree.
func Judge(d *downloadv1alpha1.Download, now time.Time) Verdict {
	st := &d.Status
	deleting := !d.DeletionTimestamp.IsZero()
	switch {
	case st.Phase == downloadv1alpha1.PhaseCompleted:
		if deleting {
			// Cancelled or past its TTL: the finalizer is removing the archive.
			return Verdict{Status: http.StatusGone, Code: CodeExpired}
		}
		if st.Archive == nil || st.CompletionTime == nil {
			// Completed always records both; without them there is nothing to sign.
			return Verdict{Status: http.StatusNotFound, Code: CodeNotFound}
		}
		expires := d.ExpiresAt()
		if expires.Sub(now) < minValidity {
			return Verdict{Status: http.StatusGone, Code: CodeExpired}
		}
		return Verdict{Status: http.StatusOK, ExpiresAt: expires}
	case st.Phase == downloadv1alpha1.PhaseFailed, deleting:
		// Failed, or cancelled before it finished: there never was an archive.
		return Verdict{Status: http.StatusNotFound, Code: CodeFailed}
	case st.Phase == downloadv1alpha1.PhaseProcessing:
		return Verdict{Status: http.StatusNotFound, Code: CodeProcessing}
	default:
		return Verdict{Status: http.StatusNotFound, Code: CodePending}
	}
}

// msgBadFileName is the 400 answer to a filename ValidFileName refuses.
const msgBadFileName = "filename must be 1 to 128 of the characters A-Z a-z 0-9 . _ - and end in .zip"

// Message is the fixed public text of code for the job jobID. It names the jobId and nothing
// else: the facade sends it to its clients as it is.
func Message(code, jobID string) string {
	switch code {
	case CodePending:
		return "job " + jobID + " is pending; its archive is not ready yet"
	case CodeProcessing:
		return "job " + jobID + " is still being prepared; its archive is not ready yet"
	case CodeFailed:
		return "job " + jobID + " failed or was cancelled; it has no archive"
	case CodeExpired:
		return "the archive of job " + jobID + " has expired"
	case CodeBadRequest:
		return msgBadFileName
	case CodeUnavailable:
		return "the archive of job " + jobID + " cannot be signed right now; retry shortly"
	default:
		return "no job " + jobID
	}
}

// DefaultFileName is the name browsers save the archive of jobID under.
func DefaultFileName(jobID string) string { return "download-" + jobID + ".zip" }

// maxFileName bounds a chosen file name; browsers and file systems take far longer ones, but no
// caller needs them.
const maxFileName = 128

// ValidFileName reports whether name may be put in the signed URL's Content-Disposition: 1 to
// 128 characters of [A-Za-z0-9._-], ending in .zip. The charset needs no quoting or encoding in
// the header, and holds no path separator.
func ValidFileName(name string) bool {
	if len(name) > maxFileName || len(name) < len(".zip") || name[len(name)-len(".zip"):] != ".zip" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// FileNameParam is the query parameter that chooses the file name.
const FileNameParam = "filename"

// FileName is the file name a request asks for: the default when it names none, or the one it
// names, with ok false when that one is not valid. An empty ?filename= is invalid, not absent.
func FileName(query url.Values, jobID string) (name string, ok bool) {
	values, given := query[FileNameParam]
	if !given {
		return DefaultFileName(jobID), true
	}
	if len(values) != 1 || !ValidFileName(values[0]) {
		return "", false
	}
	return values[0], true
}

// Path is the request path for the archive of namespace/name, with fileName when not empty.
func Path(namespace, name, fileName string) string {
	p := "/v1/archives/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
	if fileName != "" {
		p += "?" + url.Values{FileNameParam: {fileName}}.Encode()
	}
	return p
}

// Signer presigns a GET of one object, making browsers save it as fileName
// (storage.Store.PresignGet).
type Signer interface {
	PresignGet(ctx context.Context, bucket, key string, expiry time.Duration, fileName string) (*url.URL, error)
}

// Handler serves Pattern.
type Handler struct {
	// Clock decides expiry; tests move it instead of waiting for a TTL.
	Clock clock.PassiveClock
	// Log receives what the answers leave out (the cache's and the signer's errors).
	Log logr.Logger

	reader        client.Reader
	signer        Signer
	namespaces    sets.Set[string]
	archiveBucket string
	mux           *http.ServeMux
}

// New returns the handler for the Downloads in namespaces (the operator's served namespaces),
// read through reader (the manager's cache), whose archives are in archiveBucket.
func New(reader client.Reader, signer Signer, namespaces sets.Set[string], archiveBucket string) *Handler {
	h := &Handler{
		Clock: clock.RealClock{}, Log: logr.Discard(),
		reader: reader, signer: signer, namespaces: namespaces, archiveBucket: archiveBucket, mux: http.NewServeMux(),
	}
	h.mux.HandleFunc(Pattern, h.link)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) link(w http.ResponseWriter, r *http.Request) {
	namespace, name := r.PathValue("namespace"), r.PathValue("name")
	if !h.namespaces.Has(namespace) || len(validation.IsDNS1123Subdomain(name)) > 0 {
		// Not a Download this operator serves; the name is not echoed unless it is a valid one.
		writeError(w, http.StatusNotFound, CodeNotFound, "no such job")
		return
	}
	fileName, ok := FileName(r.URL.Query(), name)
	if !ok {
		writeError(w, http.StatusBadRequest, CodeBadRequest, Message(CodeBadRequest, name))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), cacheTimeout)
	defer cancel()
	var d downloadv1alpha1.Download
	if err := h.reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &d); err != nil {
		if apierrors.IsNotFound(err) {
			writeError(w, http.StatusNotFound, CodeNotFound, Message(CodeNotFound, name))
			return
		}
		h.Log.Error(err, "reading a Download for its archive link", "namespace", namespace, "name", name)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, Message(CodeUnavailable, name))
		return
	}
	now := h.Clock.Now()
	verdict := Judge(&d, now)
	if verdict.Status != http.StatusOK {
		writeError(w, verdict.Status, verdict.Code, Message(verdict.Code, name))
		return
	}
	archive := d.Status.Archive
	if archive.Bucket != h.archiveBucket {
		// Only the controller writes status, and only for its archive bucket; anything else was
		// written by hand, and a link must never open another bucket.
		h.Log.Info("refusing to sign an archive outside the archive bucket", "namespace", namespace, "name", name,
			"bucket", archive.Bucket)
		writeError(w, http.StatusNotFound, CodeNotFound, Message(CodeNotFound, name))
		return
	}
	validity := min(MaxValidity, verdict.ExpiresAt.Sub(now)).Truncate(time.Second)
	u, err := h.signer.PresignGet(ctx, archive.Bucket, archive.Key, validity, fileName)
	if err != nil {
		h.Log.Error(err, "signing an archive link", "namespace", namespace, "name", name)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, Message(CodeUnavailable, name))
		return
	}
	writeJSON(w, http.StatusOK, Link{URL: u.String(), ExpiresAt: now.Add(validity).UTC().Format(time.RFC3339)})
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, ErrorResponse{Error: ErrorBody{Code: code, Message: message}})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	// A signed URL must never be served from a cache to someone else.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// Beside serves the handler's route and, for every other request, other (the controller's
// internal/filecheck endpoints), so that both share one listener.
func (h *Handler) Beside(other http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Pattern, h)
	mux.Handle("/", other)
	return mux
}
