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
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/download-operator/download-operator/pkg/client"
)

// traceServer answers initiate (after one 429, so a retry is seen too), status and check, and
// keeps the traceparent header of every request.
func traceServer(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var (
		mu      sync.Mutex
		headers []string
		retried bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Get("traceparent"))
		first := !retried
		retried = true
		mu.Unlock()
		switch r.URL.Path {
		case "/v1/download/initiate":
			if first {
				w.Header().Set("Retry-After", "0")
				writeAPIError(w, http.StatusTooManyRequests, "TooManyRequests", "later")
				return
			}
			writeJSON(w, http.StatusAccepted, map[string]any{"jobId": "job-1", "status": "pending"})
		case "/v1/download/status/job-1":
			writeJSON(w, http.StatusOK, map[string]any{"jobId": "job-1", "status": "pending"})
		case "/v1/download/check":
			writeJSON(w, http.StatusOK, map[string]any{"file_id": 70000, "available": true})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), headers...)
	}
}

// callAll makes the calls whose requests must carry the trace: four requests with the retry.
func callAll(t *testing.T, ctx context.Context, c *client.Client) {
	t.Helper()
	if _, err := c.Initiate(ctx, []int64{70000}, "key-1"); err != nil {
		t.Fatalf("Initiate: %v", err)
	}
	if _, err := c.Status(ctx, "job-1"); err != nil {
		t.Fatalf("Status: %v", err)
	}
	if _, err := c.Check(ctx, 70000); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestRequestsCarryTheCallersTrace(t *testing.T) {
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	spanCtx, span := tp.Tracer("test").Start(testContext(t), "caller")
	defer span.End()
	sc := span.SpanContext()
	ofSpan := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"

	cases := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"an OpenTelemetry span", spanCtx, ofSpan},
		{"a traceparent without OpenTelemetry", client.ContextWithTraceparent(testContext(t), incoming), incoming},
		{"no trace", testContext(t), ""},
		{"a malformed traceparent", client.ContextWithTraceparent(testContext(t), "00-nonsense-01"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, seen := traceServer(t)

			callAll(t, tc.ctx, newTestClient(t, srv.URL))

			got := seen()
			if len(got) != 4 {
				t.Fatalf("server saw %d requests, want 4 (initiate twice, status, check)", len(got))
			}
			for i, h := range got {
				if h != tc.want {
					t.Errorf("request %d: traceparent = %q, want %q", i, h, tc.want)
				}
			}
		})
	}
}

// An empty composite propagator stands for one an application configured without W3C trace
// context; the client must use it instead of its own.
func TestWithPropagatorReplacesTheDefault(t *testing.T) {
	srv, seen := traceServer(t)
	ctx := client.ContextWithTraceparent(testContext(t), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

	callAll(t, ctx, newTestClient(t, srv.URL, client.WithPropagator(propagation.NewCompositeTextMapPropagator())))

	got := seen()
	if len(got) != 4 {
		t.Fatalf("server saw %d requests, want 4", len(got))
	}
	for i, h := range got {
		if h != "" {
			t.Errorf("request %d: traceparent = %q, want none from an empty propagator", i, h)
		}
	}
}
