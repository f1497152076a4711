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

package drills

import (
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/cluster"
)

const (
	r3Downloads = 6
	// r3Outage is how long MinIO stays stopped.
	r3Outage = 30 * time.Second
	// minioScript stops and starts the demo's MinIO with the same data and credentials.
	minioScript = "hack/demo/minio"
)

var _ = Describe("R3: storage outage", Label(drillLabel, "R3"), Serial, func() {
	It("completes each Download correctly after MinIO was down for 30 s, or fails it with StorageError", func(ctx SpecContext) {
		dls := newDrillDownloads(r3Downloads, "R3", "drill-r3", []int64{cluster.File64MiB}, cluster.SlowRate)
		createDownloads(ctx, dls)

		By("waiting until every worker is uploading")
		Eventually(ctx, func(g Gomega) {
			current, err := drillDownloads(ctx, "R3")
			g.Expect(err).NotTo(HaveOccurred())
			for _, dl := range current {
				g.Expect(dl.Status.Phase).To(Equal(downloadv1alpha1.PhaseProcessing), "Download %s", dl.Name)
				g.Expect(dl.Status.Progress).To(BeNumerically(">", 0), "Download %s reports no progress yet", dl.Name)
			}
		}).Should(Succeed())

		By("stopping MinIO for 30 s")
		// Registered first, so MinIO comes back even when the spec fails or times out halfway.
		DeferCleanup(func(ctx SpecContext) {
			Expect(cluster.RunRepoScript(ctx, minioScript, "start")).To(Succeed())
		}, NodeTimeout(2*time.Minute))
		stopping := time.Now()
		Expect(cluster.RunRepoScript(ctx, minioScript, "stop")).To(Succeed())
		stopped := time.Now()
		select {
		case <-ctx.Done():
			Fail("the spec ended during the outage")
		case <-time.After(r3Outage):
		}
		Expect(cluster.RunRepoScript(ctx, minioScript, "start")).To(Succeed())
		back := time.Now()
		figure("R3.outage", "MinIO out for %s: stop took %s, then %s down, start and readiness took %s",
			back.Sub(stopping).Round(100*time.Millisecond), stopped.Sub(stopping).Round(100*time.Millisecond), r3Outage,
			back.Sub(stopped.Add(r3Outage)).Round(100*time.Millisecond))

		By("waiting for every Download to finish")
		done := waitForDrillFinished(ctx, "R3", r3Downloads, 6*time.Minute)
		figure("R3.finished", "all %d finished %s after MinIO was back", r3Downloads, time.Since(back).Round(time.Second))

		By("checking each one: a verified archive, or Failed with StorageError")
		paths := map[string]int{}
		var attempts []int32
		for _, dl := range done {
			attempts = append(attempts, dl.Status.Attempts)
			switch dl.Status.Phase {
			case downloadv1alpha1.PhaseCompleted:
				paths["completed after retries"]++
				Expect(checkDelivered(ctx, &dl, true)).To(Succeed())
			default:
				paths["failed StorageError"]++
				failed := meta.FindStatusCondition(dl.Status.Conditions, downloadv1alpha1.ConditionFailed)
				Expect(failed).NotTo(BeNil(), "Download %s is %s without a Failed condition", dl.Name, dl.Status.Phase)
				Expect(failed.Reason).To(Equal(downloadv1alpha1.ReasonStorageError), "Download %s: %s", dl.Name, failed.Message)
				Expect(dl.Status.DownloadURL).To(BeEmpty())
			}
		}
		figure("R3.paths", "%v; status.attempts per Download: %v", paths, attempts)

		By("deleting them: the finalizer leaves no archive and no upload behind")
		keys, err := workerJobKeys(ctx)
		Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, dl := range done {
			names = append(names, dl.Name)
		}
		Expect(deleteDownloadsAndWait(ctx, names)).To(Succeed())
		for key, name := range keys {
			if !slices.Contains(names, name) {
				continue
			}
			Expect(cluster.ArchiveExists(ctx, key)).To(BeFalse(), "archive of deleted Download %s", name)
			Expect(cluster.IncompleteUploads(ctx, key)).To(BeEmpty(), "uploads of deleted Download %s", name)
		}
		expectNoOrphanUploads(ctx, "R3")
	}, SpecTimeout(10*time.Minute))
})
