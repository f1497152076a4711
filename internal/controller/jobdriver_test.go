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
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/test/jobsim"
)

// These helpers adapt test/jobsim, which stands in for the parts of a cluster envtest lacks (the
// worker's annotations, the Job controller's status updates), to the suite's Gomega style.

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

// jobs drives Jobs as the Job controller and the worker would (test/jobsim), on the fake clock.
func jobs() jobsim.Driver { return jobsim.Driver{Client: k8sClient, Now: fakeClock.Now} }

// updateJobStatus re-reads the Job and applies mutate to its status, as the Job controller does.
func updateJobStatus(job *batchv1.Job, mutate func(*batchv1.JobStatus)) {
	GinkgoHelper()
	Expect(jobs().UpdateStatus(ctx, job, mutate)).To(Succeed())
}

// annotateJob is what the worker does: a merge patch of one report annotation on its own Job.
func annotateJob(job *batchv1.Job, key string, report any) {
	GinkgoHelper()
	Expect(jobs().Report(ctx, job, key, report)).To(Succeed())
}

// startJob makes the worker Pod run: startTime set ago in the past, one active and ready Pod.
func startJob(job *batchv1.Job, ago time.Duration) {
	GinkgoHelper()
	Expect(jobs().Start(ctx, job, fakeClock.Now().Add(-ago))).To(Succeed())
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
	Expect(jobs().Complete(ctx, job)).To(Succeed())
}

// failJob optionally reports the worker's failure, then fails the Job in two steps.
func failJob(job *batchv1.Job, failure *jobreport.Failure, jobReason string, failedPods int32) {
	GinkgoHelper()
	Expect(jobs().Fail(ctx, job, failure, jobReason, failedPods)).To(Succeed())
}
