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

// Package eventsink is a receiver of download-operator's CloudEvents for tests: it accepts the
// signed POSTs internal/events sends, parses each with the CloudEvents SDK, verifies its
// signature under the sink's key and keeps everything to assert on. It listens on any address
// it is given, so a test can start it on 0.0.0.0:<port> and point Pods at it through the node's
// address.
package eventsink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/download-operator/download-operator/internal/events"
)

// Tolerance is how far a signature's timestamp may be from the receiver's clock.
const Tolerance = 5 * time.Minute

// Delivery is one request the receiver got.
type Delivery struct {
	At     time.Time
	Header http.Header
	Body   []byte
	// Event is the request as the CloudEvents SDK reads it; nil when it could not (ParseErr).
	Event    *event.Event
	ParseErr error
	// SignatureErr is why the signature header does not verify under the key; nil when it does.
	SignatureErr error
	// Status is what the receiver answered.
	Status int
}

// Data decodes the event's data.
func (d Delivery) Data() (events.Data, error) {
	var data events.Data
	if d.Event == nil {
		return data, fmt.Errorf("no event: %w", d.ParseErr)
	}
	if err := d.Event.DataAs(&data); err != nil {
		return data, fmt.Errorf("decoding the data of event %s: %w", d.Event.ID(), err)
	}
	return data, nil
}

// Receiver records the deliveries sent to it. It is safe for concurrent use.
type Receiver struct {
	key     []byte
	respond func(n int) int
	ln      net.Listener
	srv     *http.Server

	mu         sync.Mutex
	deliveries []Delivery
}

// maxBody bounds a request; events are a few hundred bytes.
const maxBody = 1 << 20

// Start listens on addr (e.g. "127.0.0.1:0" or "0.0.0.0:18091"). respond chooses the answer to
// the nth request (from 1), and may block to play a slow sink; nil answers 204 to everything.
func Start(addr string, key []byte, respond func(n int) int) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for events on %s: %w", addr, err)
	}
	r := &Receiver{key: key, respond: respond, ln: ln}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.receive), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *Receiver) receive(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d := Delivery{At: time.Now(), Header: req.Header.Clone(), Body: body}
	d.SignatureErr = events.Verify(r.key, body, req.Header.Get(events.SignatureHeader), d.At, Tolerance)
	// The SDK reads the request from the bytes the signature was checked against.
	req.Body = io.NopCloser(bytes.NewReader(body))
	d.Event, d.ParseErr = cehttp.NewEventFromHTTPRequest(req)
	r.mu.Lock()
	n := len(r.deliveries) + 1
	r.deliveries = append(r.deliveries, d)
	r.mu.Unlock()

	d.Status = http.StatusNoContent
	if r.respond != nil {
		d.Status = r.respond(n)
	}
	r.mu.Lock()
	r.deliveries[n-1].Status = d.Status
	r.mu.Unlock()
	w.WriteHeader(d.Status)
}

// Deliveries returns a copy of every delivery so far, in arrival order.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Of returns the deliveries of the events whose subject (the jobId) is jobID.
func (r *Receiver) Of(jobID string) []Delivery {
	var out []Delivery
	for _, d := range r.Deliveries() {
		if d.Event != nil && d.Event.Subject() == jobID {
			out = append(out, d)
		}
	}
	return out
}

// URL is the receiver's address as seen at host (e.g. 127.0.0.1, or the node IP for Pods).
func (r *Receiver) URL(host string) string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(r.ln.Addr().(*net.TCPAddr).Port)) + "/"
}

// Close stops the receiver.
func (r *Receiver) Close() error {
	if err := r.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("closing the event receiver: %w", err)
	}
	return nil
}
