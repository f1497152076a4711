//go:build e2e

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

package e2e

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/cluster"
)

var _ = Describe("Faults", func() {
	It("cancels a Download mid-upload: Job, Pods, archive and multipart upload all go", func(ctx SpecContext) {
		dl := cluster.NewDownload("e2e-cancel", []int64{cluster.File64MiB, cluster.File128MiB}, cluster.SlowRate)
		cluster.CreateDownload(ctx, dl)

		By("waiting until its worker is uploading")
		cluster.WaitForUploadingWorker(ctx, dl.Name)
		key, err := cluster.ArchiveKeyOf(ctx, dl.Name)
		Expect(err).NotTo(HaveOccurred())
		// Seeing the upload first proves the emptiness checked after the delete means something.
		Eventually(ctx, func() ([]string, error) { return cluster.IncompleteUploads(ctx, key) }).
			ShouldNot(BeEmpty(), "the worker's multipart upload of %s", key)
		current, err := cluster.GetDownload(ctx, dl.Name)
		Expect(err).NotTo(HaveOccurred())
		Expect(current.Status.Phase).To(Equal(downloadv1alpha1.PhaseProcessing), "cancelled in flight, not after the fact")

		By("deleting the Download")
		Expect(cluster.K8s.Delete(ctx, dl)).To(Succeed())

		Eventually(ctx, func() error {
			return cluster.K8s.Get(ctx, client.ObjectKeyFromObject(dl), &downloadv1alpha1.Download{})
		}).Should(Satisfy(apierrors.IsNotFound), "the Download is released by its finalizer")
		Eventually(ctx, func() error {
			return cluster.K8s.Get(ctx, client.ObjectKeyFromObject(dl), &batchv1.Job{})
		}).Should(Satisfy(apierrors.IsNotFound), "the worker Job is gone")
		Eventually(ctx, func() ([]corev1.Pod, error) { return cluster.WorkerPods(ctx, dl.Name) }).
			Should(BeEmpty(), "no worker Pod is left")
		Eventually(ctx, func() (bool, error) { return cluster.ArchiveExists(ctx, key) }).
			Should(BeFalse(), "no archive object at %s", key)
		Eventually(ctx, func() ([]string, error) { return cluster.IncompleteUploads(ctx, key) }).
			Should(BeEmpty(), "no incomplete multipart upload of %s", key)
	}, SpecTimeout(8*time.Minute))

	It("retries a worker killed mid-upload and still delivers a verified archive", func(ctx SpecContext) {
		ids := []int64{cluster.File128MiB}
		dl := cluster.NewDownload("e2e-retry", ids, cluster.SlowRate)
		cluster.CreateDownload(ctx, dl)

		By("waiting until its worker is uploading")
		victim := cluster.WaitForUploadingWorker(ctx, dl.Name)
		key, err := cluster.ArchiveKeyOf(ctx, dl.Name)
		Expect(err).NotTo(HaveOccurred())
		var killedUploads []string
		Eventually(ctx, func() ([]string, error) {
			killedUploads, err = cluster.IncompleteUploads(ctx, key)
			return killedUploads, err
		}).ShouldNot(BeEmpty(), "the worker's multipart upload of %s", key)
		GinkgoWriter.Printf("uploads in flight before the kill: %v\n", killedUploads)

		By("SIGKILLing the worker container " + victim.Name)
		Expect(cluster.KillContainer(ctx, victim.Status.ContainerStatuses[0].ContainerID)).To(Succeed())
		Eventually(ctx, func(g Gomega) {
			var pod corev1.Pod
			g.Expect(cluster.K8s.Get(ctx, client.ObjectKeyFromObject(&victim), &pod)).To(Succeed())
			g.Expect(pod.Status.ContainerStatuses).NotTo(BeEmpty())
			terminated := pod.Status.ContainerStatuses[0].State.Terminated
			g.Expect(terminated).NotTo(BeNil(), "the killed container is not terminated yet")
			g.Expect(terminated.ExitCode).To(BeEquivalentTo(137), "the container died of SIGKILL")
		}).Should(Succeed())

		By("waiting for the Job to count the failure and retry")
		Eventually(ctx, func(g Gomega) {
			job, err := cluster.GetJob(ctx, dl.Name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(job.Status.Failed).To(BeNumerically(">=", 1))
		}).Should(Succeed())

		By("waiting for the Download to complete anyway")
		done := cluster.WaitForComplete(ctx, dl.Name, 4*time.Minute)
		Expect(done.Status.Attempts).To(BeNumerically(">=", 2), "status.attempts counts the retry")
		got, err := cluster.VerifyArchive(ctx, done.Status.DownloadURL, ids)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(cluster.Digest{Size: done.Status.Archive.Size, SHA256: done.Status.Archive.SHA256}))
		Expect(done.Status.Archive.Key).To(Equal(key))

		By("checking the killed attempt's multipart upload does not linger")
		// The killed worker could not abort its own upload, and the retry starts a new one; only
		// the worker, the controller or a bucket lifecycle rule can remove the old parts.
		Eventually(ctx, func() ([]string, error) { return cluster.IncompleteUploads(ctx, key) }).
			WithTimeout(2*time.Minute).Should(BeEmpty(),
			"multipart uploads of %s after completion (the killed attempt's were %v)", key, killedUploads)
	}, SpecTimeout(10*time.Minute))

	DescribeTable("fails fast, without retries, when a source file does not exist",
		func(ctx SpecContext, ids []int64) {
			dl := cluster.NewDownload("e2e-missing", ids, 0)
			start := time.Now()
			cluster.CreateDownload(ctx, dl)

			By("waiting for the Failed condition")
			var failed *metav1.Condition
			var current *downloadv1alpha1.Download
			Eventually(ctx, func(g Gomega) {
				var err error
				current, err = cluster.GetDownload(ctx, dl.Name)
				g.Expect(err).NotTo(HaveOccurred())
				if cluster.ConditionTrue(current, downloadv1alpha1.ConditionComplete) {
					StopTrying("the Download completed although a source is missing").Now()
				}
				failed = meta.FindStatusCondition(current.Status.Conditions, downloadv1alpha1.ConditionFailed)
				g.Expect(failed).NotTo(BeNil())
				g.Expect(failed.Status).To(Equal(metav1.ConditionTrue))
			}).WithTimeout(2 * time.Minute).Should(Succeed())
			took := time.Since(start)
			GinkgoWriter.Printf("failed after %s: %s: %s\n", took.Round(time.Millisecond), failed.Reason, failed.Message)

			// activeDeadlineSeconds defaults to 600 s; a permanent error must not wait for it.
			Expect(took).To(BeNumerically("<", 60*time.Second), "time from create to Failed")
			Expect(failed.LastTransitionTime.Sub(current.CreationTimestamp.Time)).To(BeNumerically("<", 60*time.Second))
			Expect(failed.Reason).To(Equal(downloadv1alpha1.ReasonSourceNotFound))
			Expect(failed.Message).To(ContainSubstring(fmt.Sprint(cluster.FileMissing)))
			for _, id := range ids {
				if id != cluster.FileMissing {
					Expect(failed.Message).NotTo(ContainSubstring(fmt.Sprint(id)), "the message names only missing files")
				}
			}
			Expect(current.Status.Phase).To(Equal(downloadv1alpha1.PhaseFailed))
			Expect(current.Status.DownloadURL).To(BeEmpty())

			By("checking the Job failed once, by podFailurePolicy, without retries")
			job, err := cluster.GetJob(ctx, dl.Name)
			Expect(err).NotTo(HaveOccurred())
			Expect(job.Status.Failed).To(BeEquivalentTo(1))
			Expect(jobFailedReason(job)).To(Equal(batchv1.JobReasonPodFailurePolicy))
			Consistently(ctx, func() ([]corev1.Pod, error) { return cluster.WorkerPods(ctx, dl.Name) }).
				Should(HaveLen(1), "a single worker Pod, never a retry")

			By("checking the Event recorded on the Download")
			Eventually(ctx, func() ([]string, error) { return eventReasons(ctx, dl) }).
				Should(ContainElement(downloadv1alpha1.ReasonSourceNotFound))
		},
		Entry("only a missing id", SpecTimeout(5*time.Minute), []int64{cluster.FileMissing}),
		Entry("a missing id after an existing one", SpecTimeout(5*time.Minute), []int64{cluster.File64MiB, cluster.FileMissing}),
	)
})

func jobFailedReason(job *batchv1.Job) string {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return c.Reason
		}
	}
	return ""
}

// eventReasons lists the reasons of the Events about dl, from events.k8s.io/v1 (which also
// serves Events recorded through the core v1 API).
func eventReasons(ctx context.Context, dl *downloadv1alpha1.Download) ([]string, error) {
	var events eventsv1.EventList
	if err := cluster.K8s.List(ctx, &events, client.InNamespace(dl.Namespace)); err != nil {
		return nil, fmt.Errorf("listing Events in %s: %w", dl.Namespace, err)
	}
	var reasons []string
	for _, e := range events.Items {
		if e.Regarding.Kind == "Download" && e.Regarding.Name == dl.Name && e.Regarding.UID == dl.UID {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons, nil
}
