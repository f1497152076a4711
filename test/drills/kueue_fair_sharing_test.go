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
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/cluster"
)

// Drill K1: Kueue fair sharing. One ClusterQueue with room for four workers serves two tenant
// namespaces through a LocalQueue each, with admission fair sharing. Tenant A floods it with 40
// Downloads; tenant B then asks for 5. B must not wait behind A's backlog, and every Download of
// both must complete.
const (
	k1Drill   = "K1"
	k1TenantA = "k1-tenant-a"
	k1TenantB = "k1-tenant-b"
	// k1Queue names the ClusterQueue and each tenant's LocalQueue.
	k1Queue = "downloads"
	k1Flood = 40
	k1Late  = 5
	// k1Workers is how many workers the ClusterQueue's quota holds: 4 × 100m CPU, 4 × 64Mi.
	k1Workers = 4
	// k1BytesPerSecond makes each 32 MiB worker run about 4 s, so the backlog lasts a while.
	k1BytesPerSecond = 8 << 20
)

// k1Queues are the ResourceFlavor, the ClusterQueue and the two LocalQueues. The ClusterQueue
// orders admissions by each LocalQueue's recent usage (UsageBasedAdmissionFairSharing), so a
// tenant that used nothing lately goes before one that used its share.
var k1Queues = fmt.Sprintf(`apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: %[1]s}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: %[1]s}
spec:
  namespaceSelector: {}
  queueingStrategy: BestEffortFIFO
  admissionScope: {admissionMode: UsageBasedAdmissionFairSharing}
  resourceGroups:
  - coveredResources: [cpu, memory]
    flavors:
    - name: %[1]s
      resources: [{name: cpu, nominalQuota: %[2]dm}, {name: memory, nominalQuota: %[3]dMi}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: %[1]s, namespace: %[4]s}
spec: {clusterQueue: %[1]s}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: %[1]s, namespace: %[5]s}
spec: {clusterQueue: %[1]s}
`, k1Queue, k1Workers*100, k1Workers*64, k1TenantA, k1TenantB)

