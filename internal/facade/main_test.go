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
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/test/stack"
)

// The tests share one stack (envtest, MinIO, controller, file-check server, facade), started
// by the first test that needs it: fuzz workers and benchmarks start their own only when they
// run. Each test isolates itself by its own client address (X-Forwarded-For) and its own jobs.

var shared struct {
	once  sync.Once
	stack *stack.Stack
	err   error

	mu      sync.Mutex
	facades []*facade.Facade
}

// stopFuzzFacade stops the fuzz targets' facade, when this process built one.
var stopFuzzFacade context.CancelFunc = func() {}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stack != nil {
		if code == 0 {
			if err := checkDocumentedResponses(); err != nil {
				fmt.Fprintln(os.Stderr, "FAIL: responses the OpenAPI document does not list:", err)
				code = 1
			}
		}
		stopFuzzFacade()
		if err := shared.stack.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the stack:", err)
		}
	}
	os.Exit(code)
}

// sharedStack returns the running stack, starting it on first use.
func sharedStack(tb testing.TB) *stack.Stack {
	tb.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var log io.Writer = io.Discard
		if os.Getenv("STACK_LOG") != "" {
			log = os.Stderr
		}
		shared.stack, shared.err = stack.Start(ctx, stack.Options{Log: log})
		if shared.err == nil {
			trackFacade(shared.stack.Facade.Facade)
		}
	})
	if shared.err != nil {
		tb.Fatalf("starting the stack: %v", shared.err)
	}
	return shared.stack
}

// newFacade starts another facade on the shared stack, closed when the test ends.
func newFacade(tb testing.TB, configure func(*facade.Config)) *stack.Facade {
	tb.Helper()
	s := sharedStack(tb)
	f, err := s.StartFacade(testContext(tb), configure)
	if err != nil {
		tb.Fatalf("starting a facade: %v", err)
	}
	trackFacade(f.Facade)
	tb.Cleanup(func() {
		if err := f.Close(); err != nil {
			tb.Errorf("closing the facade: %v", err)
		}
	})
	return f
}

// trackFacade records a facade whose answers TestMain checks against the OpenAPI document.
func trackFacade(f *facade.Facade) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.facades = append(shared.facades, f)
}

func testContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// caller is one client of the API, identified to the facade by its X-Forwarded-For address
// (the stack's facades trust the loopback proxy).
type caller struct {
	tb   testing.TB
	f    *stack.Facade
	base string
	ip   string
}

// label is the ClientLabel value the caller's Downloads carry.
func (c *caller) label() string { return c.f.ClientLabelValue(c.ip) }

var nextClient struct {
	sync.Mutex
	n int
}

// newCaller returns a caller with an address no other test uses.
func newCaller(tb testing.TB, f *stack.Facade) *caller {
	nextClient.Lock()
	defer nextClient.Unlock()
	nextClient.n++
	return &caller{tb: tb, f: f, base: f.URL, ip: fmt.Sprintf("198.18.%d.%d", nextClient.n/250, nextClient.n%250+1)}
}

// onSharedStack is how most tests begin: the shared stack, a context for the test, and a caller
// of the stack's facade that no other test is.
func onSharedStack(t *testing.T) (*stack.Stack, context.Context, *caller) {
	t.Helper()
	s := sharedStack(t)
	return s, testContext(t), newCaller(t, s.Facade)
}

// response is an answer with its body read.
type response struct {
	*http.Response
	body []byte
}

func (r *response) json(into any) {
	if err := json.Unmarshal(r.body, into); err != nil {
		panic(fmt.Sprintf("decoding %q: %v", r.body, err))
	}
}

func (r *response) errorCode() string {
	var e facade.ErrorResponse
	if err := json.Unmarshal(r.body, &e); err != nil {
		return fmt.Sprintf("<not an error document: %q>", r.body)
	}
	return e.Error.Code
}

// do sends a request; headers are name/value pairs.
func (c *caller) do(method, path string, body io.Reader, headers ...string) *response {
	c.tb.Helper()
	req, err := http.NewRequestWithContext(testContext(c.tb), method, c.base+path, body)
	if err != nil {
		c.tb.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", c.ip)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatalf("reading %s %s: %v", method, path, err)
	}
	return &response{Response: resp, body: raw}
}

func (c *caller) postJSON(path, body string, headers ...string) *response {
	c.tb.Helper()
	return c.do(http.MethodPost, path, strings.NewReader(body), append([]string{"Content-Type", "application/json"}, headers...)...)
}

