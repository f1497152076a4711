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

package worker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/tracing"
	"github.com/download-operator/download-operator/internal/worker"
	"github.com/download-operator/download-operator/test/otlpreceiver"
)

// The controller's span, as TRACEPARENT hands it to the worker.
const (
	parentTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + parentTraceID + "-" + parentSpanID + "-01"
)

func inMemoryTracing(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exporter
}

func attr(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func named(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func TestRunTracesEachSourceReadAndTheUpload(t *testing.T) {
	// Over one part of incompressible data, so that the upload needs two parts.
	files := map[int64][]byte{
		40_001: csvBytes(1, 30<<10),
		40_002: randomBytes(2, int(worker.MinPartSize)+(1<<20)),
		40_003: {},
	}
	ids := []int64{40_001, 40_002, 40_003}
	client, cfg := sharedRun(t, files, ids...)
	tp, exporter := inMemoryTracing(t)
	ctx := tracing.ContextFromTraceparent(context.Background(), traceparent)

	result, err := worker.Run(ctx, cfg, worker.Deps{Source: client, Reporter: &recorder{}, TracerProvider: tp})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	spans := exporter.GetSpans()
	runs, stats, reads, uploads := named(spans, worker.SpanRun), named(spans, worker.SpanStat),
		named(spans, worker.SpanSourceRead), named(spans, worker.SpanUpload)
	if len(runs) != 1 || len(stats) != 1 || len(reads) != len(ids) || len(uploads) != 1 || len(spans) != 3+len(ids) {
		t.Fatalf("spans = %v, want one %s, one %s, %d %s and one %s", spanNames(spans),
			worker.SpanRun, worker.SpanStat, len(ids), worker.SpanSourceRead, worker.SpanUpload)
	}
	run := runs[0]
	if got := run.SpanContext.TraceID().String(); got != parentTraceID {
		t.Errorf("%s is in trace %s, want the controller's %s", worker.SpanRun, got, parentTraceID)
	}
	if got := run.Parent.SpanID().String(); got != parentSpanID || !run.Parent.IsRemote() {
		t.Errorf("%s has parent %s (remote %v), want the controller's span %s", worker.SpanRun, got, run.Parent.IsRemote(), parentSpanID)
	}
	for _, s := range spans {
		if s.Name == worker.SpanRun {
			continue
		}
		if s.Parent.SpanID() != run.SpanContext.SpanID() || s.SpanContext.TraceID() != run.SpanContext.TraceID() {
			t.Errorf("%s has parent %s in trace %s, want %s's %s", s.Name, s.Parent.SpanID(), s.SpanContext.TraceID(),
				worker.SpanRun, run.SpanContext.SpanID())
		}
		if s.Status.Code == codes.Error {
			t.Errorf("%s failed on success: %s", s.Name, s.Status.Description)
		}
	}

	var total int64
	for i, s := range reads {
		// Sources are read in the requested order.
		id := ids[i]
		total += int64(len(files[id]))
		if got := attr(s, worker.AttrFileID).AsInt64(); got != id {
			t.Errorf("read %d is of file %d, want %d", i, got, id)
		}
		if got := attr(s, worker.AttrBytesRead).AsInt64(); got != int64(len(files[id])) {
			t.Errorf("read of %d: bytes read = %d, want %d", id, got, len(files[id]))
		}
		if got := attr(s, worker.AttrKey).AsString(); got != sourceKey(id) {
			t.Errorf("read of %d: key = %q, want %q", id, got, sourceKey(id))
		}
		if got := attr(s, worker.AttrBucket).AsString(); got != cfg.SourceBucket {
			t.Errorf("read of %d: bucket = %q, want %q", id, got, cfg.SourceBucket)
		}
	}
	if got := attr(stats[0], worker.AttrBytesTotal).AsInt64(); got != total {
		t.Errorf("%s: bytes total = %d, want %d", worker.SpanStat, got, total)
	}

	upload := uploads[0]
	if got := attr(upload, worker.AttrBytesUploaded).AsInt64(); got != result.Size {
		t.Errorf("%s: bytes uploaded = %d, want the archive's %d", worker.SpanUpload, got, result.Size)
	}
	if got, want := attr(upload, worker.AttrParts).AsInt64(), storedParts(t, client, result); got != want {
		t.Errorf("%s: parts = %d, but the stored object has %d", worker.SpanUpload, got, want)
	}
	if got := attr(upload, worker.AttrBucket).AsString() + "/" + attr(upload, worker.AttrKey).AsString(); got != cfg.ArchiveBucket+"/"+cfg.ArchiveKey {
		t.Errorf("%s: object = %s, want %s/%s", worker.SpanUpload, got, cfg.ArchiveBucket, cfg.ArchiveKey)
	}
	if got := attr(run, worker.AttrBytesRead).AsInt64(); got != total {
		t.Errorf("%s: bytes read = %d, want %d", worker.SpanRun, got, total)
	}
	if run.Status.Code == codes.Error || attr(run, worker.AttrExitCode).AsInt64() != 0 {
		t.Errorf("%s: status %v, exit code %v, want success", worker.SpanRun, run.Status, attr(run, worker.AttrExitCode).Emit())
	}
}

// storedParts reads the part count from the archive's ETag, which S3 suffixes with "-N" for an
// object uploaded in N parts.
func storedParts(t *testing.T, client *minio.Client, result jobreport.Result) int64 {
	t.Helper()
	info, err := client.StatObject(context.Background(), result.Bucket, result.Key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("stat archive: %v", err)
	}
	_, suffix, ok := strings.Cut(strings.Trim(info.ETag, `"`), "-")
	if !ok {
		t.Fatalf("archive ETag %q is not a multipart ETag", info.ETag)
	}
	n, err := strconv.ParseInt(suffix, 10, 64)
	if err != nil {
		t.Fatalf("archive ETag %q: %v", info.ETag, err)
	}
	return n
}

func spanNames(spans tracetest.SpanStubs) []string {
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name
	}
	return names
}

func TestRunRecordsAFailureOnItsSpans(t *testing.T) {
	client, cfg := sharedRun(t, map[int64][]byte{41_001: csvBytes(1, 100)}, 41_001, 41_002)
	tp, exporter := inMemoryTracing(t)

	_, err := worker.Run(context.Background(), cfg, worker.Deps{Source: client, Reporter: &recorder{}, TracerProvider: tp})
	if err == nil {
		t.Fatal("Run succeeded with a missing source")
	}

	spans := exporter.GetSpans()
	if got := spanNames(spans); !slices.Equal(got, []string{worker.SpanStat, worker.SpanRun}) {
		t.Fatalf("spans = %v, want only %s and %s: nothing is read or uploaded when a source is missing",
			got, worker.SpanStat, worker.SpanRun)
	}
	stat, run := spans[0], spans[1]
	for _, s := range spans {
		if s.Status.Code != codes.Error || !strings.Contains(s.Status.Description, "41002") {
			t.Errorf("%s status = %+v, want an error naming file 41002", s.Name, s.Status)
		}
		if !slices.ContainsFunc(s.Events, func(e sdktrace.Event) bool { return e.Name == "exception" }) {
			t.Errorf("%s has no exception event", s.Name)
		}
	}
	if got := attr(stat, worker.AttrMissingFileIDs).AsInt64Slice(); !slices.Equal(got, []int64{41_002}) {
		t.Errorf("%s: missing ids = %v, want [41002]", worker.SpanStat, got)
	}
	if got := attr(run, worker.AttrFailureReason).AsString(); got != downloadv1alpha1.ReasonSourceNotFound {
		t.Errorf("%s: failure reason = %q, want %s", worker.SpanRun, got, downloadv1alpha1.ReasonSourceNotFound)
	}
	if got := attr(run, worker.AttrExitCode).AsInt64(); got != jobreport.ExitPermanent {
		t.Errorf("%s: exit code = %d, want %d", worker.SpanRun, got, jobreport.ExitPermanent)
	}
}

// TestCommandExportsItsSpansBeforeExiting runs the worker as its container does, with the
// environment the controller gives it, and checks that a collector has the spans the moment the
// command returns: the Pod is gone right after, so nothing may still be queued.
func TestCommandExportsItsSpansBeforeExiting(t *testing.T) {
	for _, tc := range []struct {
		name     string
		extraIDs string
		wantExit int
	}{
		{"success", "", 0},
		{"failure", ",85009", jobreport.ExitPermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCommandFixture(t, map[int64][]byte{85_001: csvBytes(1, 20<<10), 85_002: randomBytes(2, 10<<10)})
			f.fileIDsString += tc.extraIDs
			receiver, err := otlpreceiver.StartHTTP("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = receiver.Close() })
			for name, value := range f.env() {
				t.Setenv(name, value)
			}
			for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
				"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
				t.Setenv(name, "")
			}
			for name, value := range receiver.Env() {
				t.Setenv(name, value)
			}
			t.Setenv(tracing.EnvTraceparent, traceparent)
			var stderr bytes.Buffer

			code := worker.Command(context.Background(), f.args(), &stderr)

			if code != tc.wantExit {
				t.Fatalf("exit = %d, want %d; stderr:\n%s", code, tc.wantExit, &stderr)
			}
			spans := receiver.Spans()
			run, err := otlpreceiver.Find(spans, worker.SpanRun)
			if err != nil {
				t.Fatalf("received %d spans without %s when the command returned: %v", len(spans), worker.SpanRun, err)
			}
			if run.TraceID != parentTraceID || run.ParentSpanID != parentSpanID {
				t.Errorf("%s is %s under %s, want trace %s under %s", worker.SpanRun, run.TraceID, run.ParentSpanID, parentTraceID, parentSpanID)
			}
			if run.Service != tracing.ServiceWorker {
				t.Errorf("service.name = %q, want %q", run.Service, tracing.ServiceWorker)
			}
			if run.Error != (tc.wantExit != 0) {
				t.Errorf("%s error = %v (%q), want %v", worker.SpanRun, run.Error, run.StatusMessage, tc.wantExit != 0)
			}
			wantReads := 2
			if tc.wantExit != 0 {
				wantReads = 0
			}
			if got := len(otlpreceiver.Named(spans, worker.SpanSourceRead)); got != wantReads {
				t.Errorf("received %d %s spans, want %d", got, worker.SpanSourceRead, wantReads)
			}
			checkLogsCarryTrace(t, stderr.String(), run.SpanID)
		})
	}
}

// checkLogsCarryTrace proves every log line of the run names the Download's trace, and that the
// lines logged inside worker.Run name its span.
func checkLogsCarryTrace(t *testing.T, logs string, runSpanID string) {
	t.Helper()
	inRun := 0
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("log line is not JSON: %s", sc.Text())
			continue
		}
		if line["trace_id"] != parentTraceID {
			t.Errorf("log line has trace_id %v, want %s: %s", line["trace_id"], parentTraceID, sc.Text())
		}
		if line["span_id"] == runSpanID {
			inRun++
		}
	}
	if inRun == 0 {
		t.Errorf("no log line names the %s span %s:\n%s", worker.SpanRun, runSpanID, logs)
	}
}
