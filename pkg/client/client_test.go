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

package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/download-operator/download-operator/pkg/client"
)

// The servers in this file are protocol fakes: each scripts one wire-level behaviour of the
// facade or of a proxy in front of it (SSE framing, a dropped stream, a 429) that the real stack
// cannot be made to produce on demand. What the client does against the real facade, worker and
// MinIO is proven end to end in internal/cli.

func newTestClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	fast := []client.Option{
		client.WithPollInterval(20 * time.Millisecond),
		client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxElapsed: 10 * time.Second}),
	}
	c, err := client.New(url, append(fast, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// writeStream sends raw SSE text and flushes it, so that the client sees it at once.
func writeStream(w http.ResponseWriter, text string) {
	_, _ = io.WriteString(w, text)
	w.(http.Flusher).Flush()
}

func startStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, code int, errCode, message string) {
	writeJSON(w, code, map[string]any{"error": map[string]string{"code": errCode, "message": message}})
}

func TestEventsParsesCommentsMultiLineDataAndIDs(t *testing.T) {
	var gotLastEventID, gotAccept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/download/events/job-1" {
			http.NotFound(w, r)
			return
		}
		gotLastEventID, gotAccept = r.Header.Get("Last-Event-ID"), r.Header.Get("Accept")
		startStream(w)
		writeStream(w, ": connected\n\n")
		writeStream(w, "id: 1\ndata: {\"jobId\":\"job-1\",\"status\":\"pending\"}\n\n")
		writeStream(w, ": heartbeat\n\n")
		// One JSON document split over three data lines, which SSE joins with newlines.
		writeStream(w, "id: 2\ndata: {\"jobId\":\"job-1\",\ndata:  \"status\":\"processing\",\"progress\":40,\ndata: \"bytesDone\":4,\"bytesTotal\":10,\"etaSeconds\":6}\n\n")
		// No id line: the event keeps the last id, as EventSource does.
		writeStream(w, "event: status\r\ndata: {\"jobId\":\"job-1\",\"status\":\"processing\",\"progress\":50}\r\n\r\n")
		writeStream(w, "id: 4\ndata: {\"jobId\":\"job-1\",\"status\":\"completed\",\"downloadUrl\":\"http://s/a.zip\",\"size\":10,\"sha256\":\"ab\",\"expiresAt\":\"2026-01-02T03:04:05Z\"}\n\n")
		writeStream(w, "id: 5\ndata: {\"jobId\":\"job-1\",\"status\":\"pending\"}\n\n")
	}))
	defer srv.Close()

	var got []client.Status
	err := newTestClient(t, srv.URL).Events(testContext(t), "job-1", "0", func(s client.Status) error {
		got = append(got, s)
		return nil
	})
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if gotLastEventID != "0" || gotAccept != "text/event-stream" {
		t.Errorf("request headers: Last-Event-ID %q, Accept %q", gotLastEventID, gotAccept)
	}
	want := []struct {
		id       string
		state    client.State
		progress int
	}{{"1", client.StatePending, 0}, {"2", client.StateProcessing, 40}, {"2", client.StateProcessing, 50}, {"4", client.StateCompleted, 0}}
	if len(got) != len(want) {
		t.Fatalf("got %d statuses, want %d (comments skipped, nothing after the terminal one): %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].EventID != w.id || got[i].Status != w.state || got[i].Progress != w.progress {
			t.Errorf("status %d = {id %q %s %d%%}, want {id %q %s %d%%}", i, got[i].EventID, got[i].Status, got[i].Progress, w.id, w.state, w.progress)
		}
	}
	if got[1].BytesTotal != 10 || got[1].EtaSeconds == nil || *got[1].EtaSeconds != 6 {
		t.Errorf("multi-line event lost fields: %+v", got[1])
	}
	if done := got[3]; done.DownloadURL != "http://s/a.zip" || done.SHA256 != "ab" || !done.ExpiresAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("completed status: %+v", done)
	}
}

