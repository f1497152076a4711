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
	"net/url"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/archivelink"
)

// Error codes of GET /v1/download/{jobId}/archive besides BadRequest and NotFound: why a job has
// no archive to link to yet (404), or that its archive is gone (410). The controller's archive
// link endpoint answers with the same codes.
const (
	CodeJobPending     = archivelink.CodePending
	CodeJobProcessing  = archivelink.CodeProcessing
	CodeJobFailed      = archivelink.CodeFailed
	CodeArchiveExpired = archivelink.CodeExpired
)

// ArchiveLink is the body of the 302 answer, for clients that read it instead of following the
// Location: the signed URL and when it stops working.
type ArchiveLink = archivelink.Link

// archiveSegment is the last path segment of the stable link; see the route in apiRoutes.
const archiveSegment = "archive"

// controllerCodes are the codes the controller's archive link endpoint may answer, by status.
// Anything else from it is passed on as the generic code of its status.
var controllerCodes = map[int][]string{
	http.StatusBadRequest: {archivelink.CodeBadRequest},
	http.StatusNotFound:   {archivelink.CodeNotFound, archivelink.CodePending, archivelink.CodeProcessing, archivelink.CodeFailed},
	http.StatusGone:       {archivelink.CodeExpired},
}

// archive is the stable link of a job's archive: 302 to a URL the controller signs at this very
// moment, for a few minutes at most. The link itself never expires while the job is completed,
// so a page left open for hours, or a download resumed with Range after its URL expired, still
// works. The facade holds no storage credentials; the controller signs.
func (f *Facade) archive(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("action") != archiveSegment {
		writeError(w, http.StatusNotFound, CodeNotFound, msgNoEndpoint)
		return
	}
	doc := f.lookup(w, r)
	if doc == nil {
		return
	}
	fileName, ok := archivelink.FileName(r.URL.Query(), doc.jobID)
	if !ok {
		writeError(w, http.StatusBadRequest, CodeBadRequest, publicMessage(archivelink.Message(archivelink.CodeBadRequest, doc.jobID)))
		return
	}
	// What the cache already tells needs no call: only a completed, unexpired job gets one.
	var d downloadv1alpha1.Download
	err := f.cache.Get(r.Context(), client.ObjectKey{Namespace: f.cfg.Namespace, Name: doc.jobID}, &d)
	switch {
	case apierrors.IsNotFound(err):
		writeError(w, http.StatusNotFound, CodeNotFound, noJob(doc.jobID))
		return
	case err != nil:
		f.log.ErrorContext(r.Context(), "reading a Download from the cache", "error", err, "jobId", doc.jobID)
		retryAfter(w, time.Second)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, msgStartingUp)
		return
	}
	if verdict := archivelink.Judge(&d, time.Now()); verdict.Status != http.StatusOK {
		writeError(w, verdict.Status, verdict.Code, publicMessage(archivelink.Message(verdict.Code, doc.jobID)))
		return
	}
	status, body, err := f.getFromController(r.Context(), archivelink.Path(f.cfg.Namespace, doc.jobID, fileName))
	if err == nil && status == http.StatusOK {
		var link ArchiveLink
		if err = json.Unmarshal(body, &link); err == nil && isHTTPURL(link.URL) {
			w.Header().Set("Location", link.URL)
			writeJSON(w, http.StatusFound, link)
			return
		}
		f.log.ErrorContext(r.Context(), "the controller's archive link is not a URL", "error", err, "jobId", doc.jobID)
	}
	if err == nil {
		codes, known := controllerCodes[status]
		code := ""
		if known {
			code = controllerCode(body, codes)
		}
		switch {
		case code == archivelink.CodePending || code == archivelink.CodeProcessing:
			// This facade saw the job complete, the controller replica that answered has not
			// yet: its cache is a moment behind, and a retry will find it done.
			f.log.InfoContext(r.Context(), "the controller has not seen the job complete yet", "code", code, "jobId", doc.jobID)
		case known:
			// The controller saw the Download change since this facade's cache did (expired or
			// deleted at this moment), or refused the request: pass its verdict on, in our words.
			writeError(w, status, code, publicMessage(archivelink.Message(code, doc.jobID)))
			return
		default:
			f.log.WarnContext(r.Context(), "the controller could not sign an archive link", "status", status,
				"answer", truncate(string(body)), "jobId", doc.jobID)
		}
	} else {
		f.log.WarnContext(r.Context(), "asking the controller for an archive link", "error", err, "jobId", doc.jobID)
	}
	retryAfter(w, time.Second)
	writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the archive link cannot be signed right now; retry shortly")
}

// controllerCode is the error code of the controller's answer when it is one of codes, and the
// first of codes (the status' generic one) otherwise.
func controllerCode(body []byte, codes []string) string {
	var answer ErrorResponse
	if json.Unmarshal(body, &answer) == nil && slices.Contains(codes, answer.Error.Code) {
		return answer.Error.Code
	}
	return codes[0]
}

// isHTTPURL reports whether s is an absolute http or https URL, the only thing a Location may
// send a client to.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https")
}
