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
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// The reason label takes only the API's failure reasons and Other, and all of them are there
// before the first failure: test/dashboard proves the same against the running binary.
func TestFailureReasonLabelIsBounded(t *testing.T) {
	for reason, want := range map[string]string{
		downloadv1alpha1.ReasonSourceNotFound:       downloadv1alpha1.ReasonSourceNotFound,
		downloadv1alpha1.ReasonBackoffLimitExceeded: downloadv1alpha1.ReasonBackoffLimitExceeded,
		"WorkerMadeThisUp":                          otherReason,
		"":                                          otherReason,
		// Not a failure reason: a Download never ends Failed with it.
		downloadv1alpha1.ReasonArchiveReady: otherReason,
	} {
		if got := failureLabel(reason); got != want {
			t.Errorf("failureLabel(%q) = %q, want %q", reason, got, want)
		}
	}
	series := make(chan prometheus.Metric, 100)
	failures.Collect(series)
	close(series)
	if n, want := len(series), len(failureReasons)+1; n < want {
		t.Errorf("%d failure series exported, want at least %d (every reason at zero)", n, want)
	}
}

// The oldest pending Download's age is read from the cache at scrape time: only Pending
// Downloads count (a Download the controller has not touched yet has no phase, and is pending
// too), it is 0 when none is pending, and never negative when the apiserver's clock runs ahead.
// The chart's DownloadOperatorOldestPendingDownload alert reads it.
func TestOldestPendingDownloadAge(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	download := func(name string, phase downloadv1alpha1.DownloadPhase, age time.Duration) client.Object {
		return &downloadv1alpha1.Download{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", CreationTimestamp: metav1.NewTime(now.Add(-age))},
			Status:     downloadv1alpha1.DownloadStatus{Phase: phase},
		}
	}
	for name, tc := range map[string]struct {
		downloads []client.Object
		want      float64
	}{
		"no Downloads": {want: 0},
		"none pending": {
			downloads: []client.Object{
				download("done", downloadv1alpha1.PhaseCompleted, 3*time.Hour),
				download("busy", downloadv1alpha1.PhaseProcessing, 2*time.Hour),
				download("broken", downloadv1alpha1.PhaseFailed, time.Hour),
			},
			want: 0,
		},
		"the oldest of the pending ones, phase unset included": {
			downloads: []client.Object{
				download("done", downloadv1alpha1.PhaseCompleted, 3*time.Hour),
				download("busy", downloadv1alpha1.PhaseProcessing, 2*time.Hour),
				download("queued", downloadv1alpha1.PhasePending, 10*time.Minute),
				download("untouched", "", 25*time.Minute),
				download("fresh", downloadv1alpha1.PhasePending, 5*time.Second),
			},
			want: (25 * time.Minute).Seconds(),
		},
		"created ahead of the controller's clock": {
			downloads: []client.Object{download("ahead", downloadv1alpha1.PhasePending, -3*time.Second)},
			want:      0,
		},
	} {
		t.Run(name, func(t *testing.T) {
			cache := fakeCache(t, append(tc.downloads, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "job", Namespace: "shop",
				Labels: map[string]string{ComponentLabel: WorkerComponent}}})...)
			// A pedantic registry also checks that Collect sends only what Describe declared.
			registry := prometheus.NewPedanticRegistry()
			registry.MustRegister(newStateCollector(cache, func() time.Time { return now }))
			families, err := registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var got []float64
			for _, family := range families {
				if family.GetName() == "download_operator_oldest_pending_download_age_seconds" {
					for _, m := range family.GetMetric() {
						got = append(got, m.GetGauge().GetValue())
					}
				}
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("download_operator_oldest_pending_download_age_seconds = %v, want [%g]", got, tc.want)
			}
		})
	}
}
