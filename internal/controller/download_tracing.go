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

package controller

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/tracing"
)

// Span names of the controller's steps. Reconcile itself gets no span: it runs at every progress
// report, and a trace of hundreds of reconciles that changed nothing would hide the few that did.
const (
	SpanCreateJob   = "controller.create_job"
	SpanWriteStatus = "controller.write_status"
	SpanSignURL     = "controller.sign_url"
)

// continueTrace returns ctx inside the trace the facade started for this Download (from its
// traceparent annotation), with the trace id on the reconcile's logger.
func continueTrace(ctx context.Context, download *downloadv1alpha1.Download) context.Context {
	ctx = tracing.ContextFromTraceparent(ctx, download.Annotations[downloadv1alpha1.TraceparentAnnotation])
	if values := tracing.LogValues(ctx); len(values) > 0 {
		ctx = logf.IntoContext(ctx, logf.FromContext(ctx).WithValues(values...))
	}
	return ctx
}

// startSpan starts one of the controller's step spans for download.
func startSpan(ctx context.Context, name string, download *downloadv1alpha1.Download) (context.Context, trace.Span) {
	return tracing.Tracer().Start(ctx, name, trace.WithAttributes(
		attribute.String("download.name", download.Name),
		attribute.String("download.namespace", download.Namespace),
	))
}

// traceEnv hands the span in ctx to the worker, whose spans then hang below the Job's creation.
func traceEnv(ctx context.Context) []corev1.EnvVar {
	var env []corev1.EnvVar
	if traceparent := tracing.Traceparent(ctx); traceparent != "" {
		env = append(env, corev1.EnvVar{Name: tracing.EnvTraceparent, Value: traceparent})
	}
	if tracestate := tracing.Tracestate(ctx); tracestate != "" {
		env = append(env, corev1.EnvVar{Name: tracing.EnvTracestate, Value: tracestate})
	}
	return env
}
