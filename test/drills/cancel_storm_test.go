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

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/cluster"
)

const (
	r6Downloads = 200
	// r6Rate makes each 64 MiB Download last about a minute: all are still at work when
	// cancelled, whether uploading or still waiting for a node slot.
	r6Rate = 1 * cluster.MiB
	// r6CancelAfter is how long the Downloads run before the cancel storm, and r6MinUploading
	// how many workers must be running and uploading by then.
	r6CancelAfter  = 20 * time.Second
	r6MinUploading = 5
	// r6Bound is how soon after the cancel storm nothing may be left.
	r6Bound = 3 * time.Minute
)

var _ = Describe("R6: cancel storm", Label(drillLabel, "R6"), Serial, func() {
	It("leaves no Pod, Job, Download, archive or upload behind after 200 Downloads are cancelled mid-flight", func(ctx SpecContext) {
		By(fmt.Sprintf("creating %d Downloads of 64 MiB at %d MiB/s", r6Downloads, r6Rate/cluster.MiB))
		dls := newDrillDownloads(r6Downloads, "R6", "drill-r6", []int64{cluster.File64MiB}, r6Rate)
		names := map[string]bool{}
		for _, dl := range dls {
			// A UUID, as the facade names its jobs: DELETE /v1/download/{jobId} accepts nothing else.
			dl.Name = uuid.NewString()
			names[dl.Name] = true
		}
		created := time.Now()
		createDownloads(ctx, dls)

		By(fmt.Sprintf("letting them run for %s, until some workers run and upload", r6CancelAfter))
		Eventually(ctx, func(g Gomega) {
			g.Expect(time.Since(created)).To(BeNumerically(">=", r6CancelAfter))
			running, err := r6RunningWorkers(ctx, names)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(running).To(BeNumerically(">=", r6MinUploading), "running worker Pods")
			uploading, err := r6Uploading(ctx, names)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(uploading).To(BeNumerically(">=", r6MinUploading), "multipart uploads in flight")
		}).WithTimeout(r6CancelAfter + 2*time.Minute).WithPolling(time.Second).Should(Succeed())
		current, err := drillDownloads(ctx, "R6")
		Expect(err).NotTo(HaveOccurred())
		running, err := r6RunningWorkers(ctx, names)
		Expect(err).NotTo(HaveOccurred())
		uploading, err := r6Uploading(ctx, names)
		Expect(err).NotTo(HaveOccurred())
		figure("R6.before", "after %s: Downloads %v, %d worker Pods running, %d multipart uploads in flight",
			time.Since(created).Round(time.Second), countPhases(current), running, uploading)

		By("cancelling half through DELETE /v1/download/{jobId} and deleting the other half through the Kubernetes API")
		viaFacade, viaKube := dls[:r6Downloads/2], dls[r6Downloads/2:]
		cancelled := time.Now()
		Expect(forEach(ctx, viaFacade, func(ctx context.Context, dl *downloadv1alpha1.Download) error {
			if err := cluster.API.Cancel(ctx, dl.Name); err != nil {
				return fmt.Errorf("cancelling job %s through the facade: %w", dl.Name, err)
			}
			return nil
		})).To(Succeed())
		facadeTook := time.Since(cancelled)
		Expect(forEach(ctx, viaKube, func(ctx context.Context, dl *downloadv1alpha1.Download) error {
			if err := cluster.K8s.Delete(ctx, dl); err != nil {
				return fmt.Errorf("deleting Download %s: %w", dl.Name, err)
			}
			return nil
		})).To(Succeed())
		figure("R6.cancel", "%d cancelled through the facade in %s (all 202), %d deleted through the Kubernetes API in %s",
			len(viaFacade), facadeTook.Round(10*time.Millisecond), len(viaKube),
			(time.Since(cancelled) - facadeTook).Round(10*time.Millisecond))

		By(fmt.Sprintf("waiting, at most %s, until nothing of them is left", r6Bound))
		gone := map[string]time.Duration{}
		Eventually(ctx, func(g Gomega) {
			left, err := r6Leftovers(ctx, names)
			g.Expect(err).NotTo(HaveOccurred())
			for what, n := range left {
				if _, seen := gone[what]; !seen && n == 0 {
					gone[what] = time.Since(cancelled)
				}
			}
			g.Expect(left).To(HaveEach(0), "left %s after the cancel", time.Since(cancelled).Round(time.Second))
		}).WithTimeout(r6Bound).WithPolling(2 * time.Second).Should(Succeed())
		for _, what := range []string{"Pods", "Jobs", "Downloads", "archives", "uploads"} {
			figure("R6.gone."+what, "none left %s after the cancel", gone[what].Round(time.Second))
		}
		expectNoOrphanUploads(ctx, "R6")
	}, SpecTimeout(10*time.Minute))
})

// r6RunningWorkers counts the running worker Pods of the Downloads in names.
func r6RunningWorkers(ctx context.Context, names map[string]bool) (int, error) {
	pods, err := workerPodsOfAll(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range pods {
		if names[p.Labels[cluster.DownloadLabel]] && p.Status.Phase == corev1.PodRunning {
			n++
		}
	}
	return n, nil
}

// r6Uploading counts the incomplete uploads of the Downloads in names.
func r6Uploading(ctx context.Context, names map[string]bool) (int, error) {
	uploads, err := cluster.OpenUploads(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range uploads {
		if keyOfAny(u.Key, names) {
			n++
		}
	}
	return n, nil
}

// keyOfAny reports whether an archive key belongs to one of the Downloads in names. Keys name
// their Download (see cluster.ArchiveKeyOf), and these names are UUIDs, so a substring cannot match
// by accident; unlike the Jobs' arguments, this still works for a Download whose Job is gone
// or was never created.
func keyOfAny(key string, names map[string]bool) bool {
	for name := range names {
		if strings.Contains(key, name) {
			return true
		}
	}
	return false
}

// r6Leftovers counts what is left of the Downloads in names: worker Pods, Jobs, the Downloads
// themselves, archive objects and incomplete uploads.
func r6Leftovers(ctx context.Context, names map[string]bool) (map[string]int, error) {
	left := map[string]int{}
	pods, err := workerPodsOfAll(ctx)
	if err != nil {
		return nil, err
	}
	left["Pods"] = ofDownloads(pods, names)
	jobs, err := workerJobs(ctx)
	if err != nil {
		return nil, err
	}
	left["Jobs"] = ofDownloads(jobs, names)
	dls, err := drillDownloads(ctx, "R6")
	if err != nil {
		return nil, err
	}
	left["Downloads"] = len(dls)
	objects, err := archiveObjects(ctx)
	if err != nil {
		return nil, err
	}
	left["archives"] = 0
	for key := range objects {
		if keyOfAny(key, names) {
			left["archives"]++
		}
	}
	left["uploads"], err = r6Uploading(ctx, names)
	if err != nil {
		return nil, err
	}
	return left, nil
}