func TestEventsReportsAStreamThatEndsEarly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		startStream(w)
		writeStream(w, "id: 1\ndata: {\"jobId\":\"j\",\"status\":\"processing\"}\n\n")
		// An event cut off by the connection's end must not be delivered.
		writeStream(w, "id: 2\ndata: {\"jobId\":\"j\",\"status\":\"completed\"")
	}))
	defer srv.Close()
	var n int
	err := newTestClient(t, srv.URL).Events(testContext(t), "j", "", func(client.Status) error { n++; return nil })
	if !errors.Is(err, client.ErrStreamEnded) {
		t.Fatalf("Events = %v, want ErrStreamEnded", err)
	}
	if n != 1 {
		t.Errorf("delivered %d events, want only the complete one", n)
	}
}

func TestEventsStopsWhenTheCallbackFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		startStream(w)
		writeStream(w, "data: {\"jobId\":\"j\",\"status\":\"processing\"}\n\n")
		<-r.Context().Done()
	}))
	defer srv.Close()
	stop := errors.New("enough")
	err := newTestClient(t, srv.URL).Events(testContext(t), "j", "", func(client.Status) error { return stop })
	if err != stop { //nolint:errorlint // the callback's own error must come back unwrapped
		t.Fatalf("Events = %v, want the callback's error as it is", err)
	}
}

func TestEventsHeartbeatsKeepAQuietStreamAlive(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		startStream(w)
		for range 6 {
			time.Sleep(50 * time.Millisecond)
			writeStream(w, ":\n\n")
		}
		writeStream(w, "data: {\"jobId\":\"j\",\"status\":\"failed\",\"error\":{\"code\":\"SourceNotFound\",\"message\":\"70001 missing\"}}\n\n")
	}))
	defer srv.Close()
	var last client.Status
	c := newTestClient(t, srv.URL, client.WithHeartbeatTimeout(150*time.Millisecond))
	if err := c.Events(testContext(t), "j", "", func(s client.Status) error { last = s; return nil }); err != nil {
		t.Fatalf("Events over 300 ms of heartbeats with a 150 ms timeout: %v", err)
	}
	var failed *client.JobFailedError
	if !errors.As(last.Err(), &failed) || failed.Code != "SourceNotFound" || failed.Message != "70001 missing" {
		t.Errorf("failed status Err() = %v", last.Err())
	}
}

// jobFake serves the status and events endpoints of one job, whose state the test scripts.
type jobFake struct {
	mu              sync.Mutex
	polls           []client.Status // returned in turn; the last one repeats
	pollCount       int
	pollRetryAfter  string
	eventsHandler   func(w http.ResponseWriter, r *http.Request, attempt int)
	eventsAttempts  int
	lastEventIDs    []string
	pollTimes       []time.Time
	unknownStatuses bool
}

func (f *jobFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/download/events/"):
		f.eventsAttempts++
		f.lastEventIDs = append(f.lastEventIDs, r.Header.Get("Last-Event-ID"))
		attempt, handler := f.eventsAttempts, f.eventsHandler
		f.mu.Unlock()
		handler(w, r, attempt)
		return
	case strings.HasPrefix(r.URL.Path, "/v1/download/status/"):
		defer f.mu.Unlock()
		f.pollTimes = append(f.pollTimes, time.Now())
		if f.unknownStatuses {
			writeAPIError(w, http.StatusNotFound, "NotFound", "no job j")
			return
		}
		s := f.polls[min(f.pollCount, len(f.polls)-1)]
		f.pollCount++
		if f.pollRetryAfter != "" {
			w.Header().Set("Retry-After", f.pollRetryAfter)
		}
		writeJSON(w, http.StatusOK, s)
	default:
		f.mu.Unlock()
		http.NotFound(w, r)
	}
}

// waitOn runs Wait against fake and returns the final status and every update on the way.
func waitOn(t *testing.T, fake *jobFake, opts ...client.Option) (*client.Status, []client.Status) {
	t.Helper()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var updates []client.Status
	final, err := newTestClient(t, srv.URL, opts...).Wait(testContext(t), "j", func(s client.Status) { updates = append(updates, s) })
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return final, updates
}

func states(statuses []client.Status) []client.State {
	var out []client.State
	for _, s := range statuses {
		out = append(out, s.Status)
	}
	return out
}

