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

package facade

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/download-operator/download-operator/internal/tracing"
)

// requestInfo travels in the request context from the outermost middleware inwards.
type requestInfo struct {
	// route is the matched route's pattern, or "" when no route matches (404, 405).
	route     route
	requestID string
	client    string
}

type requestInfoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// buildHandler assembles, from the outside in: request identity and headers every response
// carries, metrics, panic recovery, rate limiting, CORS preflight, then the router.
func (f *Facade) buildHandler() http.Handler {
	m := &muxes{all: http.NewServeMux(), api: http.NewServeMux(), byPattern: map[string]route{}}
	for _, rt := range f.apiRoutes() {
		m.api.HandleFunc(rt.muxPattern(), rt.handler)
		m.all.HandleFunc(rt.muxPattern(), rt.handler)
		m.byPattern[rt.muxPattern()] = rt
	}
	if ui, ok := f.uiRoute(); ok {
		m.all.HandleFunc(ui.pattern(), ui.handler)
		m.ui = &ui
	}
	var h http.Handler = f.router(m)
	h = f.preflight(h)
	h = f.rateLimit(h)
	h = f.recoverPanics(h)
	h = f.observe(h)
	return f.identify(m, h)
}

// muxes route the API port. api holds the API's routes alone and decides every path under /v1/
// (and /health, /openapi.json), so that the demo page's catch-all GET / can never answer for
// the API: GET /v1/download/initiate is a 405 with Allow, not the file server's 404. all adds the
// demo page, for every other path.
type muxes struct {
	all, api *http.ServeMux
	// byPattern maps the patterns the muxes registered (route.muxPattern) to their routes.
	byPattern map[string]route
	// ui is the demo page's route, or nil without --ui-dir.
	ui *route
}

// match is the route a request goes to, or the zero route when none does (404, 405).
func (m *muxes) match(r *http.Request) route {
	// Unclean paths (dot segments, double slashes) are not redirected as ServeMux would: an API
	// client that sends one has a bug, and a 404 says so.
	if !isClean(r.URL.Path) {
		return route{}
	}
	if _, pattern := m.api.Handler(r); pattern != "" {
		return m.byPattern[pattern]
	}
	if m.ui != nil && !isAPIPath(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return *m.ui
	}
	return route{}
}

// fallback is the mux whose 404 or 405 an unmatched request gets.
func (m *muxes) fallback(r *http.Request) *http.ServeMux {
	if m.ui != nil && !isAPIPath(r.URL.Path) {
		return m.all
	}
	return m.api
}

// isAPIPath reports whether p belongs to the versioned API, which only JSON ever answers.
func isAPIPath(p string) bool { return p == "/v1" || strings.HasPrefix(p, "/v1/") }

// identify resolves the route once (so that metrics and limits know it before the router runs),
// assigns the request id and sets the headers every response must carry.
func (f *Facade) identify(m *muxes, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The canonical key spares Get from canonicalising it, which allocates, on every request.
		info := &requestInfo{requestID: requestID(r.Header.Get(headerRequestID)), client: f.clientID(r)}
		// Only registered patterns become labels: a redirect's target path is client-controlled.
		info.route = m.match(r)
		h := w.Header()
		h[headerRequestID] = []string{info.requestID}
		h[headerContentTypeOpts] = valueNoSniff
		h[headerFrameOptions] = valueDeny
		h[headerTransportSec] = valueHSTS
		h[headerReferrerPolicy] = valueNoReferrer
		f.corsHeaders(h, r.Header.Get("Origin"))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))
	})
}

// isClean reports whether p has no dot segments or repeated slashes; a trailing slash is fine.
func isClean(p string) bool {
	cleaned := path.Clean(p)
	if strings.HasSuffix(p, "/") && cleaned != "/" {
		cleaned += "/"
	}
	return cleaned == p
}

// requestID keeps a caller's id when it is safe to echo into headers and logs, else makes one.
func requestID(given string) string {
	if given != "" && len(given) <= 128 && !strings.ContainsFunc(given, func(r rune) bool { return r < '!' || r > '~' }) {
		return given
	}
	return uuid.NewString()
}

