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
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/statusdoc"
	"github.com/download-operator/download-operator/internal/tracing"
)

// InitiateRequest is the body of POST /v1/download/initiate.
type InitiateRequest struct {
	FileIDs []int64 `json:"file_ids"`
	// MissingFiles is "fail" (the default: a missing id fails the job, naming it) or "skip" (the
	// archive holds the files that exist, and the status lists the skipped ids).
	MissingFiles string `json:"missing_files,omitempty"`
}

// missingFilesPolicies maps the request's spelling onto the Download's policy.
var missingFilesPolicies = map[string]downloadv1alpha1.MissingFilesPolicy{
	"":     downloadv1alpha1.MissingFilesFail,
	"fail": downloadv1alpha1.MissingFilesFail,
	"skip": downloadv1alpha1.MissingFilesSkip,
}

// InitiateResponse is the 202 answer of POST /v1/download/initiate.
type InitiateResponse struct {
	JobID        string `json:"jobId"`
	Status       string `json:"status"`
	EtaSeconds   int64  `json:"etaSeconds"`
	TotalFileIDs int    `json:"totalFileIds"`
}

// maxIdempotencyKey bounds the Idempotency-Key header; a UUID needs 36 characters.
const maxIdempotencyKey = 255

// cacheCatchUp bounds how long initiate waits for its own Download to reach the cache, so that
// the client's first poll finds it. The watch usually delivers it within milliseconds.
const cacheCatchUp = 2 * time.Second

func (f *Facade) initiate(w http.ResponseWriter, r *http.Request) {
	var req InitiateRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if problem := validateFileIDs(req.FileIDs); problem != "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, problem)
		return
	}
	missingFiles, ok := missingFilesPolicies[req.MissingFiles]
	if !ok {
		writeError(w, http.StatusBadRequest, CodeBadRequest, `missing_files must be "fail" or "skip"`)
		return
	}
	key, hasKey, ok := idempotencyKey(r.Header)
	if !ok {
		writeError(w, http.StatusBadRequest, CodeBadRequest, msgBadIdempotencyKey)
		return
	}
	if !f.synced.Load() {
		retryAfter(w, time.Second)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, msgStartingUp)
		return
	}
	ctx := r.Context()
	bodyHash := requestHash(req.FileIDs, missingFiles)
	clientHash := f.ClientLabelValue(infoFrom(ctx).client)

	name := uuid.NewString()
	if hasKey {
		name = IdempotentJobID(f.cfg.Namespace, clientHash, key)
		var existing downloadv1alpha1.Download
		if err := f.cache.Get(ctx, f.key(name), &existing, client.UnsafeDisableDeepCopy); err == nil {
			f.replay(w, r, &existing, clientHash, bodyHash)
			return
		}
	}

	// The reservation holds the client's place from this count until the cache holds the new
	// Download, so a burst cannot slip past the cap while one client's Creates run in parallel.
	active, admitted, undo, err := f.reservations.reserve(clientHash, name, f.cfg.MaxActivePerClient,
		func() (map[string]bool, error) { return f.clientDownloads(ctx, clientHash) })
	if err != nil {
		f.log.ErrorContext(ctx, "counting active Downloads", "error", err)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "cannot read job state; retry shortly")
		return
	}
	if !admitted {
		retryAfter(w, f.eta.estimate(ctx, f.cache, f.cfg.Namespace))
		writeError(w, http.StatusTooManyRequests, CodeTooManyActive, publicMessage(fmt.Sprintf(
			"%d downloads of yours are still being prepared; wait for one to finish (at most %d at a time)",
			active, f.cfg.MaxActivePerClient)))
		return
	}

	download := &downloadv1alpha1.Download{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: f.cfg.Namespace,
			Labels:      map[string]string{ClientLabel: clientHash},
			Annotations: map[string]string{RequestHashAnnotation: bodyHash},
			// Set here rather than by the controller, whose first reconcile would otherwise spend a
			// write (and the reconcile its event triggers) on adding it before it creates the Job.
			Finalizers: []string{downloadv1alpha1.CleanupFinalizer},
		},
		Spec: downloadv1alpha1.DownloadSpec{FileIDs: req.FileIDs, MissingFiles: missingFiles},
	}
	if f.cfg.MaxBytesPerSecond > 0 {
		download.Spec.MaxBytesPerSecond = ptr.To(f.cfg.MaxBytesPerSecond)
	}
	if hasKey {
		download.Labels[IdempotencyKeyLabel] = keyHash(key)
	}
	// The controller and the worker continue this request's trace from here.
	if traceparent := tracing.Traceparent(ctx); traceparent != "" {
		download.Annotations[downloadv1alpha1.TraceparentAnnotation] = traceparent
	}
	arrived, stop := f.hub.subscribe(name)
	defer stop()
	err = f.api.Create(ctx, download)
	if createRefused(err) {
		undo()
	}
	switch {
	case err == nil:
	case apierrors.IsAlreadyExists(err) && hasKey:
		// Another replica (or a concurrent request) won the race for this key.
		existing, err := f.readAround(ctx, name)
		if err != nil {
			f.log.ErrorContext(ctx, "reading the Download of a replayed key", "error", err, "jobId", name)
			writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "cannot read job state; retry shortly")
			return
		}
		f.replay(w, r, existing, clientHash, bodyHash)
		return
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		// Our validation mirrors the CRD's; the apiserver's verdict is the final word. Its text
		// names the namespace and the resource, so it goes to the log only.
		f.log.WarnContext(ctx, "the apiserver refused a Download", "error", err)
		writeError(w, http.StatusBadRequest, CodeBadRequest, "the request was refused; check file_ids against /openapi.json")
		return
	default:
		f.log.ErrorContext(ctx, "creating a Download", "error", err)
		retryAfter(w, time.Second)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "cannot create the job right now; retry shortly")
		return
	}
	f.awaitCached(ctx, name, arrived)
	f.accepted(w, &InitiateResponse{
		JobID: name, Status: StatusPending, TotalFileIDs: len(req.FileIDs),
		EtaSeconds: seconds(f.eta.estimate(ctx, f.cache, f.cfg.Namespace)),
	})
}

