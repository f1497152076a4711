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
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/cluster"
)

const (
	r2Downloads = 4
	// r2Kills is how often each worker is killed; with the default backoffLimit of 3 the
	// third attempt must succeed.
	r2Kills = 2
)

var _ = Describe("R2: worker loss", Label(drillLabel, "R2"), Serial, func() {
	It("delivers every archive although each worker is SIGKILLed mid-upload twice", func(ctx SpecContext) {
		// 64 MiB at 4 MiB/s: 16 s per attempt, long enough to be caught uploading.
		dls := newDrillDownloads(r2Downloads, "R2", "drill-r2", []int64{cluster.File64MiB}, cluster.SlowRate)
		started := time.Now()
		createDownloads(ctx, dls)

		By(fmt.Sprintf("killing each worker %d times while it uploads", r2Kills))
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			keys = map[string]string{}
		)
		for _, dl := range dls {
			wg.Go(func() {
				defer GinkgoRecover()
				key := killWorkerRepeatedly(ctx, dl.Name, r2Kills)
				mu.Lock()
				keys[dl.Name] = key
				mu.Unlock()
			})
		}
		wg.Wait()

		By("waiting for every Download to complete anyway")
		done := waitForDrillFinished(ctx, "R2", r2Downloads, 5*time.Minute)
		figure("R2.complete", "%d Downloads, each worker killed %d times, all finished %s after creation",
			r2Downloads, r2Kills, time.Since(started).Round(time.Second))
		var attempts []int32
		for _, dl := range done {
			Expect(dl.Status.Phase).To(Equal(downloadv1alpha1.PhaseCompleted), "Download %s: %v", dl.Name, dl.Status.Conditions)
			Expect(dl.Status.Archive.Key).To(Equal(keys[dl.Name]))
			job, err := cluster.GetJob(ctx, dl.Name)
			Expect(err).NotTo(HaveOccurred())
			Expect(job.Status.Failed).To(BeEquivalentTo(r2Kills), "failed Pods of Job %s", job.Name)
			// Each killed Pod and the one that succeeded is an attempt (it once came out one
			// short: docs/reliability.md, Findings).
			Expect(dl.Status.Attempts).To(Equal(job.Status.Failed+job.Status.Succeeded),
				"status.attempts of Download %s against its Job's %d failed and %d succeeded Pods",
				dl.Name, job.Status.Failed, job.Status.Succeeded)
			attempts = append(attempts, dl.Status.Attempts)
		}
		figure("R2.attempts", "status.attempts per Download: %v", attempts)

		By("checking every archive entry by entry")
		Expect(forEach(ctx, done, func(ctx context.Context, dl downloadv1alpha1.Download) error {
			return checkDelivered(ctx, &dl, true)
		})).To(Succeed())

		By("checking no killed attempt left a multipart upload behind")
		for name, key := range keys {
			Eventually(ctx, func() ([]string, error) { return cluster.IncompleteUploads(ctx, key) }).
				WithTimeout(time.Minute).Should(BeEmpty(), "incomplete uploads of %s (Download %s)", key, name)
		}
		expectNoOrphanUploads(ctx, "R2")
	}, SpecTimeout(10*time.Minute))
})

// killWorkerRepeatedly SIGKILLs the Download's worker container kills times, each time while
// that attempt's multipart upload is in flight, waits until the Job counted each failure, and
// returns the archive key.
func killWorkerRepeatedly(ctx context.Context, name string, kills int) string {
	GinkgoHelper()
	victim := cluster.WaitForUploadingWorker(ctx, name)
	key, err := cluster.ArchiveKeyOf(ctx, name)
	Expect(err).NotTo(HaveOccurred())
	for kill := 1; ; kill++ {
		Expect(cluster.KillContainer(ctx, victim.Status.ContainerStatuses[0].ContainerID)).To(Succeed())
		killed := time.Now()
		GinkgoWriter.Printf("killed worker %d of %s (Pod %s)\n", kill, name, victim.Name)
		Eventually(ctx, func(g Gomega) {
			job, err := cluster.GetJob(ctx, name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(job.Status.Failed).To(BeNumerically(">=", kill), "the Job has not counted kill %d yet", kill)
		}).Should(Succeed())
		if kill == kills {
			return key
		}
		victim = waitForRetryUploading(ctx, name, key, victim.Name, killed)
	}
}

// waitForRetryUploading waits for the retry after a kill: a new running worker Pod whose own
// multipart upload was initiated after the kill.
func waitForRetryUploading(ctx context.Context, name, key, killedPod string, killed time.Time) corev1.Pod {
	GinkgoHelper()
	var worker corev1.Pod
	Eventually(ctx, func(g Gomega) {
		pods, err := cluster.WorkerPods(ctx, name)
		g.Expect(err).NotTo(HaveOccurred())
		var running []corev1.Pod
		for _, p := range pods {
			st := p.Status.ContainerStatuses
			if p.Name != killedPod && p.DeletionTimestamp == nil && len(st) > 0 && st[0].State.Running != nil {
				running = append(running, p)
			}
		}
		g.Expect(running).To(HaveLen(1), "one running retry of %s", name)
		worker = running[0]
		uploads, err := uploadsSince(ctx, key, killed)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(uploads).NotTo(BeZero(), "the retry of %s has not started its upload", name)
	}).Should(Succeed())
	return worker
}

// uploadsSince counts the incomplete uploads of key initiated after t (less a second, as
// MinIO's clock and ours are the same machine's but its timestamps are rounded).
func uploadsSince(ctx context.Context, key string, t time.Time) (int, error) {
	uploads, err := cluster.OpenUploads(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range uploads {
		if u.Key == key && u.Initiated.After(t.Add(-time.Second)) {
			n++
		}
	}
	return n, nil
}