// corsHeaders lets browsers on allowed origins read responses. With "*" the header is sent even
// without an Origin, as the service this replaces did and its clients check.
func (f *Facade) corsHeaders(h http.Header, origin string) {
	switch {
	case f.anyOrigin:
		h[headerAllowOrigin] = valueAnyOrigin
	case origin != "" && slices.Contains(f.cfg.CORSOrigins, origin):
		h[headerAllowOrigin] = []string{origin}
		h.Add("Vary", "Origin")
	default:
		return
	}
	h[headerExposeHeaders] = valueExposeHeaders
}

// preflight answers CORS preflight requests; other OPTIONS requests reach the router and get 405.
func (f *Facade) preflight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions || r.Header.Get("Origin") == "" || r.Header.Get("Access-Control-Request-Method") == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		if h.Get("Access-Control-Allow-Origin") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Idempotency-Key, Last-Event-ID, X-Request-ID, traceparent, tracestate")
			h.Set("Access-Control-Max-Age", "600")
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// router dispatches matched requests to the mux and turns its plain-text 404 and 405 into JSON.
func (f *Facade) router(m *muxes) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if infoFrom(r.Context()).route.path != "" {
			m.all.ServeHTTP(w, r)
			return
		}
		unmatched(w, r, m.fallback(r))
	})
}

// unmatched answers a request no route takes: 405 with Allow when the path exists for other
// methods, else 404, both in the JSON error shape.
func unmatched(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	fallback, _ := mux.Handler(r)
	probe := &headerProbe{header: http.Header{}}
	fallback.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "this method is not allowed here; see the Allow header")
		return
	}
	writeError(w, http.StatusNotFound, CodeNotFound, msgNoEndpoint)
}

// buildProbeHandler routes the probe port: no rate limit, no CORS, no request metrics (scrapes
// and probes would drown the clients' figures), and JSON for anything else.
func (f *Facade) buildProbeHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range f.probeRoutes() {
		mux.HandleFunc(rt.pattern(), rt.handler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" && isClean(r.URL.Path) {
			mux.ServeHTTP(w, r)
			return
		}
		unmatched(w, r, mux)
	})
}

// headerProbe records what the mux's fallback handler would answer, without sending it.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(status int)      { p.status = status }

// recoverPanics turns a handler panic into a JSON 500. There should be none; the fuzz tests try.
func (f *Facade) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			f.log.ErrorContext(r.Context(), "handler panicked", "panic", v, "requestID", infoFrom(r.Context()).requestID, "path", r.URL.Path)
			if rec, ok := w.(*statusRecorder); ok && rec.status != 0 {
				return // the answer has begun; all we can do is end it
			}
			writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

// observe records metrics and an access log line per request.
func (f *Facade) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		info := infoFrom(r.Context())
		span := f.startRequestSpan(r, info.route)
		if span != nil {
			r = r.WithContext(trace.ContextWithSpan(r.Context(), span))
		}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		if span != nil {
			endRequestSpan(span, rec.status)
		}
		took := time.Since(start)
		f.metrics.observe(info.route, rec.status, took)
		// Checked first: the arguments alone would cost every request allocations.
		if f.log.Enabled(r.Context(), slog.LevelDebug) {
			f.log.DebugContext(r.Context(), "request", "method", r.Method, "route", info.route.path, "status", rec.status,
				"duration", took, "requestID", info.requestID)
		}
	})
}

// startRequestSpan starts the request's server span, a child of the caller's traceparent, or
// returns nil when tracing is off and the caller sent none: polls are the hot path, and a span
// that nobody records or passes on is pure cost there.
func (f *Facade) startRequestSpan(r *http.Request, rt route) trace.Span {
	traceparent := r.Header.Get(headerTraceparent)
	if !f.cfg.Tracing && traceparent == "" {
		return nil
	}
	ctx := tracing.ContextFromHeaders(r.Context(), traceparent, r.Header.Get(headerTracestate))
	name := r.Method + " " + rt.path
	if rt.path == "" {
		name = r.Method + " " + unmatchedRoute
	}
	_, span := tracing.Tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("http.route", rt.path),
		attribute.String("url.path", r.URL.Path),
	))
	return span
}

// endRequestSpan records the answer; only 5xx marks the span failed, since a 4xx is the
// client's mistake, answered as designed.
func endRequestSpan(span trace.Span, status int) {
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// statusRecorder remembers the status code. Unwrap lets http.ResponseController reach the
// connection's Flush and deadlines, which SSE needs.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
