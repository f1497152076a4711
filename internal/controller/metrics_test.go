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

	"github.com/prometheus/client_golang/prometheus"

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
