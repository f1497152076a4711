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
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics live in the facade's own registry: a process-global one would collide when tests run
// several facades, and would mix in controller-runtime's metrics, which mean nothing here.
type metrics struct {
	registry   *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	sseClients prometheus.Gauge
	// refusedConns and refusedStreams count what the per-client caps turned away.
	refusedConns, refusedStreams prometheus.Counter
	handler                      http.Handler
}

// unmatchedRoute labels requests no route matched, so arbitrary paths never become labels.
const unmatchedRoute = "unmatched"

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "download_facade_http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "download_facade_http_request_duration_seconds",
			Help: "Time to answer, by route template; for SSE routes, the stream's lifetime.",
			// Polls should take well under a millisecond; initiates a few milliseconds.
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60, 300},
		}, []string{"route", "method"}),
		sseClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "download_facade_sse_clients",
			Help: "Server-Sent Events streams currently open.",
		}),
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "download_facade_refused_total",
		Help: "Connections and SSE streams refused because their client held its maximum already.",
	}, []string{"limit"})
	m.refusedConns, m.refusedStreams = refused.WithLabelValues("connections"), refused.WithLabelValues("streams")
	m.registry.MustRegister(m.requests, m.latency, m.sseClients, refused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
	return m
}

func (m *metrics) observe(rt route, status int, took time.Duration) {
	path, method := rt.path, rt.method
	if path == "" {
		path, method = unmatchedRoute, unmatchedRoute
	}
	m.requests.WithLabelValues(path, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(path, method).Observe(took.Seconds())
}

func (m *metrics) serve(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }
