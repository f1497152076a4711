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

package stack_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/controller"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/internal/worker"
	"github.com/download-operator/download-operator/test/stack"
)

// TestOneTracePerDownload runs a Download through the facade, the controller and the real worker
// with every span recorded in memory, and checks that they form one trace: the initiate
// request is its root, the controller's steps are its children, and the worker hangs below the
// Job's creation. The status poll, which sends no traceparent, is a trace of its own.
func TestOneTracePerDownload(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	saved := otel.GetTracerProvider()
	otel.SetTracerProvider(provider)
	t.Cleanup(func() { otel.SetTracerProvider(saved) })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{Log: testLog(), Facade: func(c *facade.Config) { c.Tracing = true }})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping the stack: %v", err)
		}
	}()
	sources := map[int64]string{70000: "first source", 70001: strings.Repeat("second source ", 1000)}
	for id, content := range sources {
		if err := s.PutSource(ctx, id, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}

	accepted := initiate(t, s, `{"file_ids":[70000,70001]}`)
	done, err := s.RunToCompletion(ctx, accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	poll, err := http.Get(s.Facade.URL + "/v1/download/status/" + accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	_ = poll.Body.Close()
	if err := provider.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}

	spans := recorder.Ended()
	initiate := only(t, spans, "POST /v1/download/initiate", nil)
	traceID := initiate.SpanContext().TraceID()
	if initiate.Parent().IsValid() {
		t.Errorf("the initiate span has a parent %s; with no traceparent sent it must be the root", initiate.Parent().SpanID())
	}
	if got := done.Annotations[downloadv1alpha1.TraceparentAnnotation]; !strings.Contains(got, traceID.String()) {
		t.Errorf("the Download's traceparent annotation %q is not in trace %s", got, traceID)
	}
	var inTrace []sdktrace.ReadOnlySpan
	for _, span := range spans {
		if span.SpanContext().TraceID() == traceID {
			inTrace = append(inTrace, span)
		}
	}
	t.Logf("trace %s:\n%s", traceID, spanTree(inTrace, initiate.SpanContext().SpanID(), 0))

	// A reconcile that finds the cache behind its own write repeats a step (the create meets
	// AlreadyExists, a status patch conflicts after signing): each attempt is a span of its own.
	createJobs := children(t, inTrace, controller.SpanCreateJob, initiate)
	signURL := children(t, inTrace, controller.SpanSignURL, initiate)[0]
	run := only(t, inTrace, worker.SpanRun, nil)
	if !slices.ContainsFunc(createJobs, func(c sdktrace.ReadOnlySpan) bool { return c.SpanContext().SpanID() == run.Parent().SpanID() }) {
		t.Errorf("worker.Run's parent %s is not a %s span", run.Parent().SpanID(), controller.SpanCreateJob)
	}
	only(t, inTrace, worker.SpanStat, run)
	upload := only(t, inTrace, worker.SpanUpload, run)
	if got := intAttr(upload, worker.AttrBytesUploaded); got != done.Status.Archive.Size {
		t.Errorf("archive.upload reports %d bytes uploaded; the archive has %d", got, done.Status.Archive.Size)
	}
	reads := named(inTrace, worker.SpanSourceRead)
	if len(reads) != len(sources) {
		t.Fatalf("%d source.read spans, want one per source (%d)", len(reads), len(sources))
	}
	for _, read := range reads {
		if read.Parent().SpanID() != run.SpanContext().SpanID() {
			t.Errorf("a source.read span's parent is %s, want worker.Run", read.Parent().SpanID())
		}
		id := intAttr(read, worker.AttrFileID)
		if got := intAttr(read, worker.AttrBytesRead); got != int64(len(sources[id])) {
			t.Errorf("source.read of %d reports %d bytes, the source has %d", id, got, len(sources[id]))
		}
	}
	writes := named(inTrace, controller.SpanWriteStatus)
	phases := map[string]bool{}
	for _, write := range writes {
		if write.Parent().SpanID() != initiate.SpanContext().SpanID() {
			t.Errorf("a status write's parent is %s, want the initiate span", write.Parent().SpanID())
		}
		phases[stringAttr(write, "download.phase")] = true
	}
	if !phases[string(downloadv1alpha1.PhaseCompleted)] {
		t.Errorf("no status write records phase Completed; phases written: %v", phases)
	}
	if !signURL.EndTime().After(run.EndTime()) {
		t.Errorf("the URL was signed (%s) before the worker ended (%s)", signURL.EndTime(), run.EndTime())
	}

	pollSpan := only(t, spans, "GET /v1/download/status/{jobId}", nil)
	if pollSpan.SpanContext().TraceID() == traceID {
		t.Error("a poll without traceparent joined the Download's trace; each request is its own trace")
	}
}

// only returns the one span named name, failing unless there is exactly one and, when parent is
// given, it is that span's child.
func only(t *testing.T, spans []sdktrace.ReadOnlySpan, name string, parent sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	t.Helper()
	found := named(spans, name)
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1", len(found), name)
	}
	if parent != nil && found[0].Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("the parent of %q is %s, want %q (%s)", name, found[0].Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
	}
	return found[0]
}

// children returns the spans named name, failing unless there is at least one and each is a
// child of parent.
func children(t *testing.T, spans []sdktrace.ReadOnlySpan, name string, parent sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	t.Helper()
	found := named(spans, name)
	if len(found) == 0 {
		t.Fatalf("no span named %q", name)
	}
	for _, span := range found {
		if span.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Fatalf("the parent of a %q span is %s, want %q (%s)", name, span.Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
		}
	}
	return found
}

func named(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var found []sdktrace.ReadOnlySpan
	for _, span := range spans {
		if span.Name() == name {
			found = append(found, span)
		}
	}
	return found
}

func attr(span sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range span.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func intAttr(span sdktrace.ReadOnlySpan, key attribute.Key) int64 { return attr(span, key).AsInt64() }

func stringAttr(span sdktrace.ReadOnlySpan, key attribute.Key) string {
	return attr(span, key).AsString()
}

// spanTree renders the spans below root, for the test log.
func spanTree(spans []sdktrace.ReadOnlySpan, root trace.SpanID, depth int) string {
	var b strings.Builder
	for _, span := range spans {
		if span.SpanContext().SpanID() == root && depth == 0 {
			fmt.Fprintf(&b, "%s (%s)\n", span.Name(), span.EndTime().Sub(span.StartTime()).Round(time.Microsecond))
		}
		if span.Parent().SpanID() == root {
			fmt.Fprintf(&b, "%s%s (%s)\n", strings.Repeat("  ", depth+1), span.Name(), span.EndTime().Sub(span.StartTime()).Round(time.Microsecond))
			b.WriteString(spanTree(spans, span.SpanContext().SpanID(), depth+1))
		}
	}
	return b.String()
}
