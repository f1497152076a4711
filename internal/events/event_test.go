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
	"slices"
	"testing"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

func TestTransitions(t *testing.T) {
	status := func(phase downloadv1alpha1.DownloadPhase, job string) *downloadv1alpha1.Download {
		return &downloadv1alpha1.Download{Status: downloadv1alpha1.DownloadStatus{Phase: phase, JobName: job}}
	}
	const (
		pending    = downloadv1alpha1.PhasePending
		processing = downloadv1alpha1.PhaseProcessing
		completed  = downloadv1alpha1.PhaseCompleted
		failed     = downloadv1alpha1.PhaseFailed
	)
	for name, c := range map[string]struct {
		before, after *downloadv1alpha1.Download
		want          []string
	}{
		"the Job is created":                 {status("", ""), status(pending, "j"), []string{TypeStarted}},
		"the worker runs":                    {status(pending, "j"), status(processing, "j"), nil},
		"progress":                           {status(processing, "j"), status(processing, "j"), nil},
		"the archive is ready":               {status(processing, "j"), status(completed, "j"), []string{TypeCompleted}},
		"the Job fails":                      {status(processing, "j"), status(failed, "j"), []string{TypeFailed}},
		"Job and completion in one write":    {status("", ""), status(completed, "j"), []string{TypeStarted, TypeCompleted}},
		"a stored archive is reused, no Job": {status("", ""), status(completed, ""), []string{TypeCompleted}},
		"a namespace not served":             {status("", ""), status(failed, ""), []string{TypeFailed}},
		"a URL refresh of a finished one":    {status(completed, "j"), status(completed, "j"), nil},
		"a follower whose leader went away":  {status(pending, "leader-job"), status(pending, ""), nil},
	} {
		t.Run(name, func(t *testing.T) {
			if got := Transitions(c.before, c.after); !slices.Equal(got, c.want) {
				t.Errorf("Transitions = %v, want %v", got, c.want)
			}
		})
	}
}

func TestStatusOfAProcessingDownload(t *testing.T) {
	d := &downloadv1alpha1.Download{Status: downloadv1alpha1.DownloadStatus{
		Phase: downloadv1alpha1.PhaseProcessing, Progress: 40, BytesDone: 400, BytesTotal: 1000, Attempts: 2,
	}}
	d.Name = "job"
	s := statusOf(d)
	if s.Status != "processing" || *s.Progress != 40 || *s.BytesDone != 400 || *s.BytesTotal != 1000 || *s.Attempts != 2 || s.Error != nil || s.Size != nil {
		t.Errorf("statusOf = %+v", s)
	}
	if s := statusOf(&downloadv1alpha1.Download{}); s.Status != "pending" || s.Progress != nil {
		t.Errorf("statusOf(new) = %+v", s)
	}
}
