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
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// Labels are bounded sets (phases, reasons); a Download's name never becomes a label.
var (
	completionSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "download_operator_download_completion_seconds",
		Help: "Time from a Download's creation to its archive being ready.",
		// The default activeDeadlineSeconds is 600, but a Download may raise it; the buckets past
		// it keep such slow Downloads out of +Inf, where no quantile can be read.
		Buckets: []float64{1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600},
	})
	archivedBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "download_operator_archived_bytes_total",
		Help: "Bytes of completed archives.",
	})
	failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "download_operator_download_failures_total",
		Help: "Downloads that ended Failed, by reason.",
	}, []string{"reason"})
)

// failureReasons are the reasons a Download can end Failed with. They are exported at zero from
// the start, so that rate() sees a failure's first increment and dashboards show 0, not "no data".
var failureReasons = []string{
	downloadv1alpha1.ReasonSourceNotFound,
	downloadv1alpha1.ReasonStorageError,
	downloadv1alpha1.ReasonArchiveTooLarge,
	downloadv1alpha1.ReasonDeadlineExceeded,
	downloadv1alpha1.ReasonBackoffLimitExceeded,
	downloadv1alpha1.ReasonNamespaceNotServed,
	downloadv1alpha1.ReasonResultMissing,
	downloadv1alpha1.ReasonResultRejected,
}

// otherReason labels a failure whose reason is none of failureReasons. The reason can come from
// the worker's report on its Job, which anyone allowed to annotate the Job can write, so passing
// it through would let the label's values grow without bound.
const otherReason = "Other"

func init() {
	metrics.Registry.MustRegister(completionSeconds, archivedBytes, failures)
	for _, reason := range append(slices.Clone(failureReasons), otherReason) {
		failures.WithLabelValues(reason)
	}
}

func observeCompleted(download *downloadv1alpha1.Download, took time.Duration) {
	completionSeconds.Observe(took.Seconds())
	archivedBytes.Add(float64(download.Status.Archive.Size))
}

func observeFailed(reason string) { failures.WithLabelValues(failureLabel(reason)).Inc() }

func failureLabel(reason string) string {
	if slices.Contains(failureReasons, reason) {
		return reason
	}
	return otherReason
}

// stateCollector reports gauges computed from the informer cache at scrape time, so they stay
// right across restarts and leader changes without bookkeeping on every transition.
type stateCollector struct {
	cache         client.Reader
	now           func() time.Time
	downloads     *prometheus.Desc
	oldestPending *prometheus.Desc
	activeJobs    *prometheus.Desc
}

// RegisterStateMetrics exports Downloads by phase, the age of the oldest pending one and active
// worker Jobs from cache.
func RegisterStateMetrics(cache client.Reader) error {
	return metrics.Registry.Register(newStateCollector(cache, time.Now))
}

func newStateCollector(cache client.Reader, now func() time.Time) *stateCollector {
	return &stateCollector{
		cache: cache,
		now:   now,
		downloads: prometheus.NewDesc("download_operator_downloads",
			"Downloads currently stored, by phase.", []string{"phase"}, nil),
		oldestPending: prometheus.NewDesc("download_operator_oldest_pending_download_age_seconds",
			"Seconds since the creation of the oldest Download still Pending (waiting for its worker Job, "+
				"its Pod or a queue); 0 when none is.", nil, nil),
		activeJobs: prometheus.NewDesc("download_operator_active_jobs",
			"Worker Jobs that have neither completed nor failed.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.downloads
	ch <- c.oldestPending
	ch <- c.activeJobs
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var downloads downloadv1alpha1.DownloadList
	if err := c.cache.List(ctx, &downloads); err != nil {
		logf.Log.Error(err, "listing Downloads for metrics")
		return
	}
	byPhase := map[downloadv1alpha1.DownloadPhase]int{
		downloadv1alpha1.PhasePending: 0, downloadv1alpha1.PhaseProcessing: 0,
		downloadv1alpha1.PhaseCompleted: 0, downloadv1alpha1.PhaseFailed: 0,
	}
	// The oldest pending Download's age, rather than a count, is what tells one Download starved
	// in a queue apart from a steady flow: the count stays above zero under load either way.
	var oldestPending time.Time
	for i := range downloads.Items {
		phase := downloads.Items[i].Status.Phase
		if phase == "" {
			phase = downloadv1alpha1.PhasePending
		}
		byPhase[phase]++
		created := downloads.Items[i].CreationTimestamp.Time
		if phase == downloadv1alpha1.PhasePending && (oldestPending.IsZero() || created.Before(oldestPending)) {
			oldestPending = created
		}
	}
	for phase, n := range byPhase {
		ch <- prometheus.MustNewConstMetric(c.downloads, prometheus.GaugeValue, float64(n), string(phase))
	}
	age := 0.0
	if !oldestPending.IsZero() {
		// The apiserver stamps creation with its own clock; a controller clock behind it must not
		// report a negative age.
		age = max(c.now().Sub(oldestPending).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.oldestPending, prometheus.GaugeValue, age)

	var jobs batchv1.JobList
	if err := c.cache.List(ctx, &jobs, client.MatchingLabels{ComponentLabel: WorkerComponent}); err != nil {
		logf.Log.Error(err, "listing worker Jobs for metrics")
		return
	}
	active := 0
	for i := range jobs.Items {
		if !jobCondition(&jobs.Items[i], batchv1.JobComplete) && !jobCondition(&jobs.Items[i], batchv1.JobFailed) {
			active++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.activeJobs, prometheus.GaugeValue, float64(active))
}
