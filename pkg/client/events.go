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

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// ErrStreamEnded means an event stream closed before it carried a terminal status: the server
// restarted or a proxy cut the connection. The job goes on; resume with the last event id.
var ErrStreamEnded = errors.New("event stream ended before the job finished")

// ErrEventsUnsupported means the server answered the events endpoint with something other than
// an event stream, as a proxy that does not pass SSE through may.
var ErrEventsUnsupported = errors.New("server did not answer with an event stream")

// errHeartbeatTimeout cancels a stream on which not even a heartbeat arrived in time.
var errHeartbeatTimeout = errors.New("event stream silent for longer than the heartbeat timeout")

// maxPollFailures is how many polls in a row may fail on the network before Wait gives up. At
// the default interval that rides out a facade restart of about 15 s.
const maxPollFailures = 5

// Events follows a job's server-sent events and calls fn with each status, in order, until a
// terminal one, after which it returns nil. A non-empty lastEventID resumes a stream after the
// event with that id. Comments (the server's heartbeats) are skipped. A stream that closes
// early returns ErrStreamEnded; one silent for longer than the heartbeat timeout is treated as
// broken and returns an error too. Each Status carries its event id in EventID, to resume
// from. An error returned by fn stops the stream and is returned as it is.
func (c *Client) Events(ctx context.Context, jobID, lastEventID string, fn func(Status) error) error {
	path, err := jobPath("/v1/download/events/", jobID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	header := http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
	if lastEventID != "" {
		header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := c.do(ctx, http.MethodGet, path, nil, header)
	if err != nil {
		return fmt.Errorf("opening event stream of job %s: %w", jobID, err)
	}
	// Cancel before closing: draining a live stream for connection reuse would block.
	defer func() { cancel(nil); _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusNoContent {
		// The server's way, as EventSource's, of saying that lastEventID was the terminal event.
		return fmt.Errorf("opening event stream of job %s: no events after %q: %w", jobID, lastEventID, ErrStreamEnded)
	}
	if mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mediaType != "text/event-stream" {
		return fmt.Errorf("opening event stream of job %s: %w (Content-Type %q)", jobID, ErrEventsUnsupported,
			resp.Header.Get("Content-Type"))
	}

	idle := time.AfterFunc(c.heartbeatTimeout, func() { cancel(errHeartbeatTimeout) })
	defer idle.Stop()
	body := &activityReader{r: resp.Body, onData: func() { idle.Reset(c.heartbeatTimeout) }}
	for event, err := range sse.Read(body, nil) {
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = cause
			}
			return fmt.Errorf("reading event stream of job %s: %w", jobID, err)
		}
		if strings.TrimSpace(event.Data) == "" {
			continue
		}
		var status Status
		if err := json.Unmarshal([]byte(event.Data), &status); err != nil {
			return fmt.Errorf("decoding event %q of job %s: %w", event.LastEventID, jobID, err)
		}
		status.EventID = event.LastEventID
		if err := fn(status); err != nil {
			return err
		}
		if status.Terminal() {
			return nil
		}
	}
	// sse.Read reports a reader error only when it is not EOF; a cancelled request shows up as
	// a plain end of the body, so the cause decides.
	if cause := context.Cause(ctx); cause != nil {
		return fmt.Errorf("reading event stream of job %s: %w", jobID, cause)
	}
	return fmt.Errorf("reading event stream of job %s: %w", jobID, ErrStreamEnded)
}

// Wait follows a job until it completes or fails and returns its terminal status; a failed job
// is not an error here (see Status.Err). onUpdate, if not nil, sees every status on the way.
//
// It listens on server-sent events first. When the events endpoint is missing (404, 405, 501,
// or no event stream), it polls the status instead for the rest of the wait. When a stream
// breaks, it polls at once, since the job may have moved on meanwhile, and reconnects after one
// poll interval with Last-Event-ID. The interval is the server's Retry-After, else the client's
// poll interval (3 s by default). Only an error response other than 429 or 503 (an unknown job,
// say), a few failed polls in a row, or the end of ctx stop it early.
func (c *Client) Wait(ctx context.Context, jobID string, onUpdate func(Status)) (*Status, error) {
	var (
		last        *Status
		lastEventID string
		useEvents   = true
		failures    int
	)
	seen := func(s Status) {
		if s.EventID != "" {
			lastEventID = s.EventID
		}
		last = &s
		if onUpdate != nil {
			onUpdate(s)
		}
	}
	for {
		if useEvents {
			err := c.Events(ctx, jobID, lastEventID, func(s Status) error { seen(s); return nil })
			if err == nil {
				return last, nil
			}
			if ctx.Err() != nil {
				return last, fmt.Errorf("waiting for job %s: %w", jobID, context.Cause(ctx))
			}
			useEvents = !eventsUnavailable(err)
		}

		status, err := c.Status(ctx, jobID)
		var apiErr *APIError
		switch {
		case err == nil:
			failures = 0
			seen(*status)
			if status.Terminal() {
				return status, nil
			}
		case ctx.Err() != nil:
			return last, fmt.Errorf("waiting for job %s: %w", jobID, context.Cause(ctx))
		case errors.As(err, &apiErr) && !apiErr.Temporary():
			return last, fmt.Errorf("waiting for job %s: %w", jobID, err)
		default:
			if failures++; failures >= maxPollFailures {
				return last, fmt.Errorf("waiting for job %s: %d polls in a row failed: %w", jobID, failures, err)
			}
		}

		interval := c.pollInterval
		if status != nil && status.RetryAfter > 0 {
			interval = status.RetryAfter
		}
		if err := sleep(ctx, interval); err != nil {
			return last, fmt.Errorf("waiting for job %s: %w", jobID, err)
		}
	}
}

// eventsUnavailable tells a server without working SSE (so polling is all there is) from a
// stream that broke once. A 404 may also mean an unknown job; the status poll then says so.
func eventsUnavailable(err error) bool {
	if errors.Is(err, ErrEventsUnsupported) {
		return true
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusNotImplemented:
		return true
	}
	return false
}

// activityReader reports every read that returned data, heartbeats included.
type activityReader struct {
	r      io.Reader
	onData func()
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.onData()
	}
	return n, err
}