// replay answers a request whose Idempotency-Key names an existing Download. The jobId is
// derived from the client too, so the Download is this client's; the label comparison only
// guards against a Download of that name created some other way (kubectl, an older facade).
func (f *Facade) replay(w http.ResponseWriter, r *http.Request, existing *downloadv1alpha1.Download, clientHash, bodyHash string) {
	if existing.Labels[ClientLabel] != clientHash || existing.Annotations[RequestHashAnnotation] != bodyHash {
		writeError(w, http.StatusConflict, CodeIdempotencyConflict,
			"this Idempotency-Key was already used for a different request; use a new key for a new request")
		return
	}
	f.accepted(w, &InitiateResponse{
		JobID: existing.Name, Status: statusdoc.Of(existing).Status, TotalFileIDs: len(existing.Spec.FileIDs),
		EtaSeconds: seconds(f.eta.estimate(r.Context(), f.cache, f.cfg.Namespace)),
	})
}

func (f *Facade) accepted(w http.ResponseWriter, resp *InitiateResponse) {
	w.Header().Set("Location", "/v1/download/status/"+resp.JobID)
	retryAfter(w, PollAfter)
	writeJSON(w, http.StatusAccepted, resp)
}

// readAround reads one Download from the cache, or from the apiserver when the cache has not
// seen it yet. Only initiate's idempotency race uses it; polls never do.
func (f *Facade) readAround(ctx context.Context, name string) (*downloadv1alpha1.Download, error) {
	var d downloadv1alpha1.Download
	if err := f.cache.Get(ctx, f.key(name), &d); err == nil {
		return &d, nil
	}
	if err := f.api.Get(ctx, f.key(name), &d); err != nil {
		return nil, fmt.Errorf("getting Download %s: %w", name, err)
	}
	return &d, nil
}

// awaitCached waits until the job's document is stored, so the client's first poll, usually
// sent at once, finds its job on this replica. Running out of time only costs that poll a 404.
func (f *Facade) awaitCached(ctx context.Context, name string, arrived <-chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, cacheCatchUp)
	defer cancel()
	for f.docs.get(name) == nil {
		select {
		case <-arrived:
		case <-ctx.Done():
			return
		}
	}
}

// clientIndex indexes the cached Downloads by their ClientLabel value. Counting runs in the
// client's turn, one initiate after the other; through the index each count reads only that
// client's Downloads, where a label selector would scan the whole namespace every time.
const clientIndex = "metadata.labels.client"

func clientOf(obj client.Object) []string {
	if v := obj.GetLabels()[ClientLabel]; v != "" {
		return []string{v}
	}
	return nil
}

// clientDownloads lists the client's Downloads in the cache by name, each with whether it has
// not finished yet. The finished ones are listed too: their names end reservations.
func (f *Facade) clientDownloads(ctx context.Context, clientHash string) (map[string]bool, error) {
	var list downloadv1alpha1.DownloadList
	if err := f.cache.List(ctx, &list, client.InNamespace(f.cfg.Namespace),
		client.MatchingFields{clientIndex: clientHash}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the client's Downloads: %w", err)
	}
	active := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		active[list.Items[i].Name] = !statusdoc.Of(&list.Items[i]).Terminal()
	}
	return active, nil
}

// createRefused reports whether a Create certainly stored nothing: the apiserver answered with a
// refusal, which it decides before writing. Anything else keeps the reservation: AlreadyExists
// means the Download exists (the cache counts it soon), and a timeout, a server error or a lost
// connection may come after the write, so its place stays taken until the cache shows the
// Download or the reservation lapses. Giving it back early could let the cap overshoot.
func createRefused(err error) bool {
	status, ok := errors.AsType[*apierrors.StatusError](err)
	if !ok || apierrors.IsAlreadyExists(err) {
		return false
	}
	code := status.Status().Code
	return code >= 400 && code < 500
}