func TestWaitPollsWhenTheEventsEndpointIsUnavailable(t *testing.T) {
	cases := map[string]func(w http.ResponseWriter, r *http.Request, attempt int){
		"404 from a server without SSE": func(w http.ResponseWriter, _ *http.Request, _ int) {
			writeAPIError(w, http.StatusNotFound, "NotFound", "no such route")
		},
		"501 from a proxy": func(w http.ResponseWriter, _ *http.Request, _ int) {
			http.Error(w, "<html>not implemented</html>", http.StatusNotImplemented)
		},
		"a proxy answering 200 with HTML": func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>buffered</html>")
		},
	}
	for name, events := range cases {
		t.Run(name, func(t *testing.T) {
			fake := &jobFake{
				eventsHandler: events,
				polls: []client.Status{{JobID: "j", Status: client.StatePending}, {JobID: "j", Status: client.StateProcessing, Progress: 50},
					{JobID: "j", Status: client.StateCompleted, SHA256: "ab"}},
			}
			final, updates := waitOn(t, fake)
			if final.Status != client.StateCompleted || final.SHA256 != "ab" {
				t.Errorf("final status %+v", final)
			}
			if got := fmt.Sprint(states(updates)); got != "[pending processing completed]" {
				t.Errorf("updates %s", got)
			}
			if fake.eventsAttempts != 1 {
				t.Errorf("events endpoint tried %d times; once unavailable it must not be asked again", fake.eventsAttempts)
			}
		})
	}
}

func TestWaitResumesTheStreamWithLastEventIDAfterItDrops(t *testing.T) {
	fake := &jobFake{
		polls: []client.Status{{JobID: "j", Status: client.StateProcessing, Progress: 60}},
		eventsHandler: func(w http.ResponseWriter, r *http.Request, attempt int) {
			startStream(w)
			if attempt == 1 {
				writeStream(w, "id: 7\ndata: {\"jobId\":\"j\",\"status\":\"pending\"}\n\n")
				writeStream(w, "id: 8\ndata: {\"jobId\":\"j\",\"status\":\"processing\",\"progress\":20}\n\n")
				return // the connection drops without a terminal event
			}
			writeStream(w, "id: 9\ndata: {\"jobId\":\"j\",\"status\":\"completed\",\"sha256\":\"cd\"}\n\n")
		},
	}
	final, updates := waitOn(t, fake)
	if final.Status != client.StateCompleted || final.EventID != "9" {
		t.Errorf("final status %+v", final)
	}
	if got := fmt.Sprint(fake.lastEventIDs); got != "[ 8]" {
		t.Errorf("Last-Event-ID per connection = %s, want the first empty and the second 8", got)
	}
	if fake.pollCount != 1 {
		t.Errorf("polled %d times between the streams, want once", fake.pollCount)
	}
	if got := fmt.Sprint(states(updates)); got != "[pending processing processing completed]" {
		t.Errorf("updates %s", got)
	}
}

func TestWaitTreatsASilentStreamAsBroken(t *testing.T) {
	fake := &jobFake{
		polls: []client.Status{{JobID: "j", Status: client.StateCompleted, SHA256: "ef"}},
		eventsHandler: func(w http.ResponseWriter, r *http.Request, _ int) {
			startStream(w)
			writeStream(w, "id: 1\ndata: {\"jobId\":\"j\",\"status\":\"processing\"}\n\n")
			<-r.Context().Done() // neither events nor heartbeats: a dead connection
		},
	}
	start := time.Now()
	final, _ := waitOn(t, fake, client.WithHeartbeatTimeout(200*time.Millisecond))
	if final.Status != client.StateCompleted {
		t.Errorf("final status %+v", final)
	}
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("Wait took %s; the stream should be given up after the 200 ms heartbeat timeout", elapsed)
	}
}

