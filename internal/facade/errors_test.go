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
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/test/stack"
)

func TestInvalidInitiateBodiesAreAnswered400(t *testing.T) {
	c := newCaller(t, sharedStack(t).Facade)
	ids := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = strconv.Itoa(10_000 + i)
		}
		return `{"file_ids":[` + strings.Join(parts, ",") + `]}`
	}
	for name, body := range map[string]string{
		"bad JSON":             `{"file_ids":[70000`,
		"not JSON":             `file_ids=70000`,
		"empty body":           ``,
		"JSON null":            `null`,
		"array instead":        `[70000]`,
		"string ids":           `{"file_ids":["70000"]}`,
		"fractional id":        `{"file_ids":[70000.5]}`,
		"id beyond int64":      `{"file_ids":[99999999999999999999]}`,
		"ids not a list":       `{"file_ids":70000}`,
		"unknown field":        `{"file_ids":[70000],"priority":"high"}`,
		"missing field":        `{}`,
		"empty list":           `{"file_ids":[]}`,
		"1001 ids":             ids(1001),
		"id 9999":              `{"file_ids":[9999]}`,
		"id 100000001":         `{"file_ids":[100000001]}`,
		"negative id":          `{"file_ids":[-70000]}`,
		"duplicates":           `{"file_ids":[70000,70001,70000]}`,
		"trailing data":        `{"file_ids":[70000]} {"file_ids":[70001]}`,
		"trailing garbage":     `{"file_ids":[70000]}x`,
		"invalid UTF-8 string": "{\"file_ids\":[70000],\"\xff\":1}",
	} {
		t.Run(name, func(t *testing.T) {
			resp := c.postJSON("/v1/download/initiate", body)
			if resp.StatusCode != http.StatusBadRequest || resp.errorCode() != facade.CodeBadRequest {
				t.Errorf("%d %s", resp.StatusCode, resp.body)
			}
		})
	}
	// The bounds themselves are fine.
	c.initiate([]int64{10_000, 100_000_000})
	if resp := c.postJSON("/v1/download/initiate", ids(1000)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("1000 ids: %d %s", resp.StatusCode, resp.body)
	}
}

func TestMalformedAndUnknownJobIDs(t *testing.T) {
	c := newCaller(t, sharedStack(t).Facade)
	unknown := uuid.NewString()
	for _, path := range []string{"/v1/download/status/", "/v1/download/events/"} {
		for _, bad := range []string{"nope", "12345", "not-a-uuid-but-36-characters-long-xx", "{" + unknown + "}",
			"urn:uuid:" + unknown, strings.ReplaceAll(unknown, "-", ""), unknown + "0", "%00"} {
			if resp := c.do(http.MethodGet, path+bad, nil); resp.StatusCode != http.StatusBadRequest || resp.errorCode() != facade.CodeBadRequest {
				t.Errorf("GET %s%s: %d %s", path, bad, resp.StatusCode, resp.body)
			}
		}
		if resp := c.do(http.MethodGet, path+unknown, nil); resp.StatusCode != http.StatusNotFound || resp.errorCode() != facade.CodeNotFound {
			t.Errorf("GET %s<unknown>: %d %s", path, resp.StatusCode, resp.body)
		}
	}
	if resp := c.do(http.MethodDelete, "/v1/download/nope", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("DELETE malformed: %d %s", resp.StatusCode, resp.body)
	}
	if resp := c.do(http.MethodDelete, "/v1/download/"+unknown, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE unknown: %d %s", resp.StatusCode, resp.body)
	}
	// Kubernetes names are lower-case; an upper-case jobId means the same job.
	accepted := c.initiate([]int64{74000})
	if st := c.status(strings.ToUpper(accepted.JobID)); st.JobID != accepted.JobID {
		t.Errorf("upper-case jobId: %+v", st)
	}
}

func TestRouterAnswersJSON404And405WithAllow(t *testing.T) {
	c := newCaller(t, sharedStack(t).Facade)
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodGet, "/v1/download/initiate", "DELETE, POST"}, // also DELETE /v1/download/{jobId}
		{http.MethodPut, "/v1/download/check", "DELETE, POST"},
		{http.MethodPost, "/v1/download/status/" + uuid.NewString(), "GET, HEAD"},
		{http.MethodDelete, "/v1/download/events/" + uuid.NewString(), "GET, HEAD"},
		{http.MethodGet, "/v1/download/" + uuid.NewString(), "DELETE"},
		{http.MethodPost, "/health", "GET, HEAD"},
		{http.MethodOptions, "/v1/download/initiate", "DELETE, POST"},
	} {
		resp := c.do(tc.method, tc.path, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.errorCode() != facade.CodeMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow=%q %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), resp.body)
		}
	}
	if resp := c.do(http.MethodHead, "/v1/download/events/"+c.initiate([]int64{74100}).JobID, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD of an event stream: %d", resp.StatusCode)
	}
	for _, path := range []string{"/", "/v2/download/initiate", "/v1/download/status/", "/index.html", "/v1/download/status/a/b",
		"/v1/download/status/../status/" + uuid.NewString(), "//health", "/health/", "/./health"} {
		resp := c.do(http.MethodGet, path, nil)
		if resp.StatusCode != http.StatusNotFound || resp.errorCode() != facade.CodeNotFound ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.body)
		}
	}
}

