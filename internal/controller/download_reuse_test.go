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
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
)

// reuseFileIDs hands each reuse spec file ids no other spec uses, so that specs never share work
// by accident.
var reuseFileIDs atomic.Int64

func init() { reuseFileIDs.Store(90000) }

// sharedFiles stores n source files no other spec asks for, and returns their ids.
func sharedFiles(n int) []int64 {
	GinkgoHelper()
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = reuseFileIDs.Add(1)
		putSource(ids[i], []byte("source "+strconv.FormatInt(ids[i], 10)))
	}
	return ids
}

// newSharedDownload asks for the files with the default reusePolicy.
func newSharedDownload(ids []int64) *downloadv1alpha1.Download {
	download := newDownload(servedNamespace, ids...)
	download.Spec.ReusePolicy = ""
	return download
}

func putSource(id int64, content []byte) {
	GinkgoHelper()
	_, err := s3.PutObject(ctx, sourceBucket, strconv.FormatInt(id, 10), bytes.NewReader(content), int64(len(content)), minio.PutObjectOptions{})
	Expect(err).NotTo(HaveOccurred())
}

// jobsOwnedBy lists the worker Jobs any of the Downloads owns.
func jobsOwnedBy(downloads ...*downloadv1alpha1.Download) []batchv1.Job {
	GinkgoHelper()
	var jobs batchv1.JobList
	Expect(k8sClient.List(ctx, &jobs, client.InNamespace(servedNamespace),
		client.MatchingLabels{ComponentLabel: WorkerComponent})).To(Succeed())
	var owned []batchv1.Job
	for _, job := range jobs.Items {
		if slices.ContainsFunc(downloads, func(d *downloadv1alpha1.Download) bool { return ownedBy(&job, fetch(d)) }) {
			owned = append(owned, job)
		}
	}
	return owned
}

// eventuallyOwners waits until the Job is owned by exactly the Downloads given.
func eventuallyOwners(job *batchv1.Job, owners ...*downloadv1alpha1.Download) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
		var uids []string
		for _, ref := range job.OwnerReferences {
			uids = append(uids, string(ref.UID))
		}
		var want []string
		for _, d := range owners {
			want = append(want, string(fetch(d).UID))
		}
		g.Expect(uids).To(ConsistOf(want))
	}).Should(Succeed())
}

func archiveExists(key string) bool {
	GinkgoHelper()
	_, err := s3.StatObject(ctx, archiveBucket, key, minio.StatObjectOptions{})
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return false
	}
	Expect(err).NotTo(HaveOccurred())
	return true
}

func gone(obj client.Object) func() error {
	return func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj) }
}

