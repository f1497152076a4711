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
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/cluster"
)

// The drills (docs/reliability.md) break the running system on purpose: they kill containers,
// stop MinIO and restart the apiserver. Each carries the label "drill" and its id, which is what
// `make test-drills DRILLS=<label filter>` selects by (the default is every drill).
const (
	drillLabel = "drill"
	// drillDownloadLabel marks the Downloads a drill creates with the drill's id, so that a
	// drill counts exactly its own objects while other clients use the same namespace.
	drillDownloadLabel = "e2e.download.operator.dev/drill"
	// bulkParallelism bounds the concurrent API calls of one bulk step; the apiserver and the
	// test share two cores.
	bulkParallelism = 16
)

// figure prints one measured figure of a drill and attaches it to the spec's report, so a
// passing run documents itself (docs/reliability.md quotes these lines).
func figure(name, format string, args ...any) {
	value := fmt.Sprintf(format, args...)
	GinkgoWriter.Printf("FIGURE %s: %s\n", name, value)
	AddReportEntry(name, value)
}

// newDrillDownload is cluster.NewDownload labelled with the drill's id.
func newDrillDownload(drill, prefix string, ids []int64, bytesPerSecond int64) *downloadv1alpha1.Download {
	dl := cluster.NewDownload(prefix, ids, bytesPerSecond)
	dl.Labels[drillDownloadLabel] = drill
	return dl
}

// newDrillDownloads is n Downloads of newDrillDownload, each named anew.
func newDrillDownloads(n int, drill, prefix string, ids []int64, bytesPerSecond int64) []*downloadv1alpha1.Download {
	dls := make([]*downloadv1alpha1.Download, n)
	for i := range dls {
		dls[i] = newDrillDownload(drill, prefix, ids, bytesPerSecond)
	}
	return dls
}

// createDownloads creates dls concurrently and registers one cleanup that deletes them all and
// waits for every finalizer, concurrently too: one cleanup per Download, as cluster.CreateDownload
// registers, would wait for hundreds of finalizers one after the other.
func createDownloads(ctx context.Context, dls []*downloadv1alpha1.Download) {
	GinkgoHelper()
	names := make([]string, len(dls))
	for i, dl := range dls {
		names[i] = dl.Name
	}
	DeferCleanup(func(ctx SpecContext) {
		Expect(deleteDownloadsAndWait(ctx, names)).To(Succeed())
	}, NodeTimeout(cluster.DeleteTimeout+time.Minute))
	Expect(forEach(ctx, dls, func(ctx context.Context, dl *downloadv1alpha1.Download) error {
		if err := cluster.K8s.Create(ctx, dl); err != nil {
			return fmt.Errorf("creating Download %s: %w", dl.Name, err)
		}
		return nil
	})).To(Succeed())
	GinkgoWriter.Printf("created %d Downloads: fileIds %v, maxBytesPerSecond %d\n",
		len(dls), dls[0].Spec.FileIDs, *dls[0].Spec.MaxBytesPerSecond)
}

// deleteDownloadsAndWait deletes the Downloads named names and waits until all are gone.
func deleteDownloadsAndWait(ctx context.Context, names []string) error {
	return forEach(ctx, names, cluster.DeleteDownloadAndWait)
}

