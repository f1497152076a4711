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

package facade_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/download-operator/download-operator/internal/facade"
)

func TestEventsSendHeartbeatsOutlivingServerTimeouts(t *testing.T) {
	f := newFacade(t, func(cfg *facade.Config) {
		cfg.HeartbeatInterval = 100 * time.Millisecond
		// Far shorter than the stream: only the stream's own deadlines keep it open.
		cfg.ReadTimeout, cfg.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	c := newCaller(t, f)
	accepted := c.initiate([]int64{80000})
	events := c.openEvents(accepted.JobID)
	if events.resp.Header.Get("X-Accel-Buffering") != "no" || events.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("headers %v", events.resp.Header)
	}
	first, _ := events.next(t, 5*time.Second, false)
	if !strings.Contains(first.Data, `"status":"pending"`) || first.ID == "" {
		t.Fatalf("first event %+v", first)
	}
	heartbeats := 0
	for deadline := time.Now().Add(1200 * time.Millisecond); time.Now().Before(deadline); {
		ev, ok := events.next(t, time.Second, true)
		if !ok {
			t.Fatalf("the stream ended after %d heartbeats", heartbeats)
		}
		if ev.Comment == "heartbeat" {
			heartbeats++
		}
	}
	if heartbeats < 5 {
		t.Errorf("%d heartbeats in 1.2s at a 100ms interval", heartbeats)
	}
}

func TestEventsHonourLastEventID(t *testing.T) {
	s, ctx, c := onSharedStack(t)
	accepted := c.initiate([]int64{80100})
	first := c.openEvents(accepted.JobID)
	pending, _ := first.next(t, 5*time.Second, false)
	first.close()

	// Reconnecting with what it saw gives the client nothing until something changes.
	again := c.openEvents(accepted.JobID, "Last-Event-ID", pending.ID)
	select {
	case ev := <-again.events:
		if ev.Data != "" {
			t.Fatalf("resent what the client saw: %+v", ev)
		}
	case <-time.After(300 * time.Millisecond):
	}
	job, err := s.WaitForStartedJob(ctx, accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	processing, _ := again.next(t, 10*time.Second, false)
	if !strings.Contains(processing.Data, `"status":"processing"`) {
		t.Fatalf("after the Job started: %+v", processing)
	}
	again.close()

	// A client that missed the end gets just the end.
	if err := s.FailJob(ctx, job, nil, "BackoffLimitExceeded", 4); err != nil {
		t.Fatal(err)
	}
	c.eventually(accepted.JobID, hasStatus(facade.StatusFailed))
	late := c.openEvents(accepted.JobID, "Last-Event-ID", processing.ID)
	end, _ := late.next(t, 5*time.Second, false)
	if !strings.Contains(end.Data, `"status":"failed"`) {
		t.Errorf("the missed end: %+v", end)
	}
	if _, ok := late.next(t, 5*time.Second, false); ok {
		t.Error("the stream goes on after the terminal event")
	}

	// A client that saw the end is told to stop reconnecting.
	resp := c.do(http.MethodGet, "/v1/download/events/"+accepted.JobID, nil, "Last-Event-ID", end.ID)
	if resp.StatusCode != http.StatusNoContent || len(resp.body) != 0 {
		t.Errorf("after the end: %d %q", resp.StatusCode, resp.body)
	}
	// Without Last-Event-ID the end is sent again, and the stream closes at once.
	full := c.openEvents(accepted.JobID)
	if ev, _ := full.next(t, 5*time.Second, false); ev.ID != end.ID {
		t.Errorf("fresh stream on a finished job: %+v", ev)
	}
	if _, ok := full.next(t, 5*time.Second, false); ok {
		t.Error("the stream on a finished job stays open")
	}
}

func TestShutdownDrainsEventStreams(t *testing.T) {
	f := newFacade(t, nil)
	c := newCaller(t, f)
	accepted := c.initiate([]int64{80200})
	events := c.openEvents(accepted.JobID)
	events.next(t, 5*time.Second, false)
	start := time.Now()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("shutdown took %s with an open stream", took)
	}
	select {
	case <-events.done:
	case <-time.After(3 * time.Second):
		t.Fatal("the stream stayed open after shutdown")
	}
	_, err := io.ReadAll(events.resp.Body)
	if err != nil && !strings.Contains(err.Error(), "closed") {
		t.Logf("stream ended with %v", err)
	}
}
