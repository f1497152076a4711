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
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/test/stack"
)

// The service the facade replaces sent these on every response, and its clients check them.
func TestEveryResponseCarriesSecurityRateLimitAndCORSHeaders(t *testing.T) {
	c := newCaller(t, sharedStack(t).Facade)
	accepted := c.initiate([]int64{79000})
	for _, resp := range []*response{
		c.do(http.MethodGet, "/v1/download/status/"+accepted.JobID, nil),
		c.do(http.MethodGet, "/v1/download/status/"+uuid.NewString(), nil),
		c.do(http.MethodGet, "/v1/download/status/x", nil),
		c.do(http.MethodGet, "/nowhere", nil),
		c.do(http.MethodPatch, "/health", nil),
		c.postJSON("/v1/download/initiate", `{`),
		c.do(http.MethodGet, "/health", nil),
		c.do(http.MethodGet, "/openapi.json", nil),
		c.do(http.MethodGet, "/v1/download/initiate", nil),
		// The probe port's routes are not the API's.
		c.do(http.MethodGet, "/healthz", nil),
		c.do(http.MethodGet, "/readyz", nil),
		c.do(http.MethodGet, "/metrics", nil),
	} {
		where := resp.Request.Method + " " + resp.Request.URL.Path
		for name, want := range map[string]string{
			"X-Content-Type-Options":      "nosniff",
			"X-Frame-Options":             "DENY",
			"Strict-Transport-Security":   "max-age=31536000; includeSubDomains",
			"Access-Control-Allow-Origin": "*", // the requests carry no Origin
		} {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("%s: %s = %q, want %q", where, name, got, want)
			}
		}
		for _, name := range []string{"RateLimit-Limit", "RateLimit-Remaining", "X-Request-ID"} {
			if resp.Header.Get(name) == "" {
				t.Errorf("%s: no %s", where, name)
			}
		}
		if resp.StatusCode >= 400 && resp.errorCode() == "" {
			t.Errorf("%s: error without a code: %s", where, resp.body)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp := c.do(http.MethodGet, path, nil); resp.StatusCode != http.StatusNotFound || resp.errorCode() != facade.CodeNotFound {
			t.Errorf("the API port answers %s: %d %s", path, resp.StatusCode, resp.body)
		}
	}
	if got := c.do(http.MethodGet, "/openapi.json", nil, "X-Request-ID", "trace-42").Header.Get("X-Request-ID"); got != "trace-42" {
		t.Errorf("X-Request-ID not echoed: %q", got)
	}
	if got := c.do(http.MethodGet, "/openapi.json", nil, "X-Request-ID", "bad id with spaces").Header.Get("X-Request-ID"); uuid.Validate(got) != nil {
		t.Errorf("an unsafe X-Request-ID must be replaced by a generated one, got %q", got)
	}
}

func TestCORSAllowlistAndPreflight(t *testing.T) {
	f := newFacade(t, func(cfg *facade.Config) { cfg.CORSOrigins = []string{"https://app.example", "https://admin.example"} })
	c := newCaller(t, f)
	allowed := c.do(http.MethodGet, "/openapi.json", nil, "Origin", "https://app.example")
	if allowed.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || !slices.Contains(allowed.Header.Values("Vary"), "Origin") {
		t.Errorf("allowed origin: ACAO=%q Vary=%q", allowed.Header.Get("Access-Control-Allow-Origin"), allowed.Header.Values("Vary"))
	}
	for _, origin := range []string{"https://evil.example", ""} {
		if got := c.do(http.MethodGet, "/openapi.json", nil, "Origin", origin).Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("origin %q: ACAO %q", origin, got)
		}
	}
	preflight := c.do(http.MethodOptions, "/v1/download/initiate", nil, "Origin", "https://admin.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type, idempotency-key")
	if preflight.StatusCode != http.StatusNoContent ||
		preflight.Header.Get("Access-Control-Allow-Origin") != "https://admin.example" ||
		!strings.Contains(preflight.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(preflight.Header.Get("Access-Control-Allow-Headers"), "Idempotency-Key") {
		t.Errorf("preflight: %d %v", preflight.StatusCode, preflight.Header)
	}
	denied := c.do(http.MethodOptions, "/v1/download/initiate", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if denied.Header.Get("Access-Control-Allow-Origin") != "" || denied.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("preflight from a foreign origin: %v", denied.Header)
	}
}

