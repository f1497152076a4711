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
	"io"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	dlclient "github.com/download-operator/download-operator/pkg/client"
	"github.com/download-operator/download-operator/test/cluster"
)

var _ = Describe("Facade", func() {
	// 96 MiB at the demo facade's 8 MiB/s cap: about 12 s, several progress reports.
	ids := []int64{cluster.File64MiB, cluster.File32MiB}

	It("follows a job by polling its status and delivers a verified archive", func(ctx SpecContext) {
		jobID := cluster.Initiate(ctx, ids)

		By("polling the status until the job completes")
		var (
			final    *dlclient.Status
			progress []int
		)
		Eventually(ctx, func(g Gomega) {
			s, err := cluster.API.Status(ctx, jobID)
			g.Expect(err).NotTo(HaveOccurred())
			if s.Status == dlclient.StateProcessing {
				progress = append(progress, s.Progress)
			}
			if s.Status == dlclient.StateFailed {
				StopTrying("the job failed").Wrap(s.Err()).Now()
			}
			final = s
			g.Expect(s.Status).To(Equal(dlclient.StateCompleted), "job %s is %s at %d%%", jobID, s.Status, s.Progress)
		}).Should(Succeed())
		expectProgressRose(progress)
		expectDeliverable(ctx, final, ids)
	}, SpecTimeout(6*time.Minute))

	It("follows a job over server-sent events and delivers a verified archive", func(ctx SpecContext) {
		jobID := cluster.Initiate(ctx, ids)

		By("reading the job's event stream until a terminal event")
		streamCtx, cancel := context.WithTimeout(ctx, cluster.DefaultWait)
		defer cancel()
		var events []dlclient.Status
		err := cluster.API.Events(streamCtx, jobID, "", func(s dlclient.Status) error {
			GinkgoWriter.Printf("event %s: %s %d%%\n", s.EventID, s.Status, s.Progress)
			events = append(events, s)
			return nil
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(events).NotTo(BeEmpty())

		var progress []int
		for _, s := range events {
			Expect(s.EventID).NotTo(BeEmpty(), "every event carries an id to resume from")
			Expect(s.JobID).To(Equal(jobID))
			if s.Status == dlclient.StateProcessing {
				progress = append(progress, s.Progress)
			}
		}
		final := events[len(events)-1]
		Expect(final.Err()).NotTo(HaveOccurred())
		Expect(final.Status).To(Equal(dlclient.StateCompleted))
		expectProgressRose(progress)
		expectDeliverable(ctx, &final, ids)
	}, SpecTimeout(6*time.Minute))
})

// expectProgressRose checks the progress a client saw while the job was processing: it never
// went backwards and rose at least once, so a client has something to show.
func expectProgressRose(values []int) {
	GinkgoHelper()
	GinkgoWriter.Printf("progress seen while processing: %v\n", values)
	rose := false
	for i := 1; i < len(values); i++ {
		Expect(values[i]).To(BeNumerically(">=", values[i-1]), "progress went backwards: %v", values)
		rose = rose || values[i] > values[i-1]
	}
	Expect(rose).To(BeTrue(), "progress never rose while the job was processing: %v", values)
}

// expectDeliverable downloads a completed job's archive twice: through pkg/client, which checks
// it against the status' size and sha256, and through cluster.VerifyArchive, which checks every entry.
func expectDeliverable(ctx context.Context, status *dlclient.Status, ids []int64) {
	GinkgoHelper()
	Expect(status.DownloadURL).NotTo(BeEmpty())
	Expect(status.SHA256).To(MatchRegexp(`^[0-9a-f]{64}$`))
	Expect(status.ExpiresAt).To(BeTemporally(">", time.Now()), "the URL must not be expired already")

	sum, n, err := cluster.API.Download(ctx, status, io.Discard, nil)
	var checksumErr *dlclient.ChecksumError
	Expect(errors.As(err, &checksumErr)).To(BeFalse(), "pkg/client rejected the archive: %v", err)
	Expect(err).NotTo(HaveOccurred())
	Expect(cluster.Digest{Size: n, SHA256: sum}).To(Equal(cluster.Digest{Size: status.Size, SHA256: status.SHA256}))

	got, err := cluster.VerifyArchive(ctx, status.DownloadURL, ids)
	Expect(err).NotTo(HaveOccurred())
	Expect(got).To(Equal(cluster.Digest{Size: status.Size, SHA256: status.SHA256}))
}
