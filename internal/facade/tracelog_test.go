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
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/internal/tracing"
	"github.com/download-operator/download-operator/test/logbuffer"
)

// TestLogLinesCarryTheCallersTraceID sends a traceparent with tracing export off, as most
// installations run: the request's log line must still carry the caller's trace id, so the
// caller's trace and the facade's logs can be joined.
func TestLogLinesCarryTheCallersTraceID(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	logs := &logbuffer.Buffer{}
	f := newFacade(t, func(c *facade.Config) {
		c.Logger = slog.New(tracing.NewLogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	})
	req, err := http.NewRequest(http.MethodGet, f.URL+"/v1/download/status/"+uuid.NewString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status of an unknown job: %d, want 404", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), `"trace_id":"`+traceID+`"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line carries trace_id %s:\n%s", traceID, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