func TestHealthReportsStorageAndKubernetes(t *testing.T) {
	s := sharedStack(t)
	healthy := newCaller(t, s.Facade).do(http.MethodGet, "/health", nil)
	var h facade.HealthResponse
	healthy.json(&h)
	if healthy.StatusCode != http.StatusOK || h.Status != "healthy" || h.Checks["storage"] != "ok" || h.Checks["kubernetes"] != "ok" {
		t.Errorf("healthy: %d %s", healthy.StatusCode, healthy.body)
	}

	fileCheck := s.NewFileCheckServer()
	f := newFacade(t, func(cfg *facade.Config) { cfg.ControllerURL = fileCheck.URL; cfg.HealthCacheTTL = 0 })
	c := newCaller(t, f)
	if resp := c.do(http.MethodGet, "/health", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before stopping the file-check server: %d %s", resp.StatusCode, resp.body)
	}
	fileCheck.Close()
	unhealthy := c.do(http.MethodGet, "/health", nil)
	h = facade.HealthResponse{}
	unhealthy.json(&h)
	if unhealthy.StatusCode != http.StatusServiceUnavailable || h.Status != "unhealthy" || h.Checks["storage"] != "error" || h.Checks["kubernetes"] != "ok" {
		t.Errorf("file check stopped: %d %s", unhealthy.StatusCode, unhealthy.body)
	}
	// Liveness does not depend on anything, so an outage never restarts replicas.
	if rec := probe(f.Facade, "/healthz"); rec.Code != http.StatusOK {
		t.Errorf("healthz: %d", rec.Code)
	}
}

func TestHealthProbesAreCachedSoPollsCannotHammerTheApiserver(t *testing.T) {
	f := newFacade(t, func(cfg *facade.Config) { cfg.HealthCacheTTL = time.Minute })
	c := newCaller(t, f)
	c.do(http.MethodGet, "/health", nil)
	before := f.APIRequests()
	for range 50 {
		if resp := c.do(http.MethodGet, "/health", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, resp.body)
		}
	}
	if after := f.APIRequests(); after != before {
		t.Errorf("50 health polls made %d apiserver requests", after-before)
	}
}

