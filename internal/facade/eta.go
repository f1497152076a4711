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
	"slices"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// etaRefresh is how long an estimate is reused: it moves slowly, and each one walks the cache.
const etaRefresh = 5 * time.Second

// minETA is the smallest etaSeconds ever answered.
const minETA = time.Second

// etaEstimator learns how long Downloads take from the recent completions in the cache. The
// median ignores the odd huge or failing-then-retried Download that would drag a mean along.
type etaEstimator struct {
	fallback time.Duration
	history  int

	mu    sync.Mutex
	at    time.Time
	value time.Duration
}

func newETAEstimator(fallback time.Duration, history int) *etaEstimator {
	return &etaEstimator{fallback: fallback, history: history}
}

func (e *etaEstimator) estimate(ctx context.Context, reader client.Reader, namespace string) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.at.IsZero() && time.Since(e.at) < etaRefresh {
		return e.value
	}
	var list downloadv1alpha1.DownloadList
	if err := reader.List(ctx, &list, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return e.fallback
	}
	e.value, e.at = medianCompletion(list.Items, e.history, e.fallback), time.Now()

	return e.value
}

// medianCompletion is the median of (completionTime - creationTimestamp) over the latest n
// completed Downloads (at least minETA), or fallback when none completed.
func medianCompletion(downloads []downloadv1alpha1.Download, n int, fallback time.Duration) time.Duration {
	type sample struct {
		done time.Time
		took time.Duration
	}
	var samples []sample
	for i := range downloads {
		d := &downloads[i]
		if d.Status.Phase != downloadv1alpha1.PhaseCompleted || d.Status.CompletionTime == nil {
			continue
		}
		// Both times have whole seconds, so a quick archive may take "0 s"; it still counts.
		if took := d.Status.CompletionTime.Sub(d.CreationTimestamp.Time); took >= 0 {
			samples = append(samples, sample{done: d.Status.CompletionTime.Time, took: took})
		}
	}
	if len(samples) == 0 {
		return fallback
	}
	slices.SortFunc(samples, func(a, b sample) int { return b.done.Compare(a.done) })
	samples = samples[:min(n, len(samples))]
	took := make([]time.Duration, len(samples))
	for i, s := range samples {
		took[i] = s.took
	}
	slices.Sort(took)
	mid := len(took) / 2
	median := took[mid]
	if len(took)%2 == 0 {
		median = (took[mid-1] + took[mid]) / 2
	}
	// "Ready in 0 s" would invite an immediate poll storm; a second is the least we promise.
	return max(median, minETA)
}
