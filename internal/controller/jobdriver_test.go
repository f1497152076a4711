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
	"encoding/json"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
)

// These helpers stand in for the parts of a cluster envtest lacks: the worker's annotations and
// the Job controller's status updates, in the order the real Job controller makes them
// (startTime; SuccessCriteriaMet then Complete with completionTime; FailureTarget then Failed).
// The apiserver validates each transition as it would for the real controller.

// newDownload asks for a Job of its own: the specs that use it reuse file ids freely, and share
// nothing. The reuse specs build theirs with newSharedDownload.
func newDownload(namespace string, fileIDs ...int64) *downloadv1alpha1.Download {
	return &downloadv1alpha1.Download{
		ObjectMeta: metav1.ObjectMeta{Name: uuid.NewString(), Namespace: namespace},
		Spec:       downloadv1alpha1.DownloadSpec{FileIDs: fileIDs, ReusePolicy: downloadv1alpha1.ReuseNever},
	}
}

func createDownload(download *downloadv1alpha1.Download) {
	GinkgoHelper()
	Expect(k8sClient.Create(ctx, download)).To(Succeed())
}

func fetch(download *downloadv1alpha1.Download) *downloadv1alpha1.Download {
	GinkgoHelper()
	var current downloadv1alpha1.Download
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(download), &current)).To(Succeed())
	return &current
}

func eventuallyPhase(download *downloadv1alpha1.Download, phase downloadv1alpha1.DownloadPhase) *downloadv1alpha1.Download {
	GinkgoHelper()
	var current downloadv1alpha1.Download
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(download), &current)).To(Succeed())
		g.Expect(current.Status.Phase).To(Equal(phase))
	}).Should(Succeed())
	return &current
}

func waitForJob(download *downloadv1alpha1.Download) *batchv1.Job {
	GinkgoHelper()
	var job batchv1.Job
	Eventually(func() error {
		return k8sClient.Get(ctx, client.ObjectKey{Namespace: download.Namespace, Name: jobName(download)}, &job)
	}).Should(Succeed())
	return &job
}

func workerJobs(download *downloadv1alpha1.Download) []batchv1.Job {
	GinkgoHelper()
	var jobs batchv1.JobList
	Expect(k8sClient.List(ctx, &jobs, client.InNamespace(download.Namespace),
		client.MatchingLabels{DownloadNameLabel: download.Name})).To(Succeed())
	return jobs.Items
}

// updateJobStatus re-reads the Job and applies mutate to its status, as the Job controller does.
func updateJobStatus(job *batchv1.Job, mutate func(*batchv1.JobStatus)) {
	GinkgoHelper()
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
	mutate(&job.Status)
	Expect(k8sClient.Status().Update(ctx, job)).To(Succeed())
}

// annotateJob is what the worker does: a merge patch of one report annotation on its own Job.
func annotateJob(job *batchv1.Job, key string, report any) {
	GinkgoHelper()
	value, err := jobreport.Encode(report)
	Expect(err).NotTo(HaveOccurred())
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Patch(ctx, job, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
}

// startJob makes the worker Pod run: startTime set ago in the past, one active and ready Pod.
func startJob(job *batchv1.Job, ago time.Duration) {
	GinkgoHelper()
	updateJobStatus(job, func(s *batchv1.JobStatus) {
		s.StartTime = ptr.To(metav1.NewTime(fakeClock.Now().Add(-ago)))
		s.Active, s.Ready = 1, ptr.To[int32](1)
	})
}

func condition(t batchv1.JobConditionType, reason, message string) batchv1.JobCondition {
	now := metav1.NewTime(fakeClock.Now())
	return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message,
		LastProbeTime: now, LastTransitionTime: now}
}

// succeedJob reports the archive as the worker would, then completes the Job.
func succeedJob(job *batchv1.Job, result jobreport.Result) {
	GinkgoHelper()
	annotateJob(job, jobreport.ResultAnnotation, result)
	completeJob(job)
}

// completeJob is the Job controller's reaction to a worker Pod that exited 0, in its two steps.
func completeJob(job *batchv1.Job) {
	GinkgoHelper()
	updateJobStatus(job, func(s *batchv1.JobStatus) {
		s.Active, s.Ready, s.Succeeded = 0, ptr.To[int32](0), 1
		s.Conditions = append(s.Conditions, condition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"))
	})
	updateJobStatus(job, func(s *batchv1.JobStatus) {
		s.CompletionTime = ptr.To(metav1.NewTime(fakeClock.Now()))
		s.Conditions = append(s.Conditions, condition(batchv1.JobComplete, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"))
	})
}

// failJob optionally reports the worker's failure, then fails the Job in two steps.
func failJob(job *batchv1.Job, failure *jobreport.Failure, jobReason string, failedPods int32) {
	GinkgoHelper()
	if failure != nil {
		annotateJob(job, jobreport.FailureAnnotation, failure)
	}
	updateJobStatus(job, func(s *batchv1.JobStatus) {
		s.Active, s.Ready, s.Failed = 0, ptr.To[int32](0), failedPods
		s.Conditions = append(s.Conditions, condition(batchv1.JobFailureTarget, jobReason, "job failed: "+jobReason))
	})
	updateJobStatus(job, func(s *batchv1.JobStatus) {
		s.Conditions = append(s.Conditions, condition(batchv1.JobFailed, jobReason, "job failed: "+jobReason))
	})
}