func TestReadyOnlyOnceTheCacheSynced(t *testing.T) {
	s := sharedStack(t)
	if rec := probe(s.Facade.Facade, "/readyz"); rec.Code != http.StatusOK {
		t.Errorf("synced facade: %d %s", rec.Code, rec.Body)
	}
	// Built but never started: nothing is synced, and reads must say so rather than 404.
	unstarted, err := facade.New(s.Env.Config, facade.DefaultConfig(stack.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	if rec := probe(unstarted, "/readyz"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before sync: %d %s", rec.Code, rec.Body)
	}
	rec := httptest.NewRecorder()
	unstarted.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/download/status/"+uuid.NewString(), nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("a poll before sync: %d %s", rec.Code, rec.Body)
	}
	if rec := probe(unstarted, "/healthz"); rec.Code != http.StatusOK {
		t.Errorf("healthz before sync: %d", rec.Code)
	}
}

// Every poll must be answered from the cache: polls scale with clients, the apiserver must not.
func TestStatusPollsMakeNoApiserverRequests(t *testing.T) {
	f := newFacade(t, nil)
	c := newCaller(t, f)
	accepted := c.initiate([]int64{79500})
	// Let the initiate's own traffic (the create) and the informer's list and watch settle.
	time.Sleep(200 * time.Millisecond)
	before := f.APIRequests()
	unknown := uuid.NewString()
	for i := range 1000 {
		switch i % 4 {
		case 0, 1:
			c.status(accepted.JobID)
		case 2:
			c.do(http.MethodGet, "/v1/download/status/"+unknown, nil)
		case 3:
			c.do(http.MethodGet, "/v1/download/status/not-a-uuid", nil)
		}
	}
	if after := f.APIRequests(); after != before {
		t.Errorf("1,000 status polls made %d apiserver requests, want 0", after-before)
	}
	if before == 0 {
		t.Error("the counter saw no requests at all; it is not wired to the facade's client")
	}
}

func TestMetricsUseRouteTemplatesNeverJobIDs(t *testing.T) {
	f := newFacade(t, nil)
	c := newCaller(t, f)
	accepted := c.initiate([]int64{79600})
	c.status(accepted.JobID)
	c.do(http.MethodGet, "/v1/download/status/"+uuid.NewString(), nil)
	c.do(http.MethodGet, "/some/random/"+uuid.NewString(), nil)
	events := c.openEvents(accepted.JobID)
	events.next(t, 5*time.Second, false)
	metrics := probe(f.Facade, "/metrics").Body.String()
	for _, want := range []string{
		`download_facade_http_requests_total{code="200",method="GET",route="/v1/download/status/{jobId}"} 1`,
		`download_facade_http_requests_total{code="404",method="GET",route="/v1/download/status/{jobId}"} 1`,
		`download_facade_http_requests_total{code="202",method="POST",route="/v1/download/initiate"} 1`,
		`download_facade_http_requests_total{code="404",method="unmatched",route="unmatched"} 1`,
		`download_facade_http_request_duration_seconds_bucket{method="GET",route="/v1/download/status/{jobId}",le="0.005"}`,
		"download_facade_sse_clients 1",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, accepted.JobID) || strings.Contains(metrics, "/some/random") {
		t.Error("a jobId or a raw path became a label")
	}
}

func TestUIDirIsServedAtRoot(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>demo</h1>"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCaller(t, newFacade(t, func(cfg *facade.Config) { cfg.UIDir = dir }))
	if resp := c.do(http.MethodGet, "/", nil); resp.StatusCode != http.StatusOK || string(resp.body) != "<h1>demo</h1>" {
		t.Errorf("GET / with --ui-dir: %d %s", resp.StatusCode, resp.body)
	}
	// The API is unaffected.
	if resp := c.do(http.MethodGet, "/v1/download/status/x", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("API next to the UI: %d", resp.StatusCode)
	}
	// Names no file can have are simply not found, never a server error.
	for _, odd := range []string{"/%00", "/%ff", "/..%c0%af..%c0%afetc", "/a%00b.js", "/missing.js"} {
		if resp := c.do(http.MethodGet, odd, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", odd, resp.StatusCode, resp.body)
		}
	}
}

// The OpenAPI document and the router must describe the same operations; TestMain also checks
// that every status code the tests observed is documented for its operation.
func TestOpenAPIDocumentMatchesTheRouter(t *testing.T) {
	s := sharedStack(t)
	cfg := facade.DefaultConfig(stack.Namespace)
	cfg.UIDir = t.TempDir() // so that the optional UI route is served too
	f, err := facade.New(s.Env.Config, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	served := newCaller(t, s.Facade).do(http.MethodGet, "/openapi.json", nil)
	if served.StatusCode != http.StatusOK || served.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %s", served.StatusCode, served.Header.Get("Content-Type"))
	}
	served.json(&doc)
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			if len(op.Responses) == 0 {
				t.Errorf("%s %s documents no responses", method, path)
			}
		}
	}
	slices.Sort(documented)
	if routes := f.RoutePatterns(); !slices.Equal(routes, documented) {
		t.Errorf("router serves %q\nOpenAPI documents %q", routes, documented)
	}
	var raw map[string]any
	if err := json.Unmarshal(facade.OpenAPI, &raw); err != nil || !strings.HasPrefix(raw["openapi"].(string), "3.") {
		t.Errorf("not an OpenAPI 3 document: %v", err)
	}
}
