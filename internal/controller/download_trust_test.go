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

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
)

// A worker, or anything else that may patch Jobs in its namespace, can write any report. The
// controller takes progress from it, and nothing it could turn into access to another object.
var _ = Describe("what the controller takes from a worker", func() {
	DescribeTable("never signs a result other than the Download's own archive as storage holds it",
		func(forge func(download *downloadv1alpha1.Download, honest jobreport.Result) jobreport.Result) {
			download, job := startedDownload(time.Second)
			honest := storeArchive(download, []byte("the real archive"))
			succeedJob(job, forge(download, honest))

			current := eventuallyPhase(download, downloadv1alpha1.PhaseFailed)
			failed := meta.FindStatusCondition(current.Status.Conditions, downloadv1alpha1.ConditionFailed)
			Expect(failed.Reason).To(Equal(downloadv1alpha1.ReasonResultRejected))
			Expect(current.Status.DownloadURL).To(BeEmpty())
			Expect(current.Status.Archive).To(BeNil())
		},
		Entry("another Download's archive in the same bucket", func(_ *downloadv1alpha1.Download, r jobreport.Result) jobreport.Result {
			victim := storeArchive(newDownload(servedNamespace, 1), []byte("someone else's archive"))
			r.Key, r.Size = victim.Key, victim.Size
			return r
		}),
		Entry("an object in another bucket", func(_ *downloadv1alpha1.Download, r jobreport.Result) jobreport.Result {
			r.Bucket, r.Key = sourceBucket, "70000"
			return r
		}),
		Entry("its own key with a size storage does not hold", func(_ *downloadv1alpha1.Download, r jobreport.Result) jobreport.Result {
			r.Size++
			return r
		}),
		Entry("files skipped although the Download's missingFiles policy is Fail", func(d *downloadv1alpha1.Download, r jobreport.Result) jobreport.Result {
			r.SkippedFileIDs = d.Spec.FileIDs[:1]
			return r
		}),
	)

	DescribeTable("never lists a skipped id that a Download with missingFiles: Skip cannot have skipped",
		func(skipped []int64) {
			download := newDownload(servedNamespace, 70000, 70001, 70002)
			download.Spec.MissingFiles = downloadv1alpha1.MissingFilesSkip
			createDownload(download)
			job := waitForJob(download)
			startJob(job, time.Second)
			result := storeArchive(download, []byte("the real archive"))
			result.SkippedFileIDs = skipped
			succeedJob(job, result)

			current := eventuallyPhase(download, downloadv1alpha1.PhaseFailed)
			Expect(meta.FindStatusCondition(current.Status.Conditions, downloadv1alpha1.ConditionFailed).Reason).
				To(Equal(downloadv1alpha1.ReasonResultRejected))
			Expect(current.Status.SkippedFileIDs).To(BeEmpty())
		},
		Entry("an id it never asked for", []int64{70000, 99999}),
		Entry("an id twice", []int64{70001, 70001}),
		Entry("every id, which must fail as SourceNotFound instead", []int64{70000, 70001, 70002}),
	)

	It("rejects a reported archive that storage does not hold", func() {
		download, job := startedDownload(time.Second)
		succeedJob(job, jobreport.Result{Bucket: archiveBucket, Key: archiveKey(download), Size: 10, SHA256: sha256Zeros})

		current := eventuallyPhase(download, downloadv1alpha1.PhaseFailed)
		Expect(meta.FindStatusCondition(current.Status.Conditions, downloadv1alpha1.ConditionFailed).Reason).
			To(Equal(downloadv1alpha1.ReasonResultRejected))
	})

	It("keeps a failure reason a worker made up out of the condition", func() {
		download, job := startedDownload(time.Second)
		failJob(job, &jobreport.Failure{Reason: downloadv1alpha1.ReasonArchiveReady, Message: "all fine, really"},
			batchv1.JobReasonBackoffLimitExceeded, 4)

		current := eventuallyPhase(download, downloadv1alpha1.PhaseFailed)
		Expect(meta.FindStatusCondition(current.Status.Conditions, downloadv1alpha1.ConditionFailed).Reason).
			To(Equal(downloadv1alpha1.ReasonBackoffLimitExceeded))
	})

	It("ignores progress no honest worker reports", func() {
		download, job := startedDownload(4 * time.Second)
		annotateJob(job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: 50, BytesTotal: 100})
		Eventually(func() int32 { return fetch(download).Status.Progress }).Should(BeEquivalentTo(50))

		annotateJob(job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: 900, BytesTotal: 100})
		annotateJob(job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: -5, BytesTotal: 100})
		Consistently(func() int64 { return fetch(download).Status.BytesDone }, "1s").Should(BeEquivalentTo(50))
	})
})

