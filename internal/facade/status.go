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
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/download-operator/download-operator/internal/statusdoc"
)

// The values of a status document's "status".
const (
	StatusPending    = statusdoc.Pending
	StatusProcessing = statusdoc.Processing
	StatusCompleted  = statusdoc.Completed
	StatusFailed     = statusdoc.Failed
)

// Status is the status document of a job (internal/statusdoc): the answer of
// GET /v1/download/status/{jobId} and the data of each SSE event.
type Status = statusdoc.Document

// ArchivePath is the stable link of a job's archive, relative to the facade's base URL.
func ArchivePath(jobID string) string { return statusdoc.ArchivePath(jobID) }

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