func TestOversizedBodiesAre413AndWrongMediaTypes415(t *testing.T) {
	c := newCaller(t, sharedStack(t).Facade)
	huge := `{"file_ids":[70000` + strings.Repeat(" ", facade.MaxBodyBytes) + `]}`
	for _, path := range []string{"/v1/download/initiate", "/v1/download/check"} {
		if resp := c.postJSON(path, huge); resp.StatusCode != http.StatusRequestEntityTooLarge || resp.errorCode() != facade.CodePayloadTooLarge {
			t.Errorf("%s with %d bytes: %d %s", path, len(huge), resp.StatusCode, resp.body)
		}
		for _, contentType := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "json", ";;"} {
			resp := c.do(http.MethodPost, path, strings.NewReader(`{"file_ids":[70000]}`), "Content-Type", contentType)
			if resp.StatusCode != http.StatusUnsupportedMediaType || resp.errorCode() != facade.CodeUnsupportedMediaType {
				t.Errorf("%s as %q: %d %s", path, contentType, resp.StatusCode, resp.body)
			}
		}
	}
	resp := c.do(http.MethodPost, "/v1/download/initiate", strings.NewReader(`{"file_ids":[74500]}`),
		"Content-Type", "application/json; charset=utf-8")
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("application/json with parameters: %d %s", resp.StatusCode, resp.body)
	}
}

func TestRateLimitAnswers429WithRetryAfterPerClient(t *testing.T) {
	f := newFacade(t, func(cfg *facade.Config) { cfg.RateLimit, cfg.RateBurst = 1, 3 })
	noisy, quiet := newCaller(t, f), newCaller(t, f)
	for i := range 3 {
		resp := noisy.do(http.MethodGet, "/openapi.json", nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("RateLimit-Limit") != "3" ||
			resp.Header.Get("RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("request %d: %d limit=%q remaining=%q", i, resp.StatusCode,
				resp.Header.Get("RateLimit-Limit"), resp.Header.Get("RateLimit-Remaining"))
		}
	}
	resp := noisy.do(http.MethodGet, "/openapi.json", nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.errorCode() != facade.CodeRateLimited ||
		resp.Header.Get("Retry-After") != "1" || resp.Header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("over the burst: %d Retry-After=%q remaining=%q %s", resp.StatusCode,
			resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit-Remaining"), resp.body)
	}
	if resp := quiet.do(http.MethodGet, "/openapi.json", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("another client is limited too: %d", resp.StatusCode)
	}
}

func TestActiveDownloadsPerClientAreCapped(t *testing.T) {
	f := newFacade(t, func(cfg *facade.Config) { cfg.MaxActivePerClient = 2 })
	c, other := newCaller(t, f), newCaller(t, f)
	first := c.initiate([]int64{75000})
	c.initiate([]int64{75001})
	resp := c.postJSON("/v1/download/initiate", `{"file_ids":[75002]}`)
	if resp.StatusCode != http.StatusTooManyRequests || resp.errorCode() != facade.CodeTooManyActive || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third active download: %d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.body)
	}
	other.initiate([]int64{75002})
	// A cancelled download no longer counts.
	if resp := c.do(http.MethodDelete, "/v1/download/"+first.JobID, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", resp.StatusCode, resp.body)
	}
	// The finalizer may finish before a poll sees the "Cancelled" state: gone counts as well.
	deadline := time.Now().Add(30 * time.Second)
	for resp := c.do(http.MethodGet, "/v1/download/status/"+first.JobID, nil); resp.StatusCode != http.StatusNotFound &&
		!strings.Contains(string(resp.body), `"status":"failed"`); resp = c.do(http.MethodGet, "/v1/download/status/"+first.JobID, nil) {
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled download still counts as active: %d %s", resp.StatusCode, resp.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.initiate([]int64{75002})
}

