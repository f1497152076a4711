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

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
)

// kstatusOf computes a Download's health the way Helm's --wait, Flux and Argo CD do: from the
// unstructured object, as a generic custom resource.
func kstatusOf(download *downloadv1alpha1.Download) (*status.Result, error) {
	object, err := runtime.DefaultUnstructuredConverter.ToUnstructured(download)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: object}
	// A typed object read through a client has no apiVersion and kind; tools read them from the API.
	u.SetGroupVersionKind(downloadv1alpha1.GroupVersion.WithKind("Download"))
	return status.Compute(u)
}

// TestKstatusFollowsTheDownload walks one Download through the conditions the controller sets
// on the way to each outcome and checks what kstatus makes of each step.
func TestKstatusFollowsTheDownload(t *testing.T) {
	type step struct {
		name      string
		outcome   outcome
		reason    string
		want      status.Status
		wantReady metav1.ConditionStatus
	}
	inFlight := []step{
		{"pending", outcomeInFlight, downloadv1alpha1.ReasonJobCreated, status.InProgressStatus, metav1.ConditionFalse},
		{"processing", outcomeInFlight, downloadv1alpha1.ReasonArchiving, status.InProgressStatus, metav1.ConditionFalse},
		{"retrying", outcomeInFlight, downloadv1alpha1.ReasonRetrying, status.InProgressStatus, metav1.ConditionFalse},
	}
	for _, path := range [][]step{
		append(inFlight[:3:3], step{"completed", outcomeCompleted, downloadv1alpha1.ReasonArchiveReady, status.CurrentStatus, metav1.ConditionTrue}),
		append(inFlight[:2:2], step{"completed from a reused archive", outcomeCompleted, downloadv1alpha1.ReasonArchiveReused, status.CurrentStatus, metav1.ConditionTrue}),
		append(inFlight[:3:3], step{"failed", outcomeFailed, downloadv1alpha1.ReasonStorageError, status.FailedStatus, metav1.ConditionFalse}),
		{{"failed before any Job", outcomeFailed, downloadv1alpha1.ReasonNamespaceNotServed, status.FailedStatus, metav1.ConditionFalse}},
	} {
		download := &downloadv1alpha1.Download{ObjectMeta: metav1.ObjectMeta{
			Name: "kstatus", Namespace: "default", Generation: 1, CreationTimestamp: metav1.NewTime(time.Now())}}
		download.Status.ObservedGeneration = 1
		for _, s := range path {
			message := s.name + " because of " + s.reason
			setConditions(download, s.outcome, s.reason, message)

			result, err := kstatusOf(download)
			if err != nil {
				t.Fatalf("%s: computing kstatus: %v", s.name, err)
			}
			if result.Status != s.want {
				t.Errorf("%s: kstatus is %s (%q), want %s", s.name, result.Status, result.Message, s.want)
			}
			if s.want != status.CurrentStatus && result.Message != message {
				t.Errorf("%s: kstatus says %q, want the condition's message %q", s.name, result.Message, message)
			}
			if s.want == status.FailedStatus && (len(result.Conditions) != 1 || result.Conditions[0].Reason != s.reason) {
				t.Errorf("%s: kstatus reports %+v, want Stalled with reason %s", s.name, result.Conditions, s.reason)
			}

			conditions := download.Status.Conditions
			if c := meta.FindStatusCondition(conditions, downloadv1alpha1.ConditionReady); c == nil || c.Status != s.wantReady {
				t.Errorf("%s: Ready is %+v, want %s", s.name, c, s.wantReady)
			}
			// Complete, Failed and Progressing keep meaning what they meant for kubectl wait and
			// the facade.
			if got := meta.IsStatusConditionTrue(conditions, downloadv1alpha1.ConditionComplete); got != (s.outcome == outcomeCompleted) {
				t.Errorf("%s: Complete is %v", s.name, got)
			}
			if got := meta.IsStatusConditionTrue(conditions, downloadv1alpha1.ConditionFailed); got != (s.outcome == outcomeFailed) {
				t.Errorf("%s: Failed is %v", s.name, got)
			}
			if got := meta.IsStatusConditionTrue(conditions, downloadv1alpha1.ConditionProgressing); got != (s.outcome == outcomeInFlight) {
				t.Errorf("%s: Progressing is %v", s.name, got)
			}
			for _, c := range conditions {
				if c.Reason != s.reason || c.ObservedGeneration != download.Generation {
					t.Errorf("%s: condition %s has reason %s and observedGeneration %d, want %s and %d",
						s.name, c.Type, c.Reason, c.ObservedGeneration, s.reason, download.Generation)
				}
			}
		}
	}
}

var _ = Describe("kstatus", func() {
	It("reads a Download from the apiserver as InProgress until it completes, then Current; a failed one as Failed", func() {
		expectKstatus := func(download *downloadv1alpha1.Download, want status.Status) {
			GinkgoHelper()
			result, err := kstatusOf(download)
			Expect(err).NotTo(HaveOccurred())
			Expect(result.Status).To(Equal(want), result.Message)
			for _, c := range download.Status.Conditions {
				Expect(c.ObservedGeneration).To(Equal(download.Generation), "condition %s", c.Type)
			}
		}

		download := newDownload(servedNamespace, 70000)
		createDownload(download)
		job := waitForJob(download)
		expectKstatus(eventuallyPhase(download, downloadv1alpha1.PhasePending), status.InProgressStatus)

		startJob(job, time.Second)
		annotateJob(job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: 1, BytesTotal: 2})
		expectKstatus(eventuallyPhase(download, downloadv1alpha1.PhaseProcessing), status.InProgressStatus)

		succeedJob(job, storeArchive(download, []byte("the archive")))
		done := eventuallyPhase(download, downloadv1alpha1.PhaseCompleted)
		expectKstatus(done, status.CurrentStatus)
		Expect(meta.IsStatusConditionTrue(done.Status.Conditions, downloadv1alpha1.ConditionReady)).To(BeTrue())
		Expect(meta.IsStatusConditionFalse(done.Status.Conditions, downloadv1alpha1.ConditionReconciling)).To(BeTrue())

		gone := failDownload(newDownload(servedNamespace, 70000),
			&jobreport.Failure{Reason: downloadv1alpha1.ReasonSourceNotFound, Message: "file 70000 does not exist"},
			batchv1.JobReasonPodFailurePolicy, 1)
		expectKstatus(gone, status.FailedStatus)
		Expect(meta.FindStatusCondition(gone.Status.Conditions, downloadv1alpha1.ConditionStalled)).To(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", downloadv1alpha1.ReasonSourceNotFound)))
	})
})
