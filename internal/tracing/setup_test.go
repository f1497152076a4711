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
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/download-operator/download-operator/internal/tracing"
	"github.com/download-operator/download-operator/test/otlpreceiver"
)

// clearOTelEnv unsets every variable that could turn export on or redirect it, so that each
// test sees only what it sets. The tests in this file change process-wide state (environment,
// global provider), so none of them runs in parallel.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, name := range []string{
		tracing.EnvEndpoint, tracing.EnvTracesEndpoint, tracing.EnvProtocol, tracing.EnvTracesProtocol,
		tracing.EnvSDKDisabled, tracing.EnvTracesExporter, "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_COMPRESSION",
	} {
		t.Setenv(name, "")
	}
}

func startReceiver(t *testing.T, protocol string) *otlpreceiver.Receiver {
	t.Helper()
	start := otlpreceiver.StartHTTP
	if protocol == otlpreceiver.ProtocolGRPC {
		start = otlpreceiver.StartGRPC
	}
	r, err := start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestSetupWithoutExportInstallsNoProviderButPropagates(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
	}{
		{"no endpoint", nil},
		// The endpoint points at a live receiver, so a broken switch would show as spans there.
		{"OTEL_SDK_DISABLED", map[string]string{tracing.EnvSDKDisabled: "TRUE", tracing.EnvEndpoint: "receiver"}},
		{"OTEL_TRACES_EXPORTER=none", map[string]string{tracing.EnvTracesExporter: "none", tracing.EnvTracesEndpoint: "receiver"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearOTelEnv(t)
			receiver := startReceiver(t, otlpreceiver.ProtocolHTTP)
			for name, value := range tc.env {
				if value == "receiver" {
					value = receiver.Endpoint()
				}
				t.Setenv(name, value)
			}
			before := otel.GetTracerProvider()

			shutdown, err := tracing.Setup(context.Background(), "svc")
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			if tracing.Enabled() {
				t.Error("Enabled() = true, want false")
			}
			if after := otel.GetTracerProvider(); after != before {
				t.Errorf("Setup replaced the global TracerProvider (%T) with %T", before, after)
			}
			if fields := otel.GetTextMapPropagator().Fields(); !slices.Contains(fields, "traceparent") {
				t.Errorf("global propagator handles %v, want traceparent among them", fields)
			}

			// Export off, yet a child of an incoming traceparent stays in its trace.
			const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
			ctx, span := tracing.Tracer().Start(tracing.ContextFromTraceparent(context.Background(), incoming), "off")
			if span.IsRecording() {
				t.Error("span records with export off")
			}
			if got := tracing.Traceparent(ctx); got != incoming {
				t.Errorf("Traceparent under a non-recording span = %q, want the incoming %q", got, incoming)
			}
			span.End()

			if err := shutdown(context.Background()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if n := receiver.Requests(); n != 0 {
				t.Errorf("receiver got %d export requests, want none", n)
			}
		})
	}
}

func TestSetupExportsSpansOverOTLP(t *testing.T) {
	cases := []struct {
		name        string
		protocol    string
		env         func(r *otlpreceiver.Receiver) map[string]string
		wantService string
		// wantResource is key=value, a resource attribute the spans must carry.
		wantResource string
	}{
		{
			name: "http/protobuf by default", protocol: otlpreceiver.ProtocolHTTP, wantService: "svc",
			env: func(r *otlpreceiver.Receiver) map[string]string {
				return map[string]string{tracing.EnvEndpoint: r.Endpoint()}
			},
		},
		{
			name: "grpc", protocol: otlpreceiver.ProtocolGRPC, wantService: "svc",
			env: func(r *otlpreceiver.Receiver) map[string]string {
				return map[string]string{tracing.EnvEndpoint: r.Endpoint(), tracing.EnvProtocol: "grpc"}
			},
		},
		{
			name: "signal-specific settings win", protocol: otlpreceiver.ProtocolHTTP, wantService: "svc",
			env: func(r *otlpreceiver.Receiver) map[string]string {
				return map[string]string{
					tracing.EnvTracesEndpoint: r.Endpoint() + "/custom/v1/traces",
					tracing.EnvProtocol:       "grpc", tracing.EnvTracesProtocol: "http/protobuf",
				}
			},
		},
		{
			name: "OTEL_SERVICE_NAME overrides the default", protocol: otlpreceiver.ProtocolHTTP, wantService: "renamed",
			wantResource: "deployment.environment.name=test",
			env: func(r *otlpreceiver.Receiver) map[string]string {
				return map[string]string{
					tracing.EnvEndpoint: r.Endpoint(), "OTEL_SERVICE_NAME": "renamed",
					"OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment.name=test",
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearOTelEnv(t)
			receiver := startReceiver(t, tc.protocol)
			for name, value := range tc.env(receiver) {
				t.Setenv(name, value)
			}

			shutdown, err := tracing.Setup(context.Background(), "svc")
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); !ok {
				t.Fatalf("global TracerProvider is %T, want the SDK's", otel.GetTracerProvider())
			}
			ctx, parent := tracing.Tracer().Start(context.Background(), "parent")
			_, child := tracing.Tracer().Start(ctx, "child", trace.WithAttributes(attribute.Int64("bytes", 42)))
			child.End()
			parent.End()
			// Spans are batched: only the shutdown's flush makes them leave now.
			flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := shutdown(flushCtx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}

			spans := receiver.Spans()
			if len(spans) != 2 {
				t.Fatalf("received %d spans, want 2: %+v", len(spans), spans)
			}
			p, err1 := otlpreceiver.Find(spans, "parent")
			c, err2 := otlpreceiver.Find(spans, "child")
			if err1 != nil || err2 != nil {
				t.Fatalf("received %+v: %v, %v", spans, err1, err2)
			}
			if c.TraceID != p.TraceID || c.ParentSpanID != p.SpanID || p.ParentSpanID != "" {
				t.Errorf("child %s/%s (parent %s) is not under root %s/%s (parent %q)",
					c.TraceID, c.SpanID, c.ParentSpanID, p.TraceID, p.SpanID, p.ParentSpanID)
			}
			if got := c.Attributes["bytes"]; got != int64(42) {
				t.Errorf("child attribute bytes = %v (%T), want 42", got, got)
			}
			for _, s := range spans {
				if s.Service != tc.wantService {
					t.Errorf("span %s has service.name %q, want %q", s.Name, s.Service, tc.wantService)
				}
				if v, _ := s.Resource["service.version"].(string); v == "" {
					t.Errorf("span %s has no service.version: resource %v", s.Name, s.Resource)
				}
				if want := tc.wantResource; want != "" {
					k, v, _ := strings.Cut(want, "=")
					if s.Resource[k] != v {
						t.Errorf("span %s: resource %s = %v, want %s (from OTEL_RESOURCE_ATTRIBUTES)", s.Name, k, s.Resource[k], v)
					}
				}
			}
		})
	}
}

func TestSetupRejectsAnUnsupportedProtocol(t *testing.T) {
	clearOTelEnv(t)
	t.Setenv(tracing.EnvEndpoint, "http://127.0.0.1:1")
	t.Setenv(tracing.EnvProtocol, "http/json")
	before := otel.GetTracerProvider()

	shutdown, err := tracing.Setup(context.Background(), "svc")

	if err == nil || !strings.Contains(err.Error(), `"http/json"`) {
		t.Errorf("Setup error = %v, want one naming http/json", err)
	}
	if shutdown == nil || shutdown(context.Background()) != nil {
		t.Error("shutdown after a failed Setup must be a harmless no-op")
	}
	if otel.GetTracerProvider() != before {
		t.Error("a failed Setup replaced the global TracerProvider")
	}
}
