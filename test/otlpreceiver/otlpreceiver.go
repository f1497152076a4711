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

// Package otlpreceiver is an OTLP trace receiver for tests: it accepts what the OpenTelemetry
// exporters send, over OTLP/HTTP (protobuf or JSON, gzip or not) or OTLP/gRPC, and keeps the spans
// as plain values to assert on. It listens on any address it is given, so a test can start it on
// 0.0.0.0:0 and point Pods at it through the node's address.
package otlpreceiver

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Protocols, as OTEL_EXPORTER_OTLP_PROTOCOL names them.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// maxBody bounds one export request; the SDK's batches are far smaller.
const maxBody = 64 << 20

// Span is one received span, flattened with the service that sent it.
type Span struct {
	// TraceID and SpanID are lowercase hex, as in a traceparent; ParentSpanID is "" for a root.
	TraceID      string
	SpanID       string
	ParentSpanID string
	Name         string
	// Kind is the OTLP name, such as "SPAN_KIND_SERVER".
	Kind string
	// Service is the service.name of the resource that sent the span.
	Service string
	// Resource holds all the attributes of that resource, service.name among them.
	Resource map[string]any
	// Attributes hold string, int64, float64, bool, []byte, []any or map[string]any values.
	Attributes map[string]any
	// Error is set when the span's status is Error; StatusMessage is that status's description.
	Error         bool
	StatusMessage string
	// Events are the names of the span's events, such as "exception" for a recorded error.
	Events     []string
	Start, End time.Time
}

// Receiver collects the spans exported to it. It is safe for concurrent use.
type Receiver struct {
	protocol string
	ln       net.Listener
	stop     func() error

	mu       sync.Mutex
	spans    []Span
	requests int
	// changed is closed and replaced whenever spans arrive, to wake WaitFor.
	changed chan struct{}
}

// StartHTTP serves OTLP/HTTP on addr ("127.0.0.1:0", "0.0.0.0:0", …). It accepts POSTs on any
// path, because a per-signal endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is used as-is.
func StartHTTP(addr string) (*Receiver, error) {
	r, err := listen(ProtocolHTTP, addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(r.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(r.ln) }()
	r.stop = srv.Close
	return r, nil
}

// StartGRPC serves OTLP/gRPC on addr, without TLS.
func StartGRPC(addr string) (*Receiver, error) {
	r, err := listen(ProtocolGRPC, addr)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, grpcService{r: r})
	go func() { _ = srv.Serve(r.ln) }()
	r.stop = func() error {
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			srv.Stop()
		}
		return nil
	}
	return r, nil
}

func listen(protocol, addr string) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for OTLP on %s: %w", addr, err)
	}
	return &Receiver{protocol: protocol, ln: ln, changed: make(chan struct{})}, nil
}

// Protocol is ProtocolHTTP or ProtocolGRPC, the value for OTEL_EXPORTER_OTLP_PROTOCOL.
func (r *Receiver) Protocol() string { return r.protocol }

// Port is the port the receiver listens on.
func (r *Receiver) Port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// Endpoint is the value for OTEL_EXPORTER_OTLP_ENDPOINT of a process on this machine: the
// listening address, with a wildcard address replaced by loopback.
func (r *Receiver) Endpoint() string {
	host := r.ln.Addr().(*net.TCPAddr).IP
	if host.IsUnspecified() {
		return r.EndpointFor("127.0.0.1")
	}
	return r.EndpointFor(host.String())
}

// EndpointFor is the value for OTEL_EXPORTER_OTLP_ENDPOINT of a process that reaches this
// machine as host, such as a Pod given the node's address.
func (r *Receiver) EndpointFor(host string) string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(r.Port()))
}

// Env is the environment that makes a process export its spans here.
func (r *Receiver) Env() map[string]string {
	return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.Endpoint(), "OTEL_EXPORTER_OTLP_PROTOCOL": r.protocol}
}

// Spans is a copy of every span received so far, in order of arrival.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Requests counts the export requests received, including ones that could not be decoded.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Reset forgets the spans received so far.
func (r *Receiver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = nil
}