var _ = Describe("Reuse of identical Downloads", func() {
	It("starts one Job for identical Downloads created together; both follow it to the same archive", func() {
		ids := sharedFiles(2)
		first, second := newSharedDownload(ids), newSharedDownload(ids)
		var wg sync.WaitGroup
		for _, d := range []*downloadv1alpha1.Download{first, second} {
			wg.Go(func() {
				defer GinkgoRecover()
				createDownload(d)
			})
		}
		wg.Wait()

		By("running exactly one Job, owned by both")
		var job batchv1.Job
		Eventually(func(g Gomega) {
			jobs := jobsOwnedBy(first, second)
			g.Expect(jobs).To(HaveLen(1))
			job = jobs[0]
		}).Should(Succeed())
		leader, follower := first, second
		if job.Name != jobName(first) {
			leader, follower = second, first
		}
		eventuallyOwners(&job, leader, follower)
		Consistently(func() []batchv1.Job { return jobsOwnedBy(first, second) }, "1s").Should(HaveLen(1))

		By("mirroring the one worker's progress into both")
		startJob(&job, 2*time.Second)
		annotateJob(&job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: 30, BytesTotal: 100})
		for _, d := range []*downloadv1alpha1.Download{leader, follower} {
			Eventually(func() int64 { return fetch(d).Status.BytesDone }).Should(BeEquivalentTo(30))
		}
		Expect(fetch(follower).Status.ReusedFrom).To(Equal(leader.Name))
		Expect(fetch(leader).Status.ReusedFrom).To(BeEmpty())

		By("completing both with the leader's archive and a URL each")
		succeedJob(&job, storeArchive(leader, []byte("shared archive")))
		doneLeader := eventuallyPhase(leader, downloadv1alpha1.PhaseCompleted)
		doneFollower := eventuallyPhase(follower, downloadv1alpha1.PhaseCompleted)
		Expect(doneFollower.Status.Archive).To(Equal(doneLeader.Status.Archive))
		Expect(doneFollower.Status.ContentDigest).To(HaveLen(64))
		Expect(doneFollower.Status.ContentDigest).To(Equal(doneLeader.Status.ContentDigest))
		Expect(meta.FindStatusCondition(doneFollower.Status.Conditions, downloadv1alpha1.ConditionComplete).Reason).
			To(Equal(downloadv1alpha1.ReasonArchiveReused))
		Expect(doneFollower.Status.DownloadURL).NotTo(Equal(doneLeader.Status.DownloadURL))
		resp, body := getThroughPublicHost(doneFollower.Status.DownloadURL)
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(string(body)).To(Equal("shared archive"))
	})

	It("keeps the Job running for the followers when the leader is cancelled, and stops it with the last one", func() {
		ids := sharedFiles(1)
		leader := newSharedDownload(ids)
		createDownload(leader)
		job := waitForJob(leader)
		followers := []*downloadv1alpha1.Download{newSharedDownload(ids), newSharedDownload(ids)}
		for _, f := range followers {
			createDownload(f)
		}
		eventuallyOwners(job, leader, followers[0], followers[1])
		for _, f := range followers {
			Eventually(func() string { return fetch(f).Status.ReusedFrom }).Should(Equal(leader.Name))
		}
		startJob(job, time.Second)

		By("cancelling the leader: the Job stays for the two followers")
		Expect(k8sClient.Delete(ctx, leader)).To(Succeed())
		Eventually(gone(leader)).Should(Satisfy(apierrors.IsNotFound))
		Consistently(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(job), job) }, "1s").Should(Succeed())
		Expect(job.DeletionTimestamp).To(BeNil())

		By("cancelling one follower: the other still waits, so the Job stays")
		Expect(k8sClient.Delete(ctx, followers[0])).To(Succeed())
		Eventually(gone(followers[0])).Should(Satisfy(apierrors.IsNotFound))
		Consistently(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(job), job) }, "1s").Should(Succeed())

		By("completing the last follower with the archive the cancelled leader's Job made")
		succeedJob(job, storeArchive(leader, []byte("archive of a cancelled leader")))
		done := eventuallyPhase(followers[1], downloadv1alpha1.PhaseCompleted)
		Expect(done.Status.Archive.Key).To(Equal(archiveKey(leader)))
		resp, _ := getThroughPublicHost(done.Status.DownloadURL)
		Expect(resp.StatusCode).To(Equal(http.StatusOK))

		By("removing the Job and the archive with the last Download that used them")
		Expect(k8sClient.Delete(ctx, followers[1])).To(Succeed())
		Eventually(gone(followers[1])).Should(Satisfy(apierrors.IsNotFound))
		Eventually(gone(job)).Should(Satisfy(apierrors.IsNotFound))
		Expect(archiveExists(archiveKey(leader))).To(BeFalse())
	})

	It("stops a followed Job when the only follower of a cancelled leader is cancelled too", func() {
		ids := sharedFiles(1)
		leader, follower := newSharedDownload(ids), newSharedDownload(ids)
		createDownload(leader)
		job := waitForJob(leader)
		createDownload(follower)
		eventuallyOwners(job, leader, follower)

		Expect(k8sClient.Delete(ctx, leader)).To(Succeed())
		Eventually(gone(leader)).Should(Satisfy(apierrors.IsNotFound))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
		Expect(k8sClient.Delete(ctx, follower)).To(Succeed())
		Eventually(gone(job)).Should(Satisfy(apierrors.IsNotFound))
	})

	It("completes a Download at once from a stored archive of the same content, and never across a changed source", func() {
		ids := sharedFiles(2)
		first := newSharedDownload(ids)
		createDownload(first)
		job := waitForJob(first)
		startJob(job, time.Second)
		succeedJob(job, storeArchive(first, []byte("first archive")))
		eventuallyPhase(first, downloadv1alpha1.PhaseCompleted)

		By("reusing the archive: no Job, a URL of its own")
		again := newSharedDownload(ids)
		createDownload(again)
		done := eventuallyPhase(again, downloadv1alpha1.PhaseCompleted)
		Expect(done.Status.ReusedFrom).To(Equal(first.Name))
		Expect(done.Status.Archive).To(Equal(fetch(first).Status.Archive))
		Expect(meta.FindStatusCondition(done.Status.Conditions, downloadv1alpha1.ConditionComplete).Reason).
			To(Equal(downloadv1alpha1.ReasonArchiveReused))
		Expect(jobsOwnedBy(again)).To(BeEmpty())
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: servedNamespace, Name: jobName(again)}, &batchv1.Job{})).
			To(Satisfy(apierrors.IsNotFound))
		resp, body := getThroughPublicHost(done.Status.DownloadURL)
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(string(body)).To(Equal("first archive"))

		By("starting a Job of its own once a source changed")
		putSource(ids[1], []byte("changed content"))
		changed := newSharedDownload(ids)
		createDownload(changed)
		waitForJob(changed)
		Consistently(func() string { return fetch(changed).Status.ReusedFrom }, "1s").Should(BeEmpty())
		Expect(fetch(changed).Status.Phase).NotTo(Equal(downloadv1alpha1.PhaseCompleted))

		By("never reusing for a Download that asks for a fresh archive")
		fresh := newDownload(servedNamespace, ids...)
		createDownload(fresh)
		waitForJob(fresh)
	})

	It("keeps a shared archive while any Download that uses it lives, past the first one's TTL", func() {
		ids := sharedFiles(1)
		first := newSharedDownload(ids)
		first.Spec.TTLSecondsAfterFinished = ptr.To[int32](120)
		first.Spec.URLExpirySeconds = ptr.To[int32](60)
		first = completeDownload(first, []byte("archive of the first"))
		second := newSharedDownload(ids)
		createDownload(second)
		reused := eventuallyPhase(second, downloadv1alpha1.PhaseCompleted)
		Expect(reused.Status.ReusedFrom).To(Equal(first.Name))

		By("expiring the first Download: the second's URL keeps working")
		fakeClock.Step(121 * time.Second)
		reconcileNow(first)
		Eventually(gone(first)).Should(Satisfy(apierrors.IsNotFound))
		Expect(archiveExists(archiveKey(first))).To(BeTrue())
		resp, body := getThroughPublicHost(fetch(second).Status.DownloadURL)
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(string(body)).To(Equal("archive of the first"))

		By("reusing through the second once the first is gone")
		third := newSharedDownload(ids)
		createDownload(third)
		Expect(eventuallyPhase(third, downloadv1alpha1.PhaseCompleted).Status.ReusedFrom).To(Equal(second.Name))

		By("removing the archive with the last Download that uses it")
		Expect(k8sClient.Delete(ctx, second)).To(Succeed())
		Eventually(gone(second)).Should(Satisfy(apierrors.IsNotFound))
		Expect(archiveExists(archiveKey(first))).To(BeTrue())
		Expect(k8sClient.Delete(ctx, third)).To(Succeed())
		Eventually(gone(third)).Should(Satisfy(apierrors.IsNotFound))
		Expect(archiveExists(archiveKey(first))).To(BeFalse())
	})
})
