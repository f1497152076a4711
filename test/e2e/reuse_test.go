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
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	dlclient "github.com/download-operator/download-operator/pkg/client"
	"github.com/download-operator/download-operator/test/cluster"
)

var _ = Describe("Reuse and bursts", func() {
	// No other spec asks for these files in this order.
	ids := []int64{cluster.File32MiB, cluster.File1MiB}

	It("runs one worker for identical requests, and serves a repeat from the stored archive without one", func(ctx SpecContext) {
		By("initiating the same files twice at once")
		var first, second string
		var wg sync.WaitGroup
		wg.Go(func() { defer GinkgoRecover(); first = cluster.Initiate(ctx, ids) })
		wg.Go(func() { defer GinkgoRecover(); second = cluster.Initiate(ctx, ids) })
		wg.Wait()
		done := map[string]*downloadv1alpha1.Download{}
		for _, name := range []string{first, second} {
			done[name] = waitForCompletedDownload(ctx, name)
			got, err := cluster.VerifyArchive(ctx, done[name].Status.DownloadURL, ids)
			Expect(err).NotTo(HaveOccurred())
			GinkgoWriter.Printf("%s: %s, reusedFrom %q\n", name, got, done[name].Status.ReusedFrom)
		}
		Expect(done[first].Status.Archive).To(Equal(done[second].Status.Archive), "both got the one archive")
		reusers := 0
		for name, dl := range done {
			if dl.Status.ReusedFrom != "" {
				reusers++
				Expect(dl.Status.ReusedFrom).NotTo(Equal(name))
			}
		}
		Expect(reusers).To(Equal(1), "exactly one of the two followed the other's Job")
		Expect(jobsOwnedBy(ctx, first, second)).To(HaveLen(1))

		By("repeating the request while the archive is stored")
		repeat := cluster.Initiate(ctx, ids)
		repeated := waitForCompletedDownload(ctx, repeat)
		Expect(repeated.Status.ReusedFrom).NotTo(BeEmpty())
		Expect(repeated.Status.Archive).To(Equal(done[first].Status.Archive))
		Expect(cluster.K8s.Get(ctx, client.ObjectKey{Namespace: cluster.Env.Namespace, Name: repeat}, &batchv1.Job{})).
			To(Satisfy(apierrors.IsNotFound), "a repeat served from the stored archive runs no Job")
		_, err := cluster.VerifyArchive(ctx, repeated.Status.DownloadURL, ids)
		Expect(err).NotTo(HaveOccurred())
	}, SpecTimeout(5*time.Minute))

	It("accepts a burst of one client's identical initiates, and runs one Job for them all", func(ctx SpecContext) {
		const burst = 30
		jobs := make([]string, burst)
		var wg sync.WaitGroup
		for i := range burst {
			wg.Go(func() {
				defer GinkgoRecover()
				job, err := cluster.API.Initiate(ctx, []int64{cluster.File1MiB}, "")
				Expect(err).NotTo(HaveOccurred())
				jobs[i] = job.JobID
				cluster.CleanupDownload(job.JobID)
			})
		}
		wg.Wait()
		for _, job := range jobs {
			Eventually(ctx, func(g Gomega) {
				status, err := cluster.API.Status(ctx, job)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(status.Status).To(Equal(dlclient.StateCompleted))
			}).WithTimeout(3 * time.Minute).Should(Succeed())
		}
		// One Job, or none when an archive of these files was still stored from an earlier spec.
		Expect(len(jobsOwnedBy(ctx, jobs...))).To(BeNumerically("<=", 1), "30 identical requests share one Job")
	}, SpecTimeout(5*time.Minute))
})

// waitForCompletedDownload waits until the Download completed and returns it.
func waitForCompletedDownload(ctx context.Context, name string) *downloadv1alpha1.Download {
	GinkgoHelper()
	var dl *downloadv1alpha1.Download
	Eventually(ctx, func(g Gomega) {
		var err error
		dl, err = cluster.GetDownload(ctx, name)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(dl.Status.Phase).To(Equal(downloadv1alpha1.PhaseCompleted))
	}).WithTimeout(3 * time.Minute).Should(Succeed())
	return dl
}

// jobsOwnedBy lists the worker Jobs of the demo namespace that any of the named Downloads owns.
func jobsOwnedBy(ctx context.Context, names ...string) []batchv1.Job {
	GinkgoHelper()
	var jobs batchv1.JobList
	Expect(cluster.K8s.List(ctx, &jobs, client.InNamespace(cluster.Env.Namespace))).To(Succeed())
	var owned []batchv1.Job
	for _, job := range jobs.Items {
		for _, ref := range job.OwnerReferences {
			if ref.Kind == "Download" && slices.Contains(names, ref.Name) {
				owned = append(owned, job)
				break
			}
		}
	}
	return owned
}