func TestWaitPollsAtTheServersRetryAfter(t *testing.T) {
	fake := &jobFake{
		pollRetryAfter: "1",
		eventsHandler: func(w http.ResponseWriter, _ *http.Request, _ int) {
			writeAPIError(w, http.StatusNotFound, "NotFound", "no SSE here")
		},
		polls: []client.Status{{JobID: "j", Status: client.StatePending}, {JobID: "j", Status: client.StateFailed,
			Error: &client.ErrorDetail{Code: "StorageError", Message: "unreachable"}}},
	}
	final, _ := waitOn(t, fake)
	if final.Status != client.StateFailed || final.Err() == nil {
		t.Errorf("final status %+v, Err %v", final, final.Err())
	}
	if gap := fake.pollTimes[1].Sub(fake.pollTimes[0]); gap < time.Second {
		t.Errorf("polled again after %s; the server asked for 1 s (the client's own interval is 20 ms)", gap)
	}
}

func TestWaitReportsAnUnknownJob(t *testing.T) {
	fake := &jobFake{
		unknownStatuses: true,
		eventsHandler: func(w http.ResponseWriter, _ *http.Request, _ int) {
			writeAPIError(w, http.StatusNotFound, "NotFound", "no job j")
		},
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	_, err := newTestClient(t, srv.URL).Wait(testContext(t), "j", nil)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != "NotFound" {
		t.Fatalf("Wait = %v, want the 404 APIError", err)
	}
}

func TestWaitGivesUpAfterRepeatedNetworkFailures(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more: every request is refused
	_, err := newTestClient(t, url).Wait(testContext(t), "j", nil)
	if err == nil || !strings.Contains(err.Error(), "polls in a row failed") {
		t.Fatalf("Wait = %v, want it to give up after failed polls", err)
	}
}

func TestAPIErrorDecoding(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", "req-42")
		switch r.URL.Path {
		case "/v1/download/status/missing":
			writeAPIError(w, http.StatusNotFound, "NotFound", "download missing not found")
		case "/v1/download/status/bad id": // sent escaped as bad%20id
			writeAPIError(w, http.StatusBadRequest, "InvalidJobID", "job id must be a UUID")
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	cases := []struct {
		jobID string
		want  client.APIError
	}{
		{"missing", client.APIError{StatusCode: 404, Code: "NotFound", Message: "download missing not found", RequestID: "req-42"}},
		{"bad id", client.APIError{StatusCode: 400, Code: "InvalidJobID", Message: "job id must be a UUID", RequestID: "req-42"}},
		{"proxied", client.APIError{StatusCode: 502, Code: "BadGateway", Message: "<html><body>502 Bad Gateway</body></html>", RequestID: "req-42"}},
	}
	for _, tc := range cases {
		_, err := c.Status(testContext(t), tc.jobID)
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("Status(%q) = %v, want *APIError", tc.jobID, err)
		}
		if *apiErr != tc.want {
			t.Errorf("Status(%q) error = %+v, want %+v", tc.jobID, *apiErr, tc.want)
		}
		if !strings.Contains(err.Error(), tc.want.Code) || !strings.Contains(err.Error(), "req-42") {
			t.Errorf("error text %q lacks the code or request id", err)
		}
	}
}

func TestRetriesTooManyRequestsAfterRetryAfter(t *testing.T) {
	var (
		attempts atomic.Int32
		bodies   []string
		keys     []string
		mu       sync.Mutex
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, keys = append(bodies, string(body)), append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		if attempts.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			writeAPIError(w, http.StatusTooManyRequests, "RateLimited", "slow down")
			return
		}
		w.Header().Set("Location", "/v1/download/status/job-9")
		w.Header().Set("Retry-After", "3")
		writeJSON(w, http.StatusAccepted, map[string]any{"jobId": "job-9", "status": "pending", "etaSeconds": 4, "totalFileIds": 2})
	}))
	defer srv.Close()

	start := time.Now()
	job, err := newTestClient(t, srv.URL).Initiate(testContext(t), []int64{70000, 70007}, "key-1")
	if err != nil {
		t.Fatalf("Initiate: %v", err)
	}
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("retried after %s, before the server's Retry-After of 1 s", elapsed)
	}
	want := client.Initiated{JobID: "job-9", Status: client.StatePending, EtaSeconds: 4, TotalFileIDs: 2,
		Location: "/v1/download/status/job-9", RetryAfter: 3 * time.Second}
	if *job != want {
		t.Errorf("Initiate = %+v, want %+v", *job, want)
	}
	if attempts.Load() != 2 || bodies[0] != bodies[1] || !strings.Contains(bodies[1], `"file_ids":[70000,70007]`) {
		t.Errorf("attempts %d, bodies %q: the retry must resend the same body", attempts.Load(), bodies)
	}
	if keys[0] != "key-1" || keys[1] != "key-1" {
		t.Errorf("Idempotency-Key per attempt %q", keys)
	}
}

