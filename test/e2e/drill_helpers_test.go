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
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	dlclient "github.com/download-operator/download-operator/pkg/client"
)

// The drills (docs/reliability.md) break the running system on purpose: they kill containers,
// stop MinIO and restart the apiserver. They carry the label "drill" so that `make test-e2e`
// leaves them out and `make test-drills` runs only them, each also labelled with its id.
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

// newDrillDownload is newDownload labelled with the drill's id.
func newDrillDownload(drill, prefix string, ids []int64, bytesPerSecond int64) *downloadv1alpha1.Download {
	dl := newDownload(prefix, ids, bytesPerSecond)
	dl.Labels[drillDownloadLabel] = drill
	return dl
}

// createDownloads creates dls concurrently and registers one cleanup that deletes them all and
// waits for every finalizer, concurrently too: one cleanup per Download, as createDownload
// registers, would wait for hundreds of finalizers one after the other.
func createDownloads(ctx context.Context, dls []*downloadv1alpha1.Download) {
	GinkgoHelper()
	names := make([]string, len(dls))
	for i, dl := range dls {
		names[i] = dl.Name
	}
	DeferCleanup(func(ctx SpecContext) {
		Expect(deleteDownloadsAndWait(ctx, names)).To(Succeed())
	}, NodeTimeout(deleteTimeout+time.Minute))
	Expect(forEach(ctx, dls, func(ctx context.Context, dl *downloadv1alpha1.Download) error {
		if err := k8s.Create(ctx, dl); err != nil {
			return fmt.Errorf("creating Download %s: %w", dl.Name, err)
		}
		return nil
	})).To(Succeed())
	GinkgoWriter.Printf("created %d Downloads: fileIds %v, maxBytesPerSecond %d\n",
		len(dls), dls[0].Spec.FileIDs, *dls[0].Spec.MaxBytesPerSecond)
}

// deleteDownloadsAndWait deletes the Downloads named names and waits until all are gone.
func deleteDownloadsAndWait(ctx context.Context, names []string) error {
	return forEach(ctx, names, deleteDownloadAndWait)
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
	if err := k8s.List(ctx, &list, client.InNamespace(env.Namespace),
		client.MatchingLabels{drillDownloadLabel: drill}); err != nil {
		return nil, fmt.Errorf("listing the Downloads of drill %s: %w", drill, err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// finished reports whether the Download reached a phase it never leaves.
func finished(dl *downloadv1alpha1.Download) bool {
	return dl.Status.Phase == downloadv1alpha1.PhaseCompleted || dl.Status.Phase == downloadv1alpha1.PhaseFailed
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
			if !finished(&dls[i]) {
				open = append(open, fmt.Sprintf("%s %s %d%%", dls[i].Name, dls[i].Status.Phase, dls[i].Status.Progress))
			}
		}
		g.Expect(open).To(BeEmpty(), "unfinished Downloads of drill %s", drill)
	}).WithTimeout(timeout).WithPolling(time.Second).Should(Succeed())
	return dls
}

// checkDelivered downloads a Completed Download's archive through its presigned URL and
// compares it with status.archive. With full, every entry is also checked against its source
// (verifyArchive); without, only the whole archive's size and sha256.
func checkDelivered(ctx context.Context, dl *downloadv1alpha1.Download, full bool) error {
	st := dl.Status
	if st.Phase != downloadv1alpha1.PhaseCompleted || st.Archive == nil || st.DownloadURL == "" {
		return fmt.Errorf("download %s is %s without archive or URL", dl.Name, st.Phase)
	}
	want := digest{Size: st.Archive.Size, SHA256: st.Archive.SHA256}
	var (
		got digest
		err error
	)
	if full {
		got, err = verifyArchive(ctx, st.DownloadURL, dl.Spec.FileIDs)
	} else {
		got, err = fetch(ctx, st.DownloadURL, io.Discard)
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", dl.Name, err)
	}
	if got != want {
		return fmt.Errorf("download %s: served %s, status.archive says %s", dl.Name, got, want)
	}
	return nil
}

// componentPods lists the operator's Pods of component (controller or facade).
func componentPods(ctx context.Context, component string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(env.Namespace),
		client.MatchingLabels{nameLabel: appName, componentLabel: component}); err != nil {
		return nil, fmt.Errorf("listing %s Pods: %w", component, err)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	return pods.Items, nil
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

// waitForDeploymentReady waits until every replica of the Deployment is ready again, so that
// the next drill starts from a healthy system.
func waitForDeploymentReady(ctx context.Context, name string, timeout time.Duration) {
	GinkgoHelper()
	Eventually(ctx, func(g Gomega) {
		var dep appsv1.Deployment
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: name}, &dep)).To(Succeed())
		g.Expect(deploymentReady(&dep)).To(Succeed())
	}).WithTimeout(timeout).Should(Succeed())
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

// openUploads lists every incomplete multipart upload in the archive bucket.
func openUploads(ctx context.Context) ([]minio.ObjectMultipartInfo, error) {
	var uploads []minio.ObjectMultipartInfo
	for upload := range s3.ListIncompleteUploads(ctx, env.ArchiveBucket, "", true) {
		if upload.Err != nil {
			return nil, fmt.Errorf("listing incomplete uploads of bucket %s: %w", env.ArchiveBucket, upload.Err)
		}
		uploads = append(uploads, upload)
	}
	return uploads, nil
}

// archiveObjects lists the keys of every object in the archive bucket.
func archiveObjects(ctx context.Context) (map[string]bool, error) {
	keys := map[string]bool{}
	for obj := range s3.ListObjects(ctx, env.ArchiveBucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("listing bucket %s: %w", env.ArchiveBucket, obj.Err)
		}
		keys[obj.Key] = true
	}
	return keys, nil
}

// workerJobKeys maps the archive key of every worker Job in the namespace to the Download it
// serves, from the Jobs' arguments (see archiveKeyOf).
func workerJobKeys(ctx context.Context) (map[string]string, error) {
	var jobs batchv1.JobList
	if err := k8s.List(ctx, &jobs, client.InNamespace(env.Namespace),
		client.MatchingLabels{componentLabel: workerComponent}); err != nil {
		return nil, fmt.Errorf("listing worker Jobs: %w", err)
	}
	keys := map[string]string{}
	for _, job := range jobs.Items {
		for _, c := range job.Spec.Template.Spec.Containers {
			for _, arg := range c.Args {
				if key, ok := strings.CutPrefix(arg, archiveKeyFlag); ok {
					keys[key] = job.Labels[downloadLabel]
				}
			}
		}
	}
	return keys, nil
}

// orphanUploads lists the incomplete uploads in the archive bucket that no Download still at
// work can finish or remove: uploads of unfinished Downloads (other clients share the bucket)
// are in flight, anything else is storage nobody will ever reclaim.
func orphanUploads(ctx context.Context) (orphans []string, total int, err error) {
	uploads, err := openUploads(ctx)
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
			dl, err := getDownload(ctx, name)
			switch {
			case err == nil && !finished(dl):
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

// httpStatusGet GETs u with c and returns the status code.
func httpStatusGet(ctx context.Context, c *http.Client, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("building GET %s: %w", u, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
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

// completedJob initiates a job for ids through the facade and waits until it has completed, for
// drills that need a job whose status no longer changes.
func completedJob(ctx context.Context, ids ...int64) string {
	jobID := initiate(ctx, ids)
	Eventually(ctx, func(g Gomega) {
		s, err := api.Status(ctx, jobID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.Status).To(Equal(dlclient.StateCompleted))
	}).Should(Succeed())
	return jobID
}
