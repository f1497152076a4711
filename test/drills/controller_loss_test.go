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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/cluster"
)

const (
	// r1Downloads is how many Downloads are in flight when both controllers die.
	r1Downloads = 20
	// r1Rate makes each 33 MiB Download take about 16 s, so most are still working at the kill.
	r1Rate = 2 * cluster.MiB
)

var _ = Describe("R1: controller loss", Label(drillLabel, "R1"), Serial, func() {
	It("finishes every in-flight Download after both controller replicas are SIGKILLed", func(ctx SpecContext) {
		ids := []int64{cluster.File1MiB, cluster.File32MiB}
		_, restartsBefore := componentRestarts(ctx, cluster.ControllerComponent)

		By(fmt.Sprintf("creating %d Downloads of %v at %d MiB/s", r1Downloads, ids, r1Rate/cluster.MiB))
		dls := newDrillDownloads(r1Downloads, "R1", "drill-r1", ids, r1Rate)
		created := time.Now()
		createDownloads(ctx, dls)

		By("waiting until every Download has its Job and a quarter are uploading")
		var jobUIDs map[string]types.UID
		Eventually(ctx, func(g Gomega) {
			var err error
			jobUIDs, err = drillJobUIDs(ctx, "R1")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(jobUIDs).To(HaveLen(r1Downloads), "Downloads with a Job")
			current, err := drillDownloads(ctx, "R1")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(countPhases(current)[downloadv1alpha1.PhaseProcessing]).To(BeNumerically(">=", r1Downloads/4))
		}).Should(Succeed())

		By("SIGKILLing every controller container")
		leader, err := leaseHolder(ctx)
		Expect(err).NotTo(HaveOccurred())
		pods, err := cluster.ComponentPods(ctx, cluster.ControllerComponent)
		Expect(err).NotTo(HaveOccurred())
		atKill, err := drillDownloads(ctx, "R1")
		Expect(err).NotTo(HaveOccurred())
		for _, p := range pods {
			Expect(p.Status.ContainerStatuses).NotTo(BeEmpty(), "pod %s has no container status", p.Name)
			Expect(cluster.KillContainer(ctx, p.Status.ContainerStatuses[0].ContainerID)).To(Succeed())
		}
		killed := time.Now()
		figure("R1.leader", "Pod %s led (Lease holder %s); killed %d controller containers with the Downloads at %v",
			podOfHolder(leader), leader, len(pods), countPhases(atKill))

		By("waiting for a new leader")
		var newLeader string
		Eventually(ctx, func(g Gomega) {
			var err error
			newLeader, err = leaseHolder(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(newLeader).NotTo(Equal(leader), "the Lease still names the killed leader")
		}).WithPolling(200 * time.Millisecond).Should(Succeed())
		elected := time.Since(killed)
		figure("R1.reelection", "%s after the kill, new holder %s", elected.Round(100*time.Millisecond), newLeader)

		By("waiting for all Downloads to finish")
		done := waitForDrillFinished(ctx, "R1", r1Downloads, 5*time.Minute)
		figure("R1.complete", "all %d finished %s after creation, %s after the kill",
			r1Downloads, time.Since(created).Round(time.Second), time.Since(killed).Round(time.Second))

		By("checking the kubelet restarted both controllers, and nothing else did")
		cluster.WaitForDeploymentReady(ctx, cluster.ControllerDeployment, 2*time.Minute)
		_, restartsAfter := componentRestarts(ctx, cluster.ControllerComponent)
		for name, n := range restartsBefore {
			Expect(restartsAfter).To(HaveKeyWithValue(name, n+1), "restarts of %s", name)
		}

		By("checking every Download: Completed, one Job with its original UID, no spurious retry")
		jobs, err := workerJobs(ctx)
		Expect(err).NotTo(HaveOccurred())
		jobsOf := map[string][]batchv1.Job{}
		for _, j := range jobs {
			jobsOf[j.Labels[cluster.DownloadLabel]] = append(jobsOf[j.Labels[cluster.DownloadLabel]], j)
		}
		attempts := map[int32]int{}
		for _, dl := range done {
			Expect(dl.Status.Phase).To(Equal(downloadv1alpha1.PhaseCompleted), "Download %s: %v", dl.Name, dl.Status.Conditions)
			Expect(jobsOf[dl.Name]).To(HaveLen(1), "Jobs of Download %s", dl.Name)
			job := jobsOf[dl.Name][0]
			Expect(job.UID).To(Equal(jobUIDs[dl.Name]), "the Job of %s was replaced", dl.Name)
			// Killing the controller must not cost a retry, and status must count the Pods the
			// Job really ran (it once came out 0: docs/reliability.md, Findings).
			attempts[dl.Status.Attempts]++
			Expect(dl.Status.Attempts).To(Equal(job.Status.Failed+job.Status.Succeeded),
				"status.attempts of Download %s against its Job's %d failed and %d succeeded Pods",
				dl.Name, job.Status.Failed, job.Status.Succeeded)
		}
		figure("R1.attempts", "Downloads by status.attempts: %v", attempts)

		By("downloading every archive: size and sha256 against status, three checked entry by entry")
		fully := map[string]bool{done[0].Name: true, done[len(done)/2].Name: true, done[len(done)-1].Name: true}
		Expect(forEach(ctx, done, func(ctx context.Context, dl downloadv1alpha1.Download) error {
			return checkDelivered(ctx, &dl, fully[dl.Name])
		})).To(Succeed())
	}, SpecTimeout(10*time.Minute))
})

// leaseHolder is the holder identity of the controller's leader Lease ("<pod>_<uuid>"; the
// uuid is new in every process, so a restarted leader shows up as a new holder too).
func leaseHolder(ctx context.Context) (string, error) {
	var lease coordinationv1.Lease
	key := client.ObjectKey{Namespace: cluster.Env.Namespace, Name: cluster.LeaderLease}
	if err := cluster.K8s.Get(ctx, key, &lease); err != nil {
		return "", fmt.Errorf("getting Lease %s: %w", cluster.LeaderLease, err)
	}
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	if holder == "" {
		return "", fmt.Errorf("lease %s has no holder", cluster.LeaderLease)
	}
	return holder, nil
}

// drillJobUIDs maps each Download of drill that has a worker Job to that Job's UID.
func drillJobUIDs(ctx context.Context, drill string) (map[string]types.UID, error) {
	dls, err := drillDownloads(ctx, drill)
	if err != nil {
		return nil, err
	}
	jobs, err := workerJobs(ctx)
	if err != nil {
		return nil, err
	}
	uids := map[string]types.UID{}
	for _, dl := range dls {
		for _, j := range jobs {
			if j.Labels[cluster.DownloadLabel] == dl.Name {
				uids[dl.Name] = j.UID
			}
		}
	}
	return uids, nil
}

// countPhases counts Downloads by phase ("" for those the controller has not seen yet).
func countPhases(dls []downloadv1alpha1.Download) map[downloadv1alpha1.DownloadPhase]int {
	counts := map[downloadv1alpha1.DownloadPhase]int{}
	for _, dl := range dls {
		counts[dl.Status.Phase]++
	}
	return counts
}

// podOfHolder is the Pod name in a Lease holder identity.
func podOfHolder(holder string) string {
	pod, _, _ := strings.Cut(holder, "_")
	return pod
}