// forEach runs fn on every item, bulkParallelism at a time, and joins the errors.
func forEach[T any](ctx context.Context, items []T, fn func(context.Context, T) error) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	slots := make(chan struct{}, bulkParallelism)
	for _, item := range items {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := fn(ctx, item); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// drillDownloads lists the Downloads of drill, sorted by name.
func drillDownloads(ctx context.Context, drill string) ([]downloadv1alpha1.Download, error) {
	var list downloadv1alpha1.DownloadList
	if err := cluster.ListInNamespace(ctx, &list, "the Downloads of drill "+drill, client.MatchingLabels{drillDownloadLabel: drill}); err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// waitForDrillFinished waits until all want Downloads of drill are Completed or Failed and
// returns them. One List per poll instead of one Get per Download keeps the apiserver calm.
func waitForDrillFinished(ctx context.Context, drill string, want int, timeout time.Duration) []downloadv1alpha1.Download {
	GinkgoHelper()
	var dls []downloadv1alpha1.Download
	Eventually(ctx, func(g Gomega) {
		var err error
		dls, err = drillDownloads(ctx, drill)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(dls).To(HaveLen(want), "Downloads of drill %s", drill)
		var open []string
		for i := range dls {
			if !cluster.Finished(&dls[i]) {
				open = append(open, fmt.Sprintf("%s %s %d%%", dls[i].Name, dls[i].Status.Phase, dls[i].Status.Progress))
			}
		}
		g.Expect(open).To(BeEmpty(), "unfinished Downloads of drill %s", drill)
	}).WithTimeout(timeout).WithPolling(time.Second).Should(Succeed())
	return dls
}

// checkDelivered downloads a Completed Download's archive through its presigned URL and
// compares it with status.archive. With full, every entry is also checked against its source
// (cluster.VerifyArchive); without, only the whole archive's size and sha256.
func checkDelivered(ctx context.Context, dl *downloadv1alpha1.Download, full bool) error {
	st := dl.Status
	if st.Phase != downloadv1alpha1.PhaseCompleted || st.Archive == nil || st.DownloadURL == "" {
		return fmt.Errorf("download %s is %s without archive or URL", dl.Name, st.Phase)
	}
	want := cluster.Digest{Size: st.Archive.Size, SHA256: st.Archive.SHA256}
	var (
		got cluster.Digest
		err error
	)
	if full {
		got, err = cluster.VerifyArchive(ctx, st.DownloadURL, dl.Spec.FileIDs)
	} else {
		got, err = cluster.Fetch(ctx, st.DownloadURL, io.Discard)
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", dl.Name, err)
	}
	if got != want {
		return fmt.Errorf("download %s: served %s, status.archive says %s", dl.Name, got, want)
	}
	return nil
}

// componentRestarts lists the Pods of component, at least one, and maps each Pod's name to the
// restarts of its containers.
func componentRestarts(ctx context.Context, component string) ([]corev1.Pod, map[string]int32) {
	GinkgoHelper()
	pods, err := cluster.ComponentPods(ctx, component)
	Expect(err).NotTo(HaveOccurred())
	Expect(pods).NotTo(BeEmpty(), "%s Pods", component)
	return pods, restartCounts(pods)
}

// restartCounts maps each Pod's name to the restarts of its containers.
func restartCounts(pods []corev1.Pod) map[string]int32 {
	counts := make(map[string]int32, len(pods))
	for _, p := range pods {
		for _, st := range p.Status.ContainerStatuses {
			counts[p.Name] += st.RestartCount
		}
	}
	return counts
}

// freeLocalPort asks the kernel for a free TCP port on 127.0.0.1. Another process could take it
// before the caller listens; on this test machine nothing else picks random ports.
func freeLocalPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free local port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// archiveObjects lists the keys of every object in the archive bucket.
func archiveObjects(ctx context.Context) (map[string]bool, error) {
	keys := map[string]bool{}
	for obj := range cluster.S3.ListObjects(ctx, cluster.Env.ArchiveBucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("listing bucket %s: %w", cluster.Env.ArchiveBucket, obj.Err)
		}
		keys[obj.Key] = true
	}
	return keys, nil
}

// workerLabels select every worker Job and worker Pod.
var workerLabels = client.MatchingLabels{cluster.ComponentLabel: cluster.WorkerComponent}

// workerJobs lists every worker Job in the demo namespace.
func workerJobs(ctx context.Context) ([]batchv1.Job, error) {
	var jobs batchv1.JobList
	err := cluster.ListInNamespace(ctx, &jobs, "worker Jobs", workerLabels)
	return jobs.Items, err
}

// workerPodsOfAll lists every worker Pod in the demo namespace.
func workerPodsOfAll(ctx context.Context) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := cluster.ListInNamespace(ctx, &pods, "worker Pods", workerLabels)
	return pods.Items, err
}

