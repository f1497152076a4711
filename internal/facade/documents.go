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
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/statusdoc"
)

// document is a job's status document as polls and streams serve it. It is rendered once per
// change of its Download, not once per poll: polls outnumber changes by orders of magnitude, and
// encoding per poll (with the cache lookup before it) was most of a poll's cost. A document is
// never modified once stored, so readers use it without holding the store's lock.
type document struct {
	jobID string
	// uid lets a cancel delete exactly the Download this document describes.
	uid types.UID
	// code is 200, or 500 in the impossible case that the document could not be encoded.
	code int
	// body is the answer of a poll: the JSON document and a newline.
	body []byte
	// contentLength is the Content-Length header value of body, built once.
	contentLength []string
	eventID       string
	terminal      bool
}

// renderDocument is the only way from a Download to its document: statusdoc.Of maps it, and
// eventID places it in the job's lifecycle. Nothing in a document depends on the time it is
// rendered (the ETA and the URL's expiry are the controller's values, in the Download), so a
// document rendered at a change stays right until the next change.
func renderDocument(d *downloadv1alpha1.Download) *document {
	s := statusdoc.Of(d)
	return newDocument(d.Name, d.UID, s, eventID(d, s))
}

// goneDocument is what a stream sends when the Download disappears before it saw the job finish.
func goneDocument(jobID string) *document {
	return newDocument(jobID, "", statusdoc.Cancelled(jobID), goneEventID)
}

func newDocument(jobID string, uid types.UID, s *Status, id string) *document {
	code, body := encodeJSON(http.StatusOK, s)
	return &document{
		jobID: jobID, uid: uid, code: code, body: body,
		contentLength: []string{strconv.Itoa(len(body))},
		eventID:       id, terminal: s.Terminal(),
	}
}

// data is the document as one SSE event's data: the JSON without the poll's newline.
func (d *document) data() []byte { return d.body[:len(d.body)-1] }

// write answers a poll. The header values are assigned rather than Set: the keys are canonical
// already, and the shared slices are only read (see the header values in respond.go).
func (d *document) write(w http.ResponseWriter) {
	h := w.Header()
	h[headerContentType] = valueJSON
	h[headerCacheControl] = valueNoStore
	h[headerContentLength] = d.contentLength
	w.WriteHeader(d.code)
	_, _ = w.Write(d.body)
}

// documents keeps the document of every Download in the facade's cache, by name (the cache
// watches one namespace, so names are unique). The informer's event handler feeds it: see
// Facade.downloadChanged.
type documents struct {
	mu     sync.RWMutex
	byName map[string]*document
}

func newDocuments() *documents { return &documents{byName: map[string]*document{}} }

func (s *documents) get(jobID string) *document {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byName[jobID]
}

func (s *documents) put(doc *document) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byName[doc.jobID] = doc
}

func (s *documents) remove(jobID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byName, jobID)
}

func (s *documents) size() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byName)
}

// downloadChanged is the informer's add and update handler: it stores the new document, ends
// the Download's reservation (the cache counts it now), then tells the streams and initiates
// waiting on the job, which read the store.
//
// A newer document is never overwritten by an older one without comparing resourceVersions:
// client-go delivers one handler registration's notifications in the order the informer
// applied them to its store, from a single goroutine, so each put replaces the previous state
// with the next. The store is therefore as fresh as the cache, behind it only by the moment
// between the informer updating its indexer and calling this handler.
func (f *Facade) downloadChanged(obj any) {
	d, ok := obj.(*downloadv1alpha1.Download)
	if !ok {
		return
	}
	doc := renderDocument(d)
	if doc.code != http.StatusOK {
		f.log.Error("encoding a status document failed", "jobId", d.Name)
	}
	f.docs.put(doc)
	f.reservations.seen(d.Labels[ClientLabel], d.Name)
	f.hub.notify(d.Name)
}

// downloadDeleted is the informer's delete handler. When the watch missed the deletion (it was
// down while the Download went), the informer passes a tombstone with the last known state, or
// at least its key.
func (f *Facade) downloadDeleted(obj any) {
	var name string
	switch o := obj.(type) {
	case *downloadv1alpha1.Download:
		name = o.Name
	case toolscache.DeletedFinalStateUnknown:
		if d, ok := o.Obj.(*downloadv1alpha1.Download); ok {
			name = d.Name
		} else if _, n, err := toolscache.SplitMetaNamespaceKey(o.Key); err == nil {
			name = n
		}
	}
	if name == "" {
		return
	}
	f.docs.remove(name)
	f.hub.notify(name)
}
