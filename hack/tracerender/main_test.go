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

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/download-operator/download-operator/test/otlpreceiver"
)

const (
	facade     = "download-operator-facade"
	controller = "download-operator-controller"
	worker     = "download-operator-worker"
	traceID    = "4bf92f3577b34da6a3ce929d0e0e4736"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

// syntheticTrace is one Download as the e2e test sees it, listed out of order as the receiver
// gets it from three processes. Span IDs name the span, so a failure message says which.
func syntheticTrace() []otlpreceiver.Span {
	s := func(id, parent, name, service string, start, end float64) otlpreceiver.Span {
		return otlpreceiver.Span{TraceID: traceID, SpanID: id, ParentSpanID: parent, Name: name, Service: service,
			Kind: "SPAN_KIND_INTERNAL", Attributes: map[string]any{"k": "v"}, Start: at(start), End: at(end)}
	}
	return []otlpreceiver.Span{
		s("status3", "initiate", "controller.write_status", controller, 3206, 3208),
		s("upload", "run", "archive.upload", worker, 2660, 3170),
		s("read2", "run", "source.read", worker, 1462, 2650),
		s("read1", "run", "source.read", worker, 1460, 2100),
		s("sign", "initiate", "controller.sign_url", controller, 3205, 3205.3),
		s("run", "createjob", "worker.Run", worker, 1450, 3180),
		s("status2", "initiate", "controller.write_status", controller, 3200, 3200.4),
		s("status1", "initiate", "controller.write_status", controller, 26, 27.1),
		s("initiate", "clientspan", "POST /v1/download/initiate", facade, 0, 6.4),
		s("createjob", "initiate", "controller.create_job", controller, 1.8, 24),
	}
}

// decode goes through the JSON the e2e test writes, so a field renamed in otlpreceiver.Span
// breaks these tests rather than the docs image.
func decode(t *testing.T, spans []otlpreceiver.Span) []span {
	t.Helper()
	raw, err := json.MarshalIndent(spans, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out, err := readSpans(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("readSpans: %v", err)
	}
	return out
}

func layout(rows []row) string {
	var parts []string
	for _, r := range rows {
		parts = append(parts, fmt.Sprintf("%d:%s", r.depth, r.SpanID))
	}
	return strings.Join(parts, " ")
}

func TestReadSpansKeepsTheFieldsTheWaterfallNeeds(t *testing.T) {
	in := syntheticTrace()
	in[0].Error = true
	got := decode(t, in)[0]
	want := span{TraceID: traceID, SpanID: "status3", ParentSpanID: "initiate", Name: "controller.write_status",
		Service: controller, Error: true, Start: at(3206), End: at(3208)}
	if !got.Start.Equal(want.Start) || !got.End.Equal(want.End) {
		t.Fatalf("times: got %v–%v, want %v–%v", got.Start, got.End, want.Start, want.End)
	}
	got.Start, got.End, want.Start, want.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestOrderIsDepthFirstWithChildrenByStart(t *testing.T) {
	got := layout(order(decode(t, syntheticTrace())))
	want := "0:initiate 1:createjob 2:run 3:read1 3:read2 3:upload 1:status1 1:status2 1:sign 1:status3"
	if got != want {
		t.Fatalf("rows\n got: %s\nwant: %s", got, want)
	}
}

func TestSpansWithAMissingParentAreRoots(t *testing.T) {
	// Without create_job, worker.Run has no parent in the file: it and its children must stay,
	// as a second root after the initiate tree, which starts earlier.
	spans := slices.DeleteFunc(syntheticTrace(), func(s otlpreceiver.Span) bool { return s.SpanID == "createjob" })
	// A child starting before its parent, as when Pod clocks disagree, still goes under it.
	spans[slices.IndexFunc(spans, func(s otlpreceiver.Span) bool { return s.SpanID == "status1" })].Start = at(-1)
	got := layout(order(decode(t, spans)))
	want := "0:initiate 1:status1 1:status2 1:sign 1:status3 0:run 1:read1 1:read2 1:upload"
	if got != want {
		t.Fatalf("rows\n got: %s\nwant: %s", got, want)
	}
}

func TestOrderKeepsSpansInAParentCycle(t *testing.T) {
	spans := syntheticTrace()[:2]
	spans[0].ParentSpanID, spans[1].ParentSpanID = spans[1].SpanID, spans[0].SpanID
	if rows := order(decode(t, spans)); len(rows) != 2 {
		t.Fatalf("got %d rows for 2 spans in a cycle: %s", len(rows), layout(rows))
	}
}

func renderPNG(t *testing.T, rows []row) image.Image {
	t.Helper()
	var buf bytes.Buffer
	if err := render(rows, &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("decoding the PNG: %v", err)
	}
	return img
}

// countColor counts the pixels of the colour of service above the legend, which has a swatch
// of every colour whatever the bars look like.
func countColor(img image.Image, service string) int {
	want := colorOf(service)
	n := 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y-int(legendSpace*dpi/72); y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(b>>8) == want.B {
				n++
			}
		}
	}
	return n
}

func TestRenderDrawsAPNGThatGrowsWithTheRows(t *testing.T) {
	rows := order(decode(t, syntheticTrace()))
	small, large := renderPNG(t, rows[:3]), renderPNG(t, rows)
	if small.Bounds().Dx() < 600 {
		t.Fatalf("width %d px is too narrow to read", small.Bounds().Dx())
	}
	// Seven more rows of 16 points at 144 dpi are 224 pixels.
	if grown := large.Bounds().Dy() - small.Bounds().Dy(); grown < 200 {
		t.Fatalf("height grew by %d px from 3 to 10 rows (%v, %v)", grown, small.Bounds(), large.Bounds())
	}
	for _, service := range []string{facade, controller, worker} {
		if n := countColor(large, service); n < 50 {
			t.Errorf("%d pixels of the colour of %s", n, service)
		}
	}
}

func TestShortSpansStayVisible(t *testing.T) {
	// A 50 µs worker span on a 10 s timeline is a hundredth of a pixel wide without a minimum.
	spans := decode(t, []otlpreceiver.Span{
		{TraceID: traceID, SpanID: "root", Name: "root", Service: facade, Start: at(0), End: at(10000)},
		{TraceID: traceID, SpanID: "short", ParentSpanID: "root", Name: "short", Service: worker, Start: at(5000), End: at(5000.05)},
	})
	if n := countColor(renderPNG(t, order(spans)), worker); n < 40 {
		t.Fatalf("the short span has %d pixels of its colour", n)
	}
}

func TestEmptyInputIsAnError(t *testing.T) {
	for _, in := range []string{"", "[]", "null"} {
		if _, err := readSpans(strings.NewReader(in)); !errors.Is(err, errNoSpans) {
			t.Errorf("readSpans(%q) = %v, want %v", in, err, errNoSpans)
		}
	}
	if _, err := readSpans(strings.NewReader("{")); err == nil || errors.Is(err, errNoSpans) {
		t.Errorf("readSpans of broken JSON = %v, want a decoding error", err)
	}
	if err := render(nil, &bytes.Buffer{}); !errors.Is(err, errNoSpans) {
		t.Errorf("render(nil) = %v, want %v", err, errNoSpans)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(in, []byte("[]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(in, filepath.Join(dir, "trace.png"))
	if err == nil || !strings.Contains(err.Error(), "no spans") || !strings.Contains(err.Error(), in) {
		t.Fatalf("run on an empty file = %v, want an error naming the file and saying it has no spans", err)
	}
}

func TestRunWritesThePNG(t *testing.T) {
	dir := t.TempDir()
	raw, err := json.MarshalIndent(syntheticTrace(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "last-trace.json"), filepath.Join(dir, "images", "trace.png")
	if err := os.WriteFile(in, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(written)); err != nil {
		t.Fatalf("%s is not a PNG: %v", out, err)
	}
	// TRACERENDER_SAMPLE=/tmp/trace-sample.png keeps the picture, to look at the layout without a cluster.
	if sample := os.Getenv("TRACERENDER_SAMPLE"); sample != "" {
		if err := os.WriteFile(sample, written, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMixedTracesAreRefused(t *testing.T) {
	spans := syntheticTrace()
	spans[3].TraceID = "0af7651916cd43dd8448eb211c80319c"
	raw, err := json.Marshal(spans)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readSpans(bytes.NewReader(raw)); err == nil || !strings.Contains(err.Error(), spans[3].TraceID) {
		t.Fatalf("readSpans = %v, want an error naming both traces", err)
	}
}
