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

package otlpreceiver_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/download-operator/download-operator/test/otlpreceiver"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func exportRequest() *coltracepb.ExportTraceServiceRequest {
	traceID := bytes.Repeat([]byte{0xab}, 16)
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "svc"), str("k8s.pod.name", "pod-1")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: traceID, SpanId: bytes.Repeat([]byte{1}, 8), Name: "root", Kind: tracepb.Span_SPAN_KIND_SERVER},
			{
				TraceId: traceID, SpanId: bytes.Repeat([]byte{2}, 8), ParentSpanId: bytes.Repeat([]byte{1}, 8), Name: "child",
				Attributes: []*commonpb.KeyValue{
					str("s", "v"),
					{Key: "n", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}},
					{Key: "b", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
					{Key: "ids", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
						Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_IntValue{IntValue: 7}}},
					}}}},
				},
				Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom"},
				Events: []*tracepb.Span_Event{{Name: "exception"}},
			},
		}}},
	}}}
}

func TestHTTPReceiverDecodesEveryEncoding(t *testing.T) {
	r, err := otlpreceiver.StartHTTP("0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if want := "http://127.0.0.1:"; !strings.HasPrefix(r.Endpoint(), want) {
		t.Errorf("Endpoint of a wildcard listener = %s, want it on loopback", r.Endpoint())
	}
	pb, err := proto.Marshal(exportRequest())
	if err != nil {
		t.Fatal(err)
	}
	js, err := protojson.Marshal(exportRequest())
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(pb)
	_ = zw.Close()

	for _, tc := range []struct {
		name, contentType, encoding string
		body                        []byte
	}{
		{"protobuf", "application/x-protobuf", "", pb},
		{"gzip protobuf", "application/x-protobuf", "gzip", gz.Bytes()},
		{"json", "application/json", "", js},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.Reset()
			req, _ := http.NewRequest(http.MethodPost, r.Endpoint()+"/v1/traces", bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.contentType {
				t.Fatalf("answer %d %s, want 200 %s", resp.StatusCode, resp.Header.Get("Content-Type"), tc.contentType)
			}
			checkSpans(t, r.Spans())
		})
	}

	resp, err := http.Post(r.Endpoint()+"/v1/traces", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain answered %d, want 415", resp.StatusCode)
	}
}

func checkSpans(t *testing.T, spans []otlpreceiver.Span) {
	t.Helper()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	root, child := spans[0], spans[1]
	if root.Name != "root" || root.ParentSpanID != "" || root.Kind != "SPAN_KIND_SERVER" || root.TraceID != strings.Repeat("ab", 16) {
		t.Errorf("root = %+v", root)
	}
	if child.ParentSpanID != root.SpanID || child.SpanID != strings.Repeat("02", 8) {
		t.Errorf("child %s has parent %q, want %s", child.SpanID, child.ParentSpanID, root.SpanID)
	}
	if child.Service != "svc" || child.Resource["k8s.pod.name"] != "pod-1" {
		t.Errorf("child service %q, resource %v", child.Service, child.Resource)
	}
	if child.Attributes["s"] != "v" || child.Attributes["n"] != int64(42) || child.Attributes["b"] != true {
		t.Errorf("child attributes = %v", child.Attributes)
	}
	if ids, _ := child.Attributes["ids"].([]any); len(ids) != 1 || ids[0] != int64(7) {
		t.Errorf("child attribute ids = %v, want [7]", child.Attributes["ids"])
	}
	if !child.Error || child.StatusMessage != "boom" || len(child.Events) != 1 || child.Events[0] != "exception" {
		t.Errorf("child status/events = %v %q %v", child.Error, child.StatusMessage, child.Events)
	}
}

func TestGRPCReceiverAndWaitFor(t *testing.T) {
	r, err := otlpreceiver.StartGRPC("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.WaitFor(short, func(s []otlpreceiver.Span) bool { return len(s) > 0 }); err == nil {
		t.Error("WaitFor returned before any span arrived")
	}

	conn, err := grpc.NewClient(strings.TrimPrefix(r.Endpoint(), "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waited := make(chan []otlpreceiver.Span, 1)
	go func() {
		spans, _ := r.WaitFor(ctx, func(s []otlpreceiver.Span) bool { return len(s) == 2 })
		waited <- spans
	}()
	if _, err := coltracepb.NewTraceServiceClient(conn).Export(ctx, exportRequest()); err != nil {
		t.Fatalf("Export: %v", err)
	}
	checkSpans(t, <-waited)
}