// initiate asks for ids and expects 202.
func (c *caller) initiate(ids []int64, headers ...string) facade.InitiateResponse {
	c.tb.Helper()
	raw, _ := json.Marshal(facade.InitiateRequest{FileIDs: ids})
	resp := c.postJSON("/v1/download/initiate", string(raw), headers...)
	if resp.StatusCode != http.StatusAccepted {
		c.tb.Fatalf("initiate %v: %d %s", ids, resp.StatusCode, resp.body)
	}
	var accepted facade.InitiateResponse
	resp.json(&accepted)
	return accepted
}

func (c *caller) status(jobID string) facade.Status {
	c.tb.Helper()
	resp := c.do(http.MethodGet, "/v1/download/status/"+jobID, nil)
	if resp.StatusCode != http.StatusOK {
		c.tb.Fatalf("status of %s: %d %s", jobID, resp.StatusCode, resp.body)
	}
	var s facade.Status
	resp.json(&s)
	return s
}

// eventually polls the status until accept returns true, and returns that status.
func (c *caller) eventually(jobID string, accept func(facade.Status) bool) facade.Status {
	c.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := c.status(jobID)
		if accept(s) {
			return s
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("status of %s stuck at %+v", jobID, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasStatus(status string) func(facade.Status) bool {
	return func(s facade.Status) bool { return s.Status == status }
}

// sseEvent is one frame of an event stream: an event (ID, Data) or a comment.
type sseEvent struct {
	ID, Data, Comment string
}

// sseStream reads an open event stream in the background.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
	done   chan struct{}
	cancel context.CancelFunc
}

// openEvents opens GET /v1/download/events/{jobId} and expects 200.
func (c *caller) openEvents(jobID string, headers ...string) *sseStream {
	c.tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/download/events/"+jobID, nil)
	if err != nil {
		c.tb.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", c.ip)
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		c.tb.Fatalf("opening events of %s: %v", jobID, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		cancel()
		c.tb.Fatalf("events of %s: %d %s", jobID, resp.StatusCode, body)
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 100), done: make(chan struct{}), cancel: cancel}
	go s.read()
	c.tb.Cleanup(s.close)
	return s
}

func (s *sseStream) read() {
	defer close(s.done)
	defer close(s.events)
	scanner := bufio.NewScanner(s.resp.Body)
	var ev sseEvent
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				s.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			ev.Comment = strings.TrimSpace(strings.TrimPrefix(line, ":"))
		case strings.HasPrefix(line, "id: "):
			ev.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.Data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func (s *sseStream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
	<-s.done
}

// next returns the next event (skipping comments unless wantComments), or fails after timeout.
// ok is false when the stream ended.
func (s *sseStream) next(tb testing.TB, timeout time.Duration, wantComments bool) (sseEvent, bool) {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return sseEvent{}, false
			}
			if ev.Data == "" && ev.ID == "" && !wantComments {
				continue
			}
			return ev, true
		case <-deadline:
			tb.Fatalf("no event within %s", timeout)
			return sseEvent{}, false
		}
	}
}

// checkDocumentedResponses asserts that every status code any facade answered during the tests
// is documented for its operation, and unmatched requests got only router answers.
func checkDocumentedResponses() error {
	var doc openAPIDoc
	if err := json.Unmarshal(facade.OpenAPI, &doc); err != nil {
		return fmt.Errorf("parsing openapi.json: %w", err)
	}
	var problems []string
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, f := range shared.facades {
		observed, err := f.ObservedResponses()
		if err != nil {
			return err
		}
		for op, codes := range observed {
			for _, code := range codes {
				if op == "unmatched" {
					// The router's own answers: 404, 405, preflight 204, and the limiter's 429.
					if !slices.Contains([]int{204, 404, 405, 429}, code) {
						problems = append(problems, fmt.Sprintf("unmatched request answered %d", code))
					}
					continue
				}
				method, path, _ := strings.Cut(op, " ")
				if _, ok := doc.Paths[path][strings.ToLower(method)].Responses[fmt.Sprint(code)]; !ok {
					problems = append(problems, fmt.Sprintf("%s answered %d", op, code))
				}
			}
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("%s", strings.Join(slices.Compact(problems), "; "))
	}
	return nil
}

type openAPIDoc struct {
	Paths map[string]map[string]struct {
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"paths"`
}

// probe asks a facade's probe port (its ProbeHandler) for path.
func probe(f *facade.Facade, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.ProbeHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// countDownloads counts the caller's Downloads in the apiserver.
func countDownloads(tb testing.TB, c *caller) int {
	tb.Helper()
	var list downloadv1alpha1.DownloadList
	if err := sharedStack(tb).Admin.List(testContext(tb), &list, ctrlclient.InNamespace(stack.Namespace),
		ctrlclient.MatchingLabels{facade.ClientLabel: c.label()}); err != nil {
		tb.Fatal(err)
	}
	return len(list.Items)
}