func TestCheckAsksTheControllersFileCheckEndpoint(t *testing.T) {
	s := sharedStack(t)
	c := newCaller(t, s.Facade)
	if err := s.PutSource(testContext(t), 76000, []byte("12345")); err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string]facade.CheckResponse{
		`{"file_id":76000}`: {FileID: 76000, Available: true, Size: 5},
		`{"file_id":76001}`: {FileID: 76001},
	} {
		resp := c.postJSON("/v1/download/check", body)
		var got facade.CheckResponse
		resp.json(&got)
		if resp.StatusCode != http.StatusOK || got != want {
			t.Errorf("%s: %d %+v, want %+v", body, resp.StatusCode, got, want)
		}
		if !strings.Contains(string(resp.body), `"available"`) || !strings.Contains(string(resp.body), `"size"`) {
			t.Errorf("%s: the original fields are missing: %s", body, resp.body)
		}
	}
	for _, body := range []string{`{"file_id":9999}`, `{"file_id":"76000"}`, `{"file_ids":[76000]}`, `{}`, `[`} {
		if resp := c.postJSON("/v1/download/check", body); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, resp.StatusCode, resp.body)
		}
	}

	// Without the controller there is no answer, and it is not the client's fault.
	fileCheck := s.NewFileCheckServer()
	f := newFacade(t, func(cfg *facade.Config) { cfg.ControllerURL = fileCheck.URL })
	fileCheck.Close()
	resp := newCaller(t, f).postJSON("/v1/download/check", `{"file_id":76000}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.errorCode() != facade.CodeUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("controller down: %d %s", resp.StatusCode, resp.body)
	}
}

func TestIdempotencyKeyReplaysAndConflicts(t *testing.T) {
	s := sharedStack(t)
	c := newCaller(t, s.Facade)
	key := uuid.NewString()
	first := c.initiate([]int64{77000, 77001}, "Idempotency-Key", key)
	if first.JobID != facade.IdempotentJobID("default", c.label(), key) {
		t.Errorf("jobId %s is not derived from the key", first.JobID)
	}
	// The same request, spelled differently, is a replay.
	resp := c.postJSON("/v1/download/initiate", "{ \"file_ids\" : [ 77000 ,\n 77001 ] }", "Idempotency-Key", key)
	var replay facade.InitiateResponse
	resp.json(&replay)
	if resp.StatusCode != http.StatusAccepted || replay.JobID != first.JobID || resp.Header.Get("Location") == "" {
		t.Errorf("replay: %d %s", resp.StatusCode, resp.body)
	}
	for _, body := range []string{`{"file_ids":[77001,77000]}`, `{"file_ids":[77000]}`} {
		resp := c.postJSON("/v1/download/initiate", body, "Idempotency-Key", key)
		if resp.StatusCode != http.StatusConflict || resp.errorCode() != facade.CodeIdempotencyConflict {
			t.Errorf("same key, other body %s: %d %s", body, resp.StatusCode, resp.body)
		}
	}
	for _, bad := range []string{strings.Repeat("k", 256), "tab\there", "ünïcode"} {
		resp := c.postJSON("/v1/download/initiate", `{"file_ids":[77000]}`, "Idempotency-Key", bad)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("key %q: %d %s", bad, resp.StatusCode, resp.body)
		}
	}
	if n := countDownloads(t, c); n != 1 {
		t.Errorf("%d Downloads for one key, want 1", n)
	}
}

func TestIdempotencyKeyRacingAcrossReplicasCreatesOneDownload(t *testing.T) {
	replicas := []*caller{newCaller(t, newFacade(t, nil)), newCaller(t, newFacade(t, nil))}
	replicas[1].ip = replicas[0].ip // one client, two replicas behind a Service
	key := uuid.NewString()
	const racers = 12
	results := make(chan string, racers)
	start := make(chan struct{})
	for i := range racers {
		go func() {
			<-start
			resp := replicas[i%2].postJSON("/v1/download/initiate", `{"file_ids":[78000,78001]}`, "Idempotency-Key", key)
			var accepted facade.InitiateResponse
			if resp.StatusCode == http.StatusAccepted {
				resp.json(&accepted)
			}
			results <- fmt.Sprintf("%d %s", resp.StatusCode, accepted.JobID)
		}()
	}
	close(start)
	want := fmt.Sprintf("%d %s", http.StatusAccepted, facade.IdempotentJobID("default", replicas[0].label(), key))
	for range racers {
		if got := <-results; got != want {
			t.Errorf("racer got %q, want %q", got, want)
		}
	}
	if n := countDownloads(t, replicas[0]); n != 1 {
		t.Errorf("%d Downloads after %d racing requests with one key, want 1", n, racers)
	}
}

func TestConfiguredBandwidthCapIsWrittenIntoEachDownload(t *testing.T) {
	s := sharedStack(t)
	const capBytes = 8 << 20
	f := newFacade(t, func(cfg *facade.Config) { cfg.MaxBytesPerSecond = capBytes })
	accepted := newCaller(t, f).initiate([]int64{75100})
	var download downloadv1alpha1.Download
	if err := s.Admin.Get(testContext(t), client.ObjectKey{Namespace: stack.Namespace, Name: accepted.JobID}, &download); err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(download.Spec.MaxBytesPerSecond, -1); got != capBytes {
		t.Errorf("spec.maxBytesPerSecond = %d, want %d", got, capBytes)
	}
}
