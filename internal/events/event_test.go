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
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

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

func TestDataOfAProcessingDownload(t *testing.T) {
	d := &downloadv1alpha1.Download{Status: downloadv1alpha1.DownloadStatus{
		Phase: downloadv1alpha1.PhaseProcessing, Progress: 40, BytesDone: 400, BytesTotal: 1000, Attempts: 2,
	}}
	d.Name, d.Namespace = "job", "shop"
	data := dataOf(d, "")
	s := data.Status
	if s.Status != "processing" || *s.Progress != 40 || *s.BytesDone != 400 || *s.BytesTotal != 1000 || *s.Attempts != 2 ||
		s.Error != nil || s.Size != nil || s.ArchiveURL != "" || s.ArchiveExpiresAt != "" {
		t.Errorf("dataOf(processing).Status = %+v", s)
	}
	if data.JobID != "job" || data.Namespace != "shop" || data.ArchiveURL != "/v1/download/job/archive" {
		t.Errorf("dataOf(processing) = %+v", data)
	}
	if s := dataOf(&downloadv1alpha1.Download{}, "").Status; s.Status != "pending" || s.Progress != nil {
		t.Errorf("dataOf(new).Status = %+v", s)
	}
}

// TestDataOfACompletedDownload: the presigned URL and its expiry stay out of events, which may be
// stored and forwarded; the stable link and when it stops working go in, the link absolute.
func TestDataOfACompletedDownload(t *testing.T) {
	done := metav1.NewTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	urlExpires := metav1.NewTime(done.Add(15 * time.Minute))
	d := &downloadv1alpha1.Download{
		ObjectMeta: metav1.ObjectMeta{Name: "job", Namespace: "shop"},
		Spec:       downloadv1alpha1.DownloadSpec{FileIDs: []int64{1}, TTLSecondsAfterFinished: ptr.To[int32](7200)},
		Status: downloadv1alpha1.DownloadStatus{
			Phase: downloadv1alpha1.PhaseCompleted, CompletionTime: &done,
			DownloadURL: "http://storage.internal/x.zip?X-Amz-Signature=s", URLExpiresAt: &urlExpires,
			Archive: &downloadv1alpha1.ArchiveStatus{Bucket: "b", Key: "k", Size: 10, SHA256: "ab"},
		},
	}
	data := dataOf(d, "https://downloads.example")
	s := data.Status
	if s.DownloadURL != "" || s.ExpiresAt != "" {
		t.Errorf("the event carries the presigned URL: %+v", s)
	}
	if want := "https://downloads.example/v1/download/job/archive"; s.ArchiveURL != want || data.ArchiveURL != want {
		t.Errorf("archiveUrl %q and status.archiveUrl %q, want both %q", data.ArchiveURL, s.ArchiveURL, want)
	}
	if s.Status != "completed" || s.ArchiveExpiresAt != "2026-03-01T14:00:00Z" || *s.Size != 10 || s.SHA256 != "ab" {
		t.Errorf("dataOf(completed).Status = %+v", s)
	}
}

// TestDataOfAFailedDownload: events carry the public text of the failure, never the condition's
// message.
func TestDataOfAFailedDownload(t *testing.T) {
	d := &downloadv1alpha1.Download{
		ObjectMeta: metav1.ObjectMeta{Name: "job"},
		Spec:       downloadv1alpha1.DownloadSpec{FileIDs: []int64{70000, 99999}},
		Status: downloadv1alpha1.DownloadStatus{Phase: downloadv1alpha1.PhaseFailed, Conditions: []metav1.Condition{{
			Type: downloadv1alpha1.ConditionFailed, Status: metav1.ConditionTrue, Reason: downloadv1alpha1.ReasonSourceNotFound,
			Message: `no source object in bucket "secret" for file ids 99999`,
		}}},
	}
	s := dataOf(d, "").Status
	if s.Status != "failed" || s.Error == nil || s.Error.Code != downloadv1alpha1.ReasonSourceNotFound ||
		s.Error.Message != "file 99999 does not exist" || s.ArchiveURL != "" {
		t.Errorf("dataOf(failed).Status = %+v (error %+v)", s, s.Error)
	}
}