// ofDownloads counts the objects (worker Pods or Jobs) whose Download is one of names.
func ofDownloads[T any, PT interface {
	*T
	GetLabels() map[string]string
}](objects []T, names map[string]bool) int {
	n := 0
	for i := range objects {
		if names[PT(&objects[i]).GetLabels()[cluster.DownloadLabel]] {
			n++
		}
	}
	return n
}

// jobConditionTrue tells whether the Job has a condition of one of types with status True.
func jobConditionTrue(job *batchv1.Job, types ...batchv1.JobConditionType) bool {
	return slices.ContainsFunc(job.Status.Conditions, func(c batchv1.JobCondition) bool {
		return c.Status == corev1.ConditionTrue && slices.Contains(types, c.Type)
	})
}

// workerJobKeys maps the archive key of every worker Job in the namespace to the Download it
// serves, from the Jobs' arguments (see cluster.JobArchiveKey).
func workerJobKeys(ctx context.Context) (map[string]string, error) {
	jobs, err := workerJobs(ctx)
	if err != nil {
		return nil, err
	}
	keys := map[string]string{}
	for _, job := range jobs {
		if key, ok := cluster.JobArchiveKey(&job); ok {
			keys[key] = job.Labels[cluster.DownloadLabel]
		}
	}
	return keys, nil
}

// expectNoOrphanUploads records, as the drill's figure <drill>.uploads, how many incomplete
// uploads the archive bucket holds, and expects none of them to be orphaned (orphanUploads).
func expectNoOrphanUploads(ctx context.Context, drill string) {
	GinkgoHelper()
	orphans, total, err := orphanUploads(ctx)
	Expect(err).NotTo(HaveOccurred())
	figure(drill+".uploads", "%d incomplete uploads left in bucket %s, %d of them orphaned", total, cluster.Env.ArchiveBucket,
		len(orphans))
	Expect(orphans).To(BeEmpty())
}

// orphanUploads lists the incomplete uploads in the archive bucket that no Download still at
// work can finish or remove: uploads of unfinished Downloads (other clients share the bucket)
// are in flight, anything else is storage nobody will ever reclaim.
func orphanUploads(ctx context.Context) (orphans []string, total int, err error) {
	uploads, err := cluster.OpenUploads(ctx, "")
	if err != nil {
		return nil, 0, err
	}
	if len(uploads) == 0 {
		return nil, 0, nil
	}
	keys, err := workerJobKeys(ctx)
	if err != nil {
		return nil, 0, err
	}
	for _, u := range uploads {
		if name, ok := keys[u.Key]; ok {
			dl, err := cluster.GetDownload(ctx, name)
			switch {
			case err == nil && !cluster.Finished(dl):
				continue
			case err != nil && !apierrors.IsNotFound(err):
				return nil, 0, err
			}
		}
		orphans = append(orphans, fmt.Sprintf("%s (upload %s initiated %s)", u.Key, u.UploadID,
			u.Initiated.UTC().Format(time.RFC3339)))
	}
	return orphans, len(uploads), nil
}

// percentile is the p-th percentile (0-100) of durations, by the nearest-rank method.
func percentile(durations []time.Duration, p float64) time.Duration {
	if len(durations) == 0 {
		return 0
	}
	sorted := slices.Clone(durations)
	slices.Sort(sorted)
	rank := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// pollUntil calls fn every interval until it returns true or an error, or ctx ends.
func pollUntil(ctx context.Context, interval, timeout time.Duration, fn func(context.Context) (bool, error)) error {
	return wait.PollUntilContextTimeout(ctx, interval, timeout, true, fn)
}
