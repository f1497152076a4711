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
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// sseRetry is what EventSource waits before reconnecting, matching the poll interval.
const sseRetry = PollAfter

// hub fans the informer's notifications out to the streams (and initiates) waiting on one jobId.
// A notification only says "look again": subscribers read the documents themselves, so a slow
// reader misses intermediate states, never the latest one.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{subs: map[string]map[chan struct{}]struct{}{}} }

func (h *hub) subscribe(name string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[name] == nil {
		h.subs[name] = map[chan struct{}]struct{}{}
	}
	h.subs[name][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs[name], ch)
		if len(h.subs[name]) == 0 {
			delete(h.subs, name)
		}
	}
}

func (h *hub) notify(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[name] {
		select {
		case ch <- struct{}{}:
		default: // already signalled and not yet read
		}
	}
}

// eventID places a status document in the job's lifecycle: rank (pending, processing,
// finished), attempt, bytes done and URL expiry, each of which only grows, then the object's
// resourceVersion to order the changes in between (an ETA update, so only while processing). Comparing ids therefore tells
// whether a client has seen a state, on any replica, without stored history. The resourceVersion
// is opaque by contract but a growing integer in etcd; if it ever is not, ids still order by the
// lifecycle and only ETA updates may be repeated on reconnect.
func eventID(d *downloadv1alpha1.Download, s *Status) string {
	rank := 0
	switch {
	case s.Terminal():
		rank = 2
	case s.Status == StatusProcessing:
		rank = 1
	}
	var expiry int64
	if d.Status.URLExpiresAt != nil {
		expiry = d.Status.URLExpiresAt.Unix()
	}
	// Only a processing document changes between lifecycle steps (its ETA); a pending or finished
	// one is fully described by the parts above, so writes a client cannot see (the finalizer,
	// the controller's first status) must not make it look new.
	var version int64
	if rank == 1 {
		version, _ = strconv.ParseInt(d.ResourceVersion, 10, 64)
	}
	return fmt.Sprintf("%d.%d.%d.%d.%d", rank, d.Status.Attempts, d.Status.BytesDone, expiry, version)
}

// goneEventID follows every state a client could have seen: the Download no longer exists.
const goneEventID = "3.0.0.0.0"

// newerThan reports whether id is later than last; an unreadable last counts as "nothing seen".
func newerThan(id, last string) bool {
	a, okA := parseEventID(id)
	b, okB := parseEventID(last)
	if !okA || !okB {
		return true
	}
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

func parseEventID(id string) ([5]int64, bool) {
	var out [5]int64
	parts := strings.Split(id, ".")
	if len(parts) != len(out) {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

func (f *Facade) events(w http.ResponseWriter, r *http.Request) {
	name, err := parseJobID(r.PathValue("jobId"))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, msgBadJobID)
		return
	}
	// Subscribe before the first read, so no change can fall between the two.
	changed, unsubscribe := f.hub.subscribe(name)
	defer unsubscribe()
	current := f.lookup(w, r)
	if current == nil {
		return
	}
	if r.Method == http.MethodHead {
		// ServeMux routes HEAD to GET patterns; a stream nobody reads must not be held open.
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	lastID := r.Header.Get("Last-Event-ID")
	if current.terminal && lastID != "" && !newerThan(current.eventID, lastID) {
		// The client saw the end already; 204 is what makes EventSource stop reconnecting.
		w.WriteHeader(http.StatusNoContent)
		return
	}

	// Counted per client as clientAddress names it, so a proxy's clients do not share one cap.
	release, ok := f.streams.acquire(infoFrom(r.Context()).client)
	if !ok {
		f.metrics.refusedStreams.Inc()
		// EventSource gives up on any answer but 200, so the refusal also stops its reconnects.
		retryAfter(w, sseRetry)
		writeError(w, http.StatusTooManyRequests, CodeTooManyStreams, msgTooManyStreams)
		return
	}
	defer release()
	f.metrics.sseClients.Inc()
	defer f.metrics.sseClients.Dec()
	stream := newEventStream(w, f.cfg.HeartbeatInterval)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// nginx buffers responses unless told not to, which would hold events back.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := stream.write(fmt.Sprintf("retry: %d\n\n", sseRetry.Milliseconds())); err != nil {
		return
	}

	var sent []byte
	send := func(doc *document) (done bool, err error) {
		if doc.code != http.StatusOK {
			return true, fmt.Errorf("encoding the event of %s failed", doc.jobID)
		}
		data := doc.data()
		if bytes.Equal(data, sent) {
			return false, nil
		}
		if lastID == "" || newerThan(doc.eventID, lastID) {
			if err := stream.write(fmt.Sprintf("id: %s\ndata: %s\n\n", doc.eventID, data)); err != nil {
				return true, err
			}
			lastID = ""
		}
		sent = data
		return doc.terminal, nil
	}
	if done, err := send(current); done || err != nil {
		return
	}

	heartbeat := time.NewTicker(f.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-f.draining:
			return
		case <-heartbeat.C:
			if err := stream.write(": heartbeat\n\n"); err != nil {
				return
			}
		case <-changed:
			latest := f.docs.get(name)
			if latest == nil {
				latest = goneDocument(name)
			}
			if done, err := send(latest); done || err != nil {
				return
			}
		}
	}
}

// eventStream writes SSE frames and flushes each at once. The server's WriteTimeout and
// ReadTimeout are meant for ordinary requests; a stream clears the read deadline and moves its
// write deadline forward with every frame, so only a client that stops reading is dropped.
type eventStream struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	heartbeat time.Duration
}

func newEventStream(w http.ResponseWriter, heartbeat time.Duration) *eventStream {
	rc := http.NewResponseController(w)
	// Without this the connection's background read hits ReadTimeout and cancels the stream.
	_ = rc.SetReadDeadline(time.Time{})
	return &eventStream{w: w, rc: rc, heartbeat: heartbeat}
}

func (s *eventStream) write(frame string) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(2*s.heartbeat + 10*time.Second))
	if _, err := s.w.Write([]byte(frame)); err != nil {
		return fmt.Errorf("writing event: %w", err)
	}
	if err := s.rc.Flush(); err != nil {
		return fmt.Errorf("flushing event: %w", err)
	}
	return nil
}