var _ = Describe("uploads killed attempts left", func() {
	// A worker killed mid-upload cannot abort its upload, and its successor's credential may not
	// list uploads (the listing would show other Downloads' keys), so the controller removes them.
	DescribeTable("are removed once the Job can run no more workers",
		func(finish func(download *downloadv1alpha1.Download, job *batchv1.Job), phase downloadv1alpha1.DownloadPhase) {
			download, job := startedDownload(time.Second)
			core := minio.Core{Client: s3}
			_, err := core.NewMultipartUpload(ctx, archiveBucket, archiveKey(download), minio.PutObjectOptions{})
			Expect(err).NotTo(HaveOccurred())

			finish(download, job)
			eventuallyPhase(download, phase)
			for upload := range s3.ListIncompleteUploads(ctx, archiveBucket, archiveKey(download), true) {
				Fail("the killed attempt's upload is still there: " + upload.UploadID)
			}
		},
		Entry("when it completed", func(download *downloadv1alpha1.Download, job *batchv1.Job) {
			succeedJob(job, storeArchive(download, []byte("the retry's archive")))
		}, downloadv1alpha1.PhaseCompleted),
		Entry("when it failed", func(_ *downloadv1alpha1.Download, job *batchv1.Job) {
			failJob(job, nil, batchv1.JobReasonBackoffLimitExceeded, 4)
		}, downloadv1alpha1.PhaseFailed),
	)
})

var _ = Describe("settled and unserved Downloads", func() {
	It("lets a Download in a namespace it does not serve be deleted", func() {
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unserved-deleted"}}))).To(Succeed())
		download := newDownload("unserved-deleted", 70000)
		createDownload(download)
		current := eventuallyPhase(download, downloadv1alpha1.PhaseFailed)
		Expect(current.Finalizers).To(BeEmpty(), "nothing was made for it that would need cleaning up")

		Expect(k8sClient.Delete(ctx, download)).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(download), &downloadv1alpha1.Download{})
		}).Should(Satisfy(apierrors.IsNotFound))
	})

	It("releases a Download left with a finalizer in a namespace it no longer serves", func() {
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "once-served"}}))).To(Succeed())
		download := newDownload("once-served", 70000)
		download.Finalizers = []string{cleanupFinalizer}
		createDownload(download)
		eventuallyPhase(download, downloadv1alpha1.PhaseFailed)
		storeArchive(download, []byte("made while the namespace was served"))

		Expect(k8sClient.Delete(ctx, download)).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(download), &downloadv1alpha1.Download{})
		}).Should(Satisfy(apierrors.IsNotFound))
		_, err := store.ArchiveSize(ctx, archiveBucket, archiveKey(download))
		Expect(err).To(HaveOccurred(), "the archive goes with the Download")
	})

	It("comes back for the TTL of a settled Download whose Job is gone and whose URL reaches its expiry", func() {
		download := newDownload(servedNamespace, 70000)
		download.Spec.TTLSecondsAfterFinished = ptr.To[int32](300)
		download.Spec.URLExpirySeconds = ptr.To[int32](100)
		download = completeDownload(download, []byte("archive"))
		job := waitForJob(download)
		Expect(k8sClient.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
		Eventually(func() []batchv1.Job { return workerJobs(download) }).Should(BeEmpty())
		completedAt := download.Status.CompletionTime.Time

		By("signing the last URL up to the Download's own expiry")
		fakeClock.SetTime(completedAt.Add(250 * time.Second))
		reconcileNow(download)
		lastURL := fetch(download).Status
		Expect(lastURL.URLExpiresAt.Time).To(Equal(completedAt.Add(300 * time.Second)))

		By("then asking to come back at the TTL, neither never nor with another signature")
		fakeClock.SetTime(completedAt.Add(298 * time.Second))
		Expect(reconcileNow(download).RequeueAfter).To(Equal(2 * time.Second))
		Expect(fetch(download).Status.DownloadURL).To(Equal(lastURL.DownloadURL), "a URL that cannot outlive the last one is not signed again")

		By("deleting it once the TTL has passed")
		fakeClock.SetTime(completedAt.Add(300 * time.Second))
		reconcileNow(download)
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(download), &downloadv1alpha1.Download{})
		}).Should(Satisfy(apierrors.IsNotFound))
	})
})

// startedDownload creates a Download of one file and has its Job start the given time ago.
func startedDownload(ago time.Duration) (*downloadv1alpha1.Download, *batchv1.Job) {
	GinkgoHelper()
	download := newDownload(servedNamespace, 70000)
	createDownload(download)
	job := waitForJob(download)
	startJob(job, ago)
	return download, job
}

const sha256Zeros = "0000000000000000000000000000000000000000000000000000000000000000"
