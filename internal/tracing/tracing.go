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

// Package tracing sets up OpenTelemetry for the operator's binaries and carries one trace per
// Download across them: the facade's request span is written as a W3C traceparent into an
// annotation on the Download (downloadv1alpha1.TraceparentAnnotation), the controller continues it
// and hands it to the worker in the TRACEPARENT environment variable of the Job's Pod.
//
// Export is configured only through the standard OTEL_* environment variables, so that the same
// image works with any collector, and is off unless an OTLP endpoint is set. Context propagation
// is on either way: with export off, spans are non-recording but keep the incoming trace and span
// ids, so a traceparent that arrives is still passed on and log lines still carry its trace_id.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every span the operator starts.
const ScopeName = "github.com/download-operator/download-operator"

// Service names, the default service.name of each binary's resource.
const (
	ServiceFacade     = "download-operator-facade"
	ServiceController = "download-operator-controller"
	ServiceWorker     = "download-operator-worker"
)

// The environment variables Setup reads itself; the exporters and the SDK read the rest
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _INSECURE, OTEL_TRACES_SAMPLER, OTEL_BSP_*…).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
)

// OTLP transports, as OTEL_EXPORTER_OTLP_PROTOCOL names them.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// Version is reported as service.version. Release builds may set it with
// -ldflags "-X github.com/download-operator/download-operator/internal/tracing.Version=v1.2.3";
// otherwise the module version from the build info is used.
var Version = ""

// Option adjusts Setup.
type Option func(*setupOptions)

type setupOptions struct {
	logger *slog.Logger
}

// WithLogger sends the SDK's own errors (an unreachable collector, a full queue) to log as
// warnings. Without it they go to the standard library's logger, outside the JSON log stream.
func WithLogger(log *slog.Logger) Option {
	return func(o *setupOptions) { o.logger = log }
}

// Enabled tells whether the environment asks for spans to be exported: an OTLP endpoint is set
// and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none turns it off.
func Enabled() bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvSDKDisabled)), "true") {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvTracesExporter)), "none") {
		return false
	}
	return os.Getenv(EnvEndpoint) != "" || os.Getenv(EnvTracesEndpoint) != ""
}

// Setup installs the W3C TraceContext propagator and, when Enabled, a global TracerProvider that
// batches spans to the OTLP endpoint. serviceName is service.name unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise.
//
// The returned shutdown flushes the spans still queued and must run before the process exits:
// a worker Pod ends right after its last span. It never returns nil. On error nothing was
// installed but the propagator, and callers should log and carry on: tracing must not stop a
// download.
func Setup(ctx context.Context, serviceName string, opts ...Option) (shutdown func(context.Context) error, err error) {
	var o setupOptions
	for _, opt := range opts {
		opt(&o)
	}
	noop := func(context.Context) error { return nil }
	// Installed even when export is off, so that an incoming traceparent is passed on unchanged
	// and logs can still be correlated with the caller's trace.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	if !Enabled() {
		return noop, nil
	}
	exporter, err := newExporter(ctx)
	if err != nil {
		return noop, err
	}
	res, err := newResource(ctx, serviceName)
	if err != nil {
		_ = exporter.Shutdown(ctx)
		return noop, err
	}
	if o.logger != nil {
		log := o.logger
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("opentelemetry", "error", err)
		}))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("flushing spans: %w", err)
		}
		return nil
	}, nil
}

// FlushTimeout bounds the export of the last spans at exit. It stays well inside a Pod's
// termination grace period, so that a process stopped by SIGTERM still exits on its own.
const FlushTimeout = 5 * time.Second

// Flush runs the shutdown Setup returned, with FlushTimeout from now. It does not inherit ctx's
// cancellation: ctx is typically cancelled by the very SIGTERM that makes the process stop.
func Flush(ctx context.Context, shutdown func(context.Context) error) error {
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FlushTimeout)
	defer cancel()
	return shutdown(flushCtx)
}

// protocol is the OTLP transport the environment asks for. The specification makes
// http/protobuf the default; http/json is not offered by the Go exporters.
func protocol() string {
	for _, name := range []string{EnvTracesProtocol, EnvProtocol} {
		if p := strings.TrimSpace(os.Getenv(name)); p != "" {
			return p
		}
	}
	return ProtocolHTTPProtobuf
}

// newExporter builds the exporter for protocol(). Both exporters read the endpoint, headers,
// timeout, compression and TLS settings from the environment themselves, following the
// specification's rules (such as appending /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT for HTTP).
// Neither connects yet.
func newExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	var (
		exporter sdktrace.SpanExporter
		err      error
	)
	switch p := protocol(); p {
	case ProtocolHTTPProtobuf:
		exporter, err = otlptracehttp.New(ctx)
	case ProtocolGRPC:
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTLP protocol %q is not supported: use %s or %s", p, ProtocolHTTPProtobuf, ProtocolGRPC)
	}
	if err != nil {
		return nil, fmt.Errorf("creating OTLP trace exporter: %w", err)
	}
	return exporter, nil
}

// newResource describes the process. The environment comes last so that OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override the defaults, as operators expect.
func newResource(ctx context.Context, serviceName string) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", serviceName),
			attribute.String("service.version", version()),
		),
		resource.WithFromEnv(),
	)
	if errors.Is(err, resource.ErrPartialResource) {
		// A malformed OTEL_RESOURCE_ATTRIBUTES entry: the rest of the resource is still right.
		otel.Handle(err)
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describing the tracing resource: %w", err)
	}
	return res, nil
}

func version() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "devel"
}

// Tracer is the tracer of the operator's spans. It asks the global provider on every call, so it
// follows whatever Setup (or a test) installed last.
func Tracer() trace.Tracer {
	return otel.Tracer(ScopeName)
}

// RecordError marks span failed with err, if err is not nil, and returns err, so that a function
// can end with `return tracing.RecordError(span, err)`.
func RecordError(span trace.Span, err error) error {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}
