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

package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"

	dlclient "github.com/download-operator/download-operator/pkg/client"
)

// CompletedJob initiates a job for ids through the facade and waits until it has completed, for
// specs that need a job whose status no longer changes.
func CompletedJob(ctx context.Context, ids ...int64) string {
	jobID := Initiate(ctx, ids)
	Eventually(ctx, func(g Gomega) {
		s, err := API.Status(ctx, jobID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.Status).To(Equal(dlclient.StateCompleted))
	}).Should(Succeed())
	return jobID
}

// Initiate asks the facade for an archive of ids and registers the job's removal as cleanup.
func Initiate(ctx context.Context, ids []int64) string {
	GinkgoHelper()
	return InitiateWith(ctx, API, ids)
}

// InitiateWith is Initiate through the client c, e.g. one that goes through a proxy.
func InitiateWith(ctx context.Context, c *dlclient.Client, ids []int64) string {
	GinkgoHelper()
	By(fmt.Sprintf("initiating a download of %v through the facade", ids))
	job, err := c.Initiate(ctx, ids, "")
	Expect(err).NotTo(HaveOccurred())
	Expect(job.JobID).NotTo(BeEmpty())
	GinkgoWriter.Printf("job %s: %s, eta %d s\n", job.JobID, job.Status, job.EtaSeconds)
	DeferCleanup(func(ctx SpecContext) {
		// The API's own cancel first; the Download must then go, finalizer and all.
		if err := API.Cancel(ctx, job.JobID); err != nil {
			GinkgoWriter.Printf("cancelling job %s through the facade: %v\n", job.JobID, err)
		}
		Expect(DeleteDownloadAndWait(ctx, job.JobID)).To(Succeed())
	}, NodeTimeout(DeleteTimeout+30*time.Second))
	Expect(job.Status).To(Equal(dlclient.StatePending))
	Expect(job.TotalFileIDs).To(Equal(len(ids)))

	// The job is a Download in the demo namespace, named by the job id, asking for ids in order.
	dl, err := GetDownload(ctx, job.JobID)
	Expect(err).NotTo(HaveOccurred())
	Expect(dl.Spec.FileIDs).To(Equal(ids))
	GinkgoWriter.Printf("Download %s: maxBytesPerSecond %d\n", dl.Name, ptr.Deref(dl.Spec.MaxBytesPerSecond, 0))
	return job.JobID
}

// RandomHex is n random bytes in hex, for ids no other run or spec uses.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