// countingServer answers every request with answer, which a test may change between requests,
// and counts the requests.
type countingServer struct {
	*httptest.Server
	attempts atomic.Int32
	answer   http.HandlerFunc
}

func newCountingServer(t *testing.T, answer http.HandlerFunc) *countingServer {
	s := &countingServer{answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.attempts.Add(1)
		s.answer(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestRetriesAreBounded(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusServiceUnavailable, "Unavailable", "kubernetes unreachable")
	})
	err := newTestClient(t, srv.URL).Cancel(testContext(t), "j")
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable || !apiErr.Temporary() {
		t.Fatalf("Cancel = %v, want the last 503", err)
	}
	if srv.attempts.Load() != 3 {
		t.Errorf("%d attempts, want MaxAttempts = 3", srv.attempts.Load())
	}

	srv.attempts.Store(0)
	srv.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		writeAPIError(w, http.StatusTooManyRequests, "RateLimited", "come back in an hour")
	}
	start := time.Now()
	_, err = newTestClient(t, srv.URL).Check(testContext(t), 70000)
	if !errors.As(err, &apiErr) || apiErr.RetryAfter != time.Hour {
		t.Fatalf("Check = %v, want the 429 with its Retry-After", err)
	}
	if srv.attempts.Load() != 1 || time.Since(start) > 5*time.Second {
		t.Errorf("a Retry-After beyond MaxElapsed must fail at once, not after %d attempts and %s", srv.attempts.Load(), time.Since(start))
	}
}

func TestDoesNotRetryOtherErrors(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "TooManyFiles", "at most 1000 file ids")
	})
	_, err := newTestClient(t, srv.URL).Initiate(testContext(t), []int64{70000}, "")
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "TooManyFiles" || srv.attempts.Load() != 1 {
		t.Fatalf("Initiate = %v after %d attempts, want one 413", err, srv.attempts.Load())
	}
}

func TestCheckCancelAndRequestHeaders(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path+" ua="+r.UserAgent()+" rid="+r.Header.Get("X-Request-ID"))
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/download/check":
			var body map[string]int64
			_ = json.NewDecoder(r.Body).Decode(&body)
			writeJSON(w, http.StatusOK, map[string]any{"file_id": body["file_id"], "available": true, "size": 1234})
		case r.Method == http.MethodDelete && r.URL.Path == "/v1/download/job-1":
			writeJSON(w, http.StatusAccepted, map[string]string{"jobId": "job-1"})
		default:
			writeAPIError(w, http.StatusNotFound, "NotFound", "no")
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL+"/", client.WithUserAgent("test-agent"), client.WithRequestID(func() string { return "rid-1" }))
	check, err := c.Check(testContext(t), 70000)
	if err != nil || *check != (client.FileCheck{FileID: 70000, Available: true, Size: 1234}) {
		t.Errorf("Check = %+v, %v", check, err)
	}
	if err := c.Cancel(testContext(t), "job-1"); err != nil {
		t.Errorf("Cancel: %v", err)
	}
	want := "[POST /v1/download/check ua=test-agent rid=rid-1 DELETE /v1/download/job-1 ua=test-agent rid=rid-1]"
	if fmt.Sprint(seen) != want {
		t.Errorf("requests %v, want %s", seen, want)
	}
}

func TestHealthReturnsAnUnhealthyServerWithoutRetrying(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unhealthy", "checks": map[string]string{"storage": "error", "kubernetes": "ok"}})
	})
	health, err := newTestClient(t, srv.URL).Health(testContext(t))
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	if health.Healthy() || health.Checks["storage"] != client.CheckError || health.Checks["kubernetes"] != client.CheckOK {
		t.Errorf("Health = %+v", health)
	}
	if srv.attempts.Load() != 1 {
		t.Errorf("%d attempts: a health probe reports, it does not wait", srv.attempts.Load())
	}
}