// WaitFor waits until done holds for the spans received so far and returns them, or returns the
// last spans seen with an error when ctx ends first.
func (r *Receiver) WaitFor(ctx context.Context, done func([]Span) bool) ([]Span, error) {
	for {
		r.mu.Lock()
		spans, changed := append([]Span(nil), r.spans...), r.changed
		r.mu.Unlock()
		if done(spans) {
			return spans, nil
		}
		select {
		case <-ctx.Done():
			return spans, fmt.Errorf("waiting for spans (%d received): %w", len(spans), context.Cause(ctx))
		case <-changed:
		}
	}
}

// Close stops the receiver.
func (r *Receiver) Close() error {
	if err := r.stop(); err != nil {
		return fmt.Errorf("stopping OTLP receiver: %w", err)
	}
	return nil
}

func (r *Receiver) countRequest() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
}

func (r *Receiver) add(req *coltracepb.ExportTraceServiceRequest) {
	var spans []Span
	for _, rs := range req.GetResourceSpans() {
		resource := attributes(rs.GetResource().GetAttributes())
		service, _ := resource["service.name"].(string)
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				span := convert(s, service)
				span.Resource = resource
				spans = append(spans, span)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, spans...)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	r.countRequest()
	if req.Method != http.MethodPost {
		http.Error(w, "OTLP export needs POST", http.StatusMethodNotAllowed)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, maxBody)
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer func() { _ = gz.Close() }()
		body = io.LimitReader(gz, maxBody)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	var export coltracepb.ExportTraceServiceRequest
	switch mediaType {
	case "application/x-protobuf":
		err = proto.Unmarshal(raw, &export)
	case "application/json":
		err = protojson.Unmarshal(raw, &export)
	default:
		http.Error(w, "unsupported content type "+mediaType, http.StatusUnsupportedMediaType)
		return
	}
	if err != nil {
		http.Error(w, "decoding export request: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.add(&export)
	// The response has the request's encoding, as the OTLP/HTTP specification asks.
	resp := &coltracepb.ExportTraceServiceResponse{}
	var out []byte
	if mediaType == "application/json" {
		out, err = protojson.Marshal(resp)
	} else {
		out, err = proto.Marshal(resp)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	_, _ = w.Write(out)
}

type grpcService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (s grpcService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.r.countRequest()
	s.r.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func convert(s *tracepb.Span, service string) Span {
	out := Span{
		TraceID:    hex.EncodeToString(s.GetTraceId()),
		SpanID:     hex.EncodeToString(s.GetSpanId()),
		Name:       s.GetName(),
		Kind:       s.GetKind().String(),
		Service:    service,
		Attributes: attributes(s.GetAttributes()),
		Start:      time.Unix(0, int64(s.GetStartTimeUnixNano())),
		End:        time.Unix(0, int64(s.GetEndTimeUnixNano())),
	}
	if len(s.GetParentSpanId()) > 0 {
		out.ParentSpanID = hex.EncodeToString(s.GetParentSpanId())
	}
	if s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		out.Error = true
		out.StatusMessage = s.GetStatus().GetMessage()
	}
	for _, e := range s.GetEvents() {
		out.Events = append(out.Events, e.GetName())
	}
	return out
}

func attributes(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *commonpb.AnyValue) any {
	switch v := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return v.StringValue
	case *commonpb.AnyValue_IntValue:
		return v.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return v.DoubleValue
	case *commonpb.AnyValue_BoolValue:
		return v.BoolValue
	case *commonpb.AnyValue_BytesValue:
		return v.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		values := make([]any, len(v.ArrayValue.GetValues()))
		for i, item := range v.ArrayValue.GetValues() {
			values[i] = value(item)
		}
		return values
	case *commonpb.AnyValue_KvlistValue:
		return attributes(v.KvlistValue.GetValues())
	default:
		return nil
	}
}

// Named returns the spans called name.
func Named(spans []Span, name string) []Span {
	var out []Span
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// ErrNotFound is returned by Find when no span matches.
var ErrNotFound = errors.New("no such span")

// Find returns the first span called name.
func Find(spans []Span, name string) (Span, error) {
	for _, s := range spans {
		if s.Name == name {
			return s, nil
		}
	}
	return Span{}, fmt.Errorf("span %q: %w", name, ErrNotFound)
}
