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
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// CancelResponse is the 202 answer of DELETE /v1/download/{jobId}.
type CancelResponse struct {
	JobID  string `json:"jobId"`
	Status string `json:"status"`
}

// cancel deletes the Download. The controller's finalizer then stops the worker Job and removes
// the archive and any upload in flight; the jobId answers 404 once that is done. Knowing the
// jobId (an unguessable UUID) is what entitles a caller to cancel it, as it is to read it.
func (f *Facade) cancel(w http.ResponseWriter, r *http.Request) {
	doc := f.lookup(w, r)
	if doc == nil {
		return
	}
	// Background propagation: answer now, let garbage collection and the finalizer work after.
	// The UID precondition keeps a stale document from deleting a newer Download of the same name
	// (an Idempotency-Key reused after its Download expired).
	uid := doc.uid
	target := &downloadv1alpha1.Download{ObjectMeta: metav1.ObjectMeta{Name: doc.jobID, Namespace: f.cfg.Namespace}}
	err := f.api.Delete(r.Context(), target, client.PropagationPolicy(metav1.DeletePropagationBackground),
		client.Preconditions{UID: &uid})
	switch {
	case err == nil:
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		writeError(w, http.StatusNotFound, CodeNotFound, noJob(doc.jobID))
		return
	default:
		f.log.ErrorContext(r.Context(), "deleting a Download", "error", err, "jobId", doc.jobID)
		retryAfter(w, time.Second)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "cannot cancel right now; retry shortly")
		return
	}
	writeJSON(w, http.StatusAccepted, CancelResponse{JobID: doc.jobID, Status: "cancelled"})
}