func TestNewRejectsABadServerURL(t *testing.T) {
	for _, u := range []string{"", "localhost:8080", "ftp://host", "http://"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

// storageFake serves bytes at a presigned-looking URL, as MinIO would.
func storageFake(t *testing.T, content []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/archives/a.zip" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
			return
		}
		http.ServeContent(w, r, "a.zip", time.Time{}, bytes.NewReader(content))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestDownloadVerifiesTheChecksum(t *testing.T) {
	content := bytes.Repeat([]byte("zip bytes "), 10_000)
	storage := storageFake(t, content)
	c := newTestClient(t, "http://api.invalid")
	completed := &client.Status{JobID: "j", Status: client.StateCompleted, DownloadURL: storage.URL + "/archives/a.zip",
		Size: int64(len(content)), SHA256: strings.ToUpper(sha256Hex(content))}

	var out bytes.Buffer
	var lastDone, lastTotal int64
	sum, n, err := c.Download(testContext(t), completed, &out, func(done, total int64) { lastDone, lastTotal = done, total })
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	if sum != sha256Hex(content) || n != int64(len(content)) || !bytes.Equal(out.Bytes(), content) {
		t.Errorf("Download = %s, %d bytes", sum, n)
	}
	if lastDone != n || lastTotal != n {
		t.Errorf("last progress %d/%d, want %d/%d", lastDone, lastTotal, n, n)
	}

	t.Run("a different archive", func(t *testing.T) {
		tampered := *completed
		tampered.SHA256 = sha256Hex([]byte("what the worker really uploaded"))
		sum, _, err := c.Download(testContext(t), &tampered, io.Discard, nil)
		var mismatch *client.ChecksumError
		if !errors.As(err, &mismatch) {
			t.Fatalf("Download = %v, want *ChecksumError", err)
		}
		if mismatch.WantSHA256 != tampered.SHA256 || mismatch.GotSHA256 != sha256Hex(content) || sum != mismatch.GotSHA256 {
			t.Errorf("ChecksumError %+v", mismatch)
		}
	})
	t.Run("a truncated archive with the right prefix", func(t *testing.T) {
		longer := *completed
		longer.Size++
		_, _, err := c.Download(testContext(t), &longer, io.Discard, nil)
		var mismatch *client.ChecksumError
		if !errors.As(err, &mismatch) || mismatch.GotSize != int64(len(content)) || !strings.Contains(err.Error(), "bytes") {
			t.Fatalf("Download = %v, want a size mismatch", err)
		}
	})
	t.Run("an expired URL", func(t *testing.T) {
		expired := *completed
		expired.DownloadURL = storage.URL + "/archives/old.zip"
		_, _, err := c.Download(testContext(t), &expired, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), "403 Forbidden: AccessDenied: Request has expired") {
			t.Fatalf("Download = %v, want storage's reason", err)
		}
	})
	t.Run("a status that cannot be verified", func(t *testing.T) {
		unverifiable := *completed
		unverifiable.SHA256 = ""
		if _, _, err := c.Download(testContext(t), &unverifiable, io.Discard, nil); err == nil {
			t.Fatal("Download without a checksum to verify succeeded")
		}
		if _, _, err := c.Download(testContext(t), &client.Status{JobID: "j", Status: client.StateProcessing}, io.Discard, nil); err == nil {
			t.Fatal("Download of an unfinished job succeeded")
		}
	})
}

func TestInitiateSendsTheMissingFilesPolicyOnlyWhenAsked(t *testing.T) {
	var (
		bodies []string
		mu     sync.Mutex
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
		writeJSON(w, http.StatusAccepted, map[string]any{"jobId": "job-1", "status": "pending", "totalFileIds": 1})
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	if _, err := c.Initiate(testContext(t), []int64{70000}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initiate(testContext(t), []int64{70000}, "", client.SkipMissingFiles()); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"file_ids":[70000]}`, `{"file_ids":[70000],"missing_files":"skip"}`}
	if !slices.Equal(bodies, want) {
		t.Errorf("bodies %q, want %q", bodies, want)
	}
}
