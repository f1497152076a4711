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

package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/download-operator/download-operator/internal/tracing"
)

const (
	incomingTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpanID  = "00f067aa0ba902b7"
	incoming        = "00-" + incomingTraceID + "-" + incomingSpanID + "-01"
)

// recordingTracer records synchronously into memory, independent of the global provider.
func recordingTracer(t *testing.T) (trace.Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("test"), exporter
}

func TestContextFromTraceparentContinuesTheTrace(t *testing.T) {
	tracer, exporter := recordingTracer(t)
	ctx := tracing.ContextFromTraceparent(context.Background(), incoming)
	if sc := trace.SpanContextFromContext(ctx); !sc.IsRemote() || sc.TraceID().String() != incomingTraceID {
		t.Fatalf("span context from traceparent = %+v, want remote in trace %s", sc, incomingTraceID)
	}

	ctx, span := tracer.Start(ctx, "child")
	got := tracing.Traceparent(ctx)
	span.End()

	spans := exporter.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("recorded %d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.SpanContext.TraceID().String() != incomingTraceID || s.Parent.SpanID().String() != incomingSpanID || !s.Parent.IsRemote() {
		t.Errorf("child is in trace %s under %s (remote %v), want trace %s under remote %s",
			s.SpanContext.TraceID(), s.Parent.SpanID(), s.Parent.IsRemote(), incomingTraceID, incomingSpanID)
	}
	if want := "00-" + incomingTraceID + "-" + s.SpanContext.SpanID().String() + "-01"; got != want {
		t.Errorf("Traceparent(child) = %q, want %q", got, want)
	}
}

func TestContextFromTraceparentIgnoresWhatItCannotParse(t *testing.T) {
	for _, tp := range []string{
		"",
		"garbage",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // all-zero trace id is invalid
		"00-" + incomingTraceID + "-0000000000000000-01",          // all-zero span id is invalid
		"00-" + incomingTraceID + "-" + incomingSpanID,            // no flags
	} {
		ctx := tracing.ContextFromTraceparent(context.Background(), tp)
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			t.Errorf("traceparent %q gave a valid span context %+v", tp, sc)
		}
		if got := tracing.Traceparent(ctx); got != "" {
			t.Errorf("Traceparent after %q = %q, want empty", tp, got)
		}
	}
	if got := tracing.Traceparent(context.Background()); got != "" {
		t.Errorf("Traceparent(Background) = %q, want empty", got)
	}
}

func TestContextFromEnvReadsTraceparentAndTracestate(t *testing.T) {
	t.Setenv(tracing.EnvTraceparent, incoming)
	t.Setenv(tracing.EnvTracestate, "vendor=abc")

	ctx := tracing.ContextFromEnv(context.Background())

	if got := tracing.Traceparent(ctx); got != incoming {
		t.Errorf("Traceparent = %q, want %q", got, incoming)
	}
	if got := tracing.Tracestate(ctx); got != "vendor=abc" {
		t.Errorf("Tracestate = %q, want vendor=abc", got)
	}

	t.Setenv(tracing.EnvTraceparent, "")
	if sc := trace.SpanContextFromContext(tracing.ContextFromEnv(context.Background())); sc.IsValid() {
		t.Errorf("without TRACEPARENT the context has span %+v", sc)
	}
}

func TestLogHandlerAddsTraceAndSpanIDs(t *testing.T) {
	tracer, _ := recordingTracer(t)
	var buf bytes.Buffer
	log := slog.New(tracing.NewLogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	ctx, span := tracer.Start(tracing.ContextFromTraceparent(context.Background(), incoming), "op")
	defer span.End()
	spanID := span.SpanContext().SpanID().String()

	log.InfoContext(ctx, "with span")
	log.Info("without context")
	log.InfoContext(tracing.ContextFromTraceparent(context.Background(), incoming), "remote parent only")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("logged %d lines, want 3:\n%s", len(lines), &buf)
	}
	want := []map[string]any{
		{"msg": "with span", "trace_id": incomingTraceID, "span_id": spanID},
		{"msg": "without context"},
		{"msg": "remote parent only", "trace_id": incomingTraceID, "span_id": incomingSpanID},
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("line %d is not JSON: %s", i, line)
		}
		if got["component"] != "test" {
			t.Errorf("line %d lost the logger's attributes: %s", i, line)
		}
		for _, key := range []string{"msg", "trace_id", "span_id"} {
			if got[key] != want[i][key] {
				t.Errorf("line %d: %s = %v, want %v", i, key, got[key], want[i][key])
			}
		}
	}
}

func TestLogValues(t *testing.T) {
	if got := tracing.LogValues(context.Background()); got != nil {
		t.Errorf("LogValues without a span = %v, want nil", got)
	}
	got := tracing.LogValues(tracing.ContextFromTraceparent(context.Background(), incoming))
	want := []any{"trace_id", incomingTraceID, "span_id", incomingSpanID}
	if len(got) != len(want) {
		t.Fatalf("LogValues = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("LogValues = %v, want %v", got, want)
			break
		}
	}
}
