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
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/download-operator/download-operator/internal/events"
	dlclient "github.com/download-operator/download-operator/pkg/client"
	"github.com/download-operator/download-operator/test/cluster"
	"github.com/download-operator/download-operator/test/eventsink"
)

var _ = Describe("Completion events", Label("events"), func() {
	It("posts signed started and completed CloudEvents to the demo's sink on the host", func(ctx SpecContext) {
		Expect(cluster.Env.EventSinkPort).NotTo(BeEmpty(), ".demo/env lacks EVENT_SINK_PORT: run hack/demo/up again")
		key, err := os.ReadFile(cluster.Env.EventSinkKeyFile)
		Expect(err).NotTo(HaveOccurred(), "reading the demo sink's HMAC key (EVENT_SINK_KEY_FILE)")
		Expect(len(key)).To(BeNumerically(">=", events.MinKeyBytes))

		By("listening where the chart points the demo namespace's sink, on every address: the controller Pod reaches the host at the node IP")
		receiver, err := eventsink.Start("0.0.0.0:"+cluster.Env.EventSinkPort, key, nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(receiver.Close)

		jobID := cluster.Initiate(ctx, []int64{cluster.File1MiB, cluster.File32MiB})
		final, err := cluster.API.Wait(ctx, jobID, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(final.Status).To(Equal(dlclient.StateCompleted), "%+v", final)
		dl, err := cluster.GetDownload(ctx, jobID)
		Expect(err).NotTo(HaveOccurred())

		By("waiting for the signed events of the job")
		byType := map[string]eventsink.Delivery{}
		Eventually(ctx, func(g Gomega) {
			for _, d := range receiver.Of(jobID) {
				byType[d.Event.Type()] = d
			}
			g.Expect(byType).To(HaveKey(events.TypeStarted))
			g.Expect(byType).To(HaveKey(events.TypeCompleted))
		}).WithTimeout(2 * time.Minute).Should(Succeed())
		Expect(byType).NotTo(HaveKey(events.TypeFailed))

		for eventType, d := range byType {
			GinkgoWriter.Printf("%s from %s: %s\n", eventType, d.Header.Get("User-Agent"), d.Body)
			Expect(d.ParseErr).NotTo(HaveOccurred())
			Expect(d.SignatureErr).NotTo(HaveOccurred(), "the signature of %s under the demo sink's key", eventType)
			Expect(d.Event.ID()).To(Equal(events.ID(dl.UID, eventType)))
			Expect(d.Event.Source()).To(Equal("/apis/download.operator.dev/v1alpha1/namespaces/" + cluster.Env.Namespace + "/downloads/" + jobID))
			Expect(d.Event.Subject()).To(Equal(jobID))
		}
		data, err := byType[events.TypeCompleted].Data()
		Expect(err).NotTo(HaveOccurred())
		Expect(data.JobID).To(Equal(jobID))
		Expect(data.Namespace).To(Equal(cluster.Env.Namespace))
		// hack/demo/up sets the chart's events.publicBaseUrl to the facade's address.
		Expect(data.ArchiveURL).To(Equal(cluster.Env.FacadeURL + "/v1/download/" + jobID + "/archive"))
		Expect(data.Status.Status).To(Equal("completed"))
		Expect(data.Status.Size).To(HaveValue(Equal(final.Size)))
		Expect(data.Status.SHA256).To(Equal(final.SHA256))
		Expect(string(byType[events.TypeCompleted].Body)).NotTo(ContainSubstring(jobID+".zip"),
			"the archive's key stays out of events")
	}, SpecTimeout(6*time.Minute))
})
