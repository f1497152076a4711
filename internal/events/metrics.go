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

package events

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Labels are bounded sets: the sinks of the file and the three event types.
var (
	delivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "download_operator_events_delivered_total",
		Help: "Events a sink accepted (2xx), by sink and type. Redeliveries of one event count again.",
	}, []string{"sink", "type"})
	failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "download_operator_events_failed_total",
		Help: "Events given up on, by sink and type: retries ran out, or the sink refused them for good (a 4xx).",
	}, []string{"sink", "type"})
	dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "download_operator_events_dropped_total",
		Help: "Events never queued because the sink's queue was full, by sink and type.",
	}, []string{"sink", "type"})
)

func init() {
	metrics.Registry.MustRegister(delivered, failed, dropped)
}

// exportAtZero makes every series of a sink exist from the start, so that rate() sees the first
// increment and dashboards show 0, not "no data".
func exportAtZero(sink string) {
	for _, t := range Types {
		delivered.WithLabelValues(sink, t)
		failed.WithLabelValues(sink, t)
		dropped.WithLabelValues(sink, t)
	}
}
