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

package tracing

import (
	"context"
	"os"

	"go.opentelemetry.io/otel/propagation"
)

// Environment variables that carry a trace into a child process, named as in OpenTelemetry's
// environment-variable carrier specification. The controller sets them on the worker's Pod.
const (
	EnvTraceparent = "TRACEPARENT"
	EnvTracestate  = "TRACESTATE"
)

// The propagator is used directly rather than through otel.GetTextMapPropagator, so that these
// helpers work whether or not Setup ran: the trace a Download carries must not depend on it.
var traceContext = propagation.TraceContext{}

// ContextFromTraceparent returns ctx carrying the remote span that traceparent names, so that
// spans started from it join that trace. An empty or malformed traceparent leaves ctx as it is:
// a Download from an older facade, or an annotation edited by hand, just starts a new trace.
func ContextFromTraceparent(ctx context.Context, traceparent string) context.Context {
	return ContextFromHeaders(ctx, traceparent, "")
}

// ContextFromHeaders is ContextFromTraceparent with a tracestate too, the vendor-specific part
// of W3C trace context that some backends need to keep their sampling decisions.
func ContextFromHeaders(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	carrier := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		carrier["tracestate"] = tracestate
	}
	return traceContext.Extract(ctx, carrier)
}

// Traceparent is the W3C traceparent of the span in ctx, or "" when ctx carries none (or only
// an invalid one). It works with export off too: then it is the incoming traceparent, if any.
func Traceparent(ctx context.Context) string {
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	return carrier["traceparent"]
}

// Tracestate is the W3C tracestate of the span in ctx, or "".
func Tracestate(ctx context.Context) string {
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	return carrier["tracestate"]
}

// ContextFromEnv is ContextFromHeaders with TRACEPARENT and TRACESTATE from the environment:
// how the worker continues the trace of the Download its Job was created for.
func ContextFromEnv(ctx context.Context) context.Context {
	return ContextFromHeaders(ctx, os.Getenv(EnvTraceparent), os.Getenv(EnvTracestate))
}