var _ = Describe("K1: Kueue fair sharing", Label(drillLabel, k1Drill), Ordered, Serial, func() {
	It("K1: admits a tenant's 5 Downloads before another tenant's backlog of 40 drains, and completes all 45",
		Label(k1Drill), func(ctx SpecContext) {
			Expect(cluster.Env.ContainerdSock).NotTo(BeEmpty(),
				"K1 installs Kueue into the local cluster's containerd; on kind it does not run")
			tenants := []string{k1TenantA, k1TenantB}

			By("installing Kueue, built from its Go module (hack/local-cluster/kueue)")
			installStart := time.Now()
			Expect(cluster.RunRepoScript(ctx, "hack/local-cluster/kueue")).To(Succeed())
			install := time.Since(installStart)

			createTenantNamespaces(ctx, k1Drill, tenants)
			By("creating the ClusterQueue " + k1Queue + " and a LocalQueue in each tenant namespace")
			// Cleanups run last-registered first: Downloads go, the release is rolled back, the
			// queues go while Kueue still runs (their finalizers need it), then the namespaces.
			queues := k1QueueObjects()
			for _, obj := range queues {
				Expect(cluster.K8s.Create(ctx, obj)).To(Succeed(), "creating %s %s", obj.GetKind(), obj.GetName())
			}
			DeferCleanup(func(ctx SpecContext) {
				for _, obj := range slices.Backward(queues) {
					Expect(client.IgnoreNotFound(cluster.K8s.Delete(ctx, obj))).To(Succeed())
				}
			}, NodeTimeout(time.Minute))

			By("helm upgrade: serve both namespaces, each through its LocalQueue")
			serveTenants(ctx, tenants, "kueue.namespaceQueueNames."+k1TenantA+"="+k1Queue,
				"kueue.namespaceQueueNames."+k1TenantB+"="+k1Queue)

			var all []*downloadv1alpha1.Download
			DeferCleanup(func(ctx SpecContext) {
				Expect(forEach(ctx, all, func(ctx context.Context, dl *downloadv1alpha1.Download) error {
					return cluster.DeleteDownloadAndWaitIn(ctx, dl.Namespace, dl.Name)
				})).To(Succeed())
			}, NodeTimeout(cluster.DeleteTimeout+2*time.Minute))
			create := func(ns string, n int) []*downloadv1alpha1.Download {
				dls := newDrillDownloads(n, k1Drill, "k1", []int64{cluster.File32MiB}, k1BytesPerSecond)
				for _, dl := range dls {
					dl.Namespace = ns
				}
				all = append(all, dls...)
				Expect(forEach(ctx, dls, func(ctx context.Context, dl *downloadv1alpha1.Download) error {
					return cluster.K8s.Create(ctx, dl)
				})).To(Succeed())
				return dls
			}

			By(fmt.Sprintf("tenant A submits %d Downloads; once its first ones run, tenant B submits %d", k1Flood, k1Late))
			floodStart := time.Now()
			flood := create(k1TenantA, k1Flood)
			watch := newK1Watch()
			Eventually(ctx, func(g Gomega) {
				g.Expect(watch.observe(ctx)).To(Succeed())
				g.Expect(watch.count(k1TenantA, watch.start)).To(BeNumerically(">=", 1))
			}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
			lateStart := time.Now()
			late := create(k1TenantB, k1Late)

			By("watching every Download until all 45 completed")
			Eventually(ctx, func(g Gomega) {
				g.Expect(watch.observe(ctx)).To(Succeed())
				if len(watch.failed) > 0 {
					StopTrying(fmt.Sprintf("Downloads failed: %v", watch.failed)).Now()
				}
				g.Expect(watch.count(k1TenantA, watch.done)).To(Equal(k1Flood))
				g.Expect(watch.count(k1TenantB, watch.done)).To(Equal(k1Late))
			}).WithTimeout(15 * time.Minute).WithPolling(time.Second).Should(Succeed())

			lastLateStart, lastLateDone := latestTime(late, watch.start), latestTime(late, watch.done)
			floodAfter := countLaterThan(flood, watch.start, lastLateStart)
			floodDone := latestTime(flood, watch.done)
			figure("K1.install", "Kueue built, imported and rolled out in %s", install.Round(time.Second))
			figure("K1.queued", "%d of %d Downloads were seen Pending with reason Queued; at most %d workers ran at once",
				len(watch.queued), k1Flood+k1Late, watch.maxRunning)
			figure("K1.late", "tenant B's %d Downloads, submitted %s after A's %d: all admitted %s and completed %s after their submission; "+
				"%d of A's Downloads were admitted after B's last",
				k1Late, lateStart.Sub(floodStart).Round(time.Second), k1Flood, lastLateStart.Sub(lateStart).Round(time.Second),
				lastLateDone.Sub(lateStart).Round(time.Second), floodAfter)
			figure("K1.flood", "tenant A's %d Downloads all completed %s after their submission", k1Flood,
				floodDone.Sub(floodStart).Round(time.Second))

			Expect(watch.queued).NotTo(BeEmpty(), "no Download ever showed reason Queued")
			Expect(watch.maxRunning).To(BeNumerically("<=", k1Workers), "more workers ran than the quota holds")
			Expect(lastLateDone).To(BeTemporally("<", floodDone), "tenant B waited until tenant A's backlog drained")
			// Plain FIFO would admit every one of A's first; with fair sharing B takes freed slots
			// while A's backlog is still long.
			Expect(floodAfter).To(BeNumerically(">=", k1Flood/4), "A's Downloads admitted after B's last")
		}, SpecTimeout(30*time.Minute))
})

// k1QueueObjects parses k1Queues.
func k1QueueObjects() []*unstructured.Unstructured {
	GinkgoHelper()
	var objs []*unstructured.Unstructured
	for doc := range strings.SplitSeq(k1Queues, "\n---\n") {
		obj := &unstructured.Unstructured{}
		Expect(yaml.Unmarshal([]byte(doc), &obj.Object)).To(Succeed())
		objs = append(objs, obj)
	}
	return objs
}

// k1Watch records, per Download, when its worker was admitted (status.startTime, which the Job
// only gets once Kueue unsuspends it) and when it completed, and what the drill saw on the way.
type k1Watch struct {
	namespace   map[string]string
	start, done map[string]time.Time
	queued      map[string]bool
	failed      map[string]string
	// maxRunning is the most Downloads seen admitted and unfinished at once, both tenants
	// together: they share the quota.
	maxRunning int
}

func newK1Watch() *k1Watch {
	return &k1Watch{namespace: map[string]string{}, start: map[string]time.Time{}, done: map[string]time.Time{},
		queued: map[string]bool{}, failed: map[string]string{}}
}

// observe lists the drill's Downloads in every namespace and records what changed.
func (w *k1Watch) observe(ctx context.Context) error {
	var list downloadv1alpha1.DownloadList
	if err := cluster.K8s.List(ctx, &list, client.MatchingLabels{drillDownloadLabel: k1Drill}); err != nil {
		return fmt.Errorf("listing the Downloads of %s: %w", k1Drill, err)
	}
	for _, dl := range list.Items {
		w.namespace[dl.Name] = dl.Namespace
		if c := meta.FindStatusCondition(dl.Status.Conditions, downloadv1alpha1.ConditionReconciling); c != nil &&
			c.Status == metav1.ConditionTrue && c.Reason == downloadv1alpha1.ReasonQueued {
			w.queued[dl.Name] = true
		}
		if dl.Status.StartTime != nil {
			w.start[dl.Name] = dl.Status.StartTime.Time
		}
		switch dl.Status.Phase {
		case downloadv1alpha1.PhaseCompleted:
			w.done[dl.Name] = ptr.Deref(dl.Status.CompletionTime, dl.CreationTimestamp).Time
		case downloadv1alpha1.PhaseFailed:
			w.failed[dl.Name] = dl.Namespace
		}
	}
	// Jobs, not Downloads, show what Kueue admitted: a Download's status may lag its Job's end
	// while Kueue already admitted the next one. One list is one consistent snapshot.
	var jobs batchv1.JobList
	if err := cluster.K8s.List(ctx, &jobs, client.MatchingLabels{cluster.ComponentLabel: cluster.WorkerComponent}); err != nil {
		return fmt.Errorf("listing worker Jobs: %w", err)
	}
	running := 0
	for _, job := range jobs.Items {
		// A worker is over at the first condition that says so: Kueue may release the quota as
		// soon as SuccessCriteriaMet or FailureTarget appears, before Complete or Failed.
		over := jobConditionTrue(&job, batchv1.JobComplete, batchv1.JobFailed, batchv1.JobSuccessCriteriaMet,
			batchv1.JobFailureTarget)
		if (job.Namespace == k1TenantA || job.Namespace == k1TenantB) && !ptr.Deref(job.Spec.Suspend, false) && !over {
			running++
		}
	}
	w.maxRunning = max(w.maxRunning, running)
	return nil
}

// count is how many of ns's Downloads have a time in times.
func (w *k1Watch) count(ns string, times map[string]time.Time) int {
	n := 0
	for name := range times {
		if w.namespace[name] == ns {
			n++
		}
	}
	return n
}

// latestTime is the latest of the Downloads' times.
func latestTime(dls []*downloadv1alpha1.Download, times map[string]time.Time) time.Time {
	var latest time.Time
	for _, dl := range dls {
		if t := times[dl.Name]; t.After(latest) {
			latest = t
		}
	}
	return latest
}

// countLaterThan is how many of the Downloads have a time in times later than moment.
func countLaterThan(dls []*downloadv1alpha1.Download, times map[string]time.Time, moment time.Time) int {
	n := 0
	for _, dl := range dls {
		if times[dl.Name].After(moment) {
			n++
		}
	}
	return n
}