func (f *Facade) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: f.cfg.Namespace, Name: name}
}

// validateFileIDs applies the CRD's rules with the same constants, so a bad request is answered
// 400 here instead of becoming an apiserver round trip. It returns what is wrong, or "".
func validateFileIDs(ids []int64) publicMessage {
	if len(ids) < downloadv1alpha1.MinFileIDs || len(ids) > downloadv1alpha1.MaxFileIDs {
		return publicMessage(fmt.Sprintf("file_ids must hold %d to %d ids, not %d",
			downloadv1alpha1.MinFileIDs, downloadv1alpha1.MaxFileIDs, len(ids)))
	}
	seen := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		if id < downloadv1alpha1.MinFileID || id > downloadv1alpha1.MaxFileID {
			return publicMessage(fmt.Sprintf("file id %d is outside [%d, %d]", id, downloadv1alpha1.MinFileID, downloadv1alpha1.MaxFileID))
		}
		if _, dup := seen[id]; dup {
			return publicMessage(fmt.Sprintf("file id %d appears more than once", id))
		}
		seen[id] = struct{}{}
	}
	return ""
}

// decodeJSON reads a JSON body strictly: application/json only, at most MaxBodyBytes, no
// unknown fields, no trailing data. It answers the error itself and returns false on any.
func decodeJSON(w http.ResponseWriter, r *http.Request, into any) bool {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "send the body as Content-Type: application/json")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		writeError(w, http.StatusRequestEntityTooLarge, CodePayloadTooLarge, msgBodyTooLarge)
		return false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "could not read the body")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, decodeProblem(err))
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "invalid JSON body: unexpected data after the object")
		return false
	}
	return true
}

// Fixed texts of body and header problems.
var (
	msgBodyTooLarge      = publicMessage(fmt.Sprintf("the body must not exceed %d bytes", MaxBodyBytes))
	msgBadIdempotencyKey = publicMessage(fmt.Sprintf(
		"Idempotency-Key must be one value of 1 to %d printable ASCII characters", maxIdempotencyKey))
)

const (
	msgNotJSON      publicMessage = "invalid JSON body: not one well-formed JSON object"
	msgWrongType    publicMessage = "invalid JSON body: a field has the wrong type; see /openapi.json"
	msgUnknownField publicMessage = "invalid JSON body: unknown field; see /openapi.json"
)

// decodeProblem names what is wrong with a body from a closed set: the decoder's own text quotes
// the body back, and an answer must not reflect what a caller sent.
func decodeProblem(err error) publicMessage {
	if _, wrongType := errors.AsType[*json.UnmarshalTypeError](err); wrongType {
		return msgWrongType
	}
	// encoding/json has no error type for DisallowUnknownFields; its text is stable since Go 1.10.
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		return msgUnknownField
	}
	return msgNotJSON
}

// idempotencyKey reads the Idempotency-Key header; ok is false when it is present but invalid.
func idempotencyKey(h http.Header) (key string, present, ok bool) {
	values := h.Values("Idempotency-Key")
	if len(values) == 0 {
		return "", false, true
	}
	key = values[0]
	if len(values) > 1 || key == "" || len(key) > maxIdempotencyKey ||
		strings.ContainsFunc(key, func(r rune) bool { return r < ' ' || r > '~' }) {
		return "", true, false
	}
	return key, true, true
}

// IdempotentJobID is the jobId of an Idempotency-Key sent by a client (its ClientLabelValue)
// in a namespace: sha256(namespace, client, key) shaped as a version-4, RFC 4122 variant UUID,
// so it is indistinguishable from a random jobId and every replica derives the same one. Keys
// are scoped per client, as payment APIs scope them per account: the same key from another
// client is another request, with another jobId.
func IdempotentJobID(namespace, client, key string) string {
	sum := sha256.Sum256([]byte(namespace + "\x00" + client + "\x00" + key))
	var id uuid.UUID
	copy(id[:], sum[:16])
	id[6] = (id[6] & 0x0f) | 0x40
	id[8] = (id[8] & 0x3f) | 0x80
	return id.String()
}

func keyHash(key string) string {
	sum := sha256.Sum256([]byte("idempotency-key\x00" + key))
	return hex.EncodeToString(sum[:16])
}

// requestHash identifies a request by its meaning, not its bytes: whitespace or field order in
// the JSON must not turn a replay into a conflict, while the order of ids (the archive's) and the
// missing-file policy do. The default policy adds nothing, so hashes from before it existed hold.
func requestHash(ids []int64, missingFiles downloadv1alpha1.MissingFilesPolicy) string {
	raw, _ := json.Marshal(ids)
	if missingFiles != downloadv1alpha1.MissingFilesFail {
		raw = append(raw, missingFiles...)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

func seconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }
