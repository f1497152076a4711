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

package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/events"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/statusdoc"
	"github.com/download-operator/download-operator/test/eventsink"
)

// eventsOf waits until the suite's receiver holds an event of every type in want for the
// Download, and returns the deliveries by type (the last of each).
func eventsOf(download *downloadv1alpha1.Download, want ...string) map[string]eventsink.Delivery {
	GinkgoHelper()
	byType := map[string]eventsink.Delivery{}
	Eventually(func(g Gomega) {
		for _, d := range eventReceiver.Of(download.Name) {
			byType[d.Event.Type()] = d
		}
		for _, t := range want {
			g.Expect(byType).To(HaveKey(t), "events of Download %s", download.Name)
		}
	}).Should(Succeed())
	return byType
}

// expectEnvelope checks what every event of download carries: a valid signature under the
// sink's key, CloudEvents attributes naming the Download, and an id fixed per Download and type.
func expectEnvelope(d eventsink.Delivery, download *downloadv1alpha1.Download, eventType string) events.Data {
	GinkgoHelper()
	Expect(d.ParseErr).NotTo(HaveOccurred(), "the CloudEvents SDK cannot read %s", d.Body)
	Expect(d.SignatureErr).NotTo(HaveOccurred(), "the signature of %s", eventType)
	Expect(d.Header.Get("Content-Type")).To(HavePrefix("application/cloudevents+json"))
	e := d.Event
	Expect(e.SpecVersion()).To(Equal("1.0"))
	Expect(e.ID()).To(Equal(events.ID(download.UID, eventType)))
	Expect(e.Source()).To(Equal("/apis/download.operator.dev/v1alpha1/namespaces/" + download.Namespace + "/downloads/" + download.Name))
	Expect(e.Subject()).To(Equal(download.Name))
	data, err := d.Data()
	Expect(err).NotTo(HaveOccurred())
	Expect(data.JobID).To(Equal(download.Name))
	Expect(data.Namespace).To(Equal(download.Namespace))
	Expect(data.ArchiveURL).To(Equal(publicFacadeURL + "/v1/download/" + download.Name + "/archive"))
	// Storage stays inside: neither the archive's key nor the storage hosts reach a sink.
	Expect(string(d.Body)).NotTo(ContainSubstring(archiveKey(download)))
	Expect(string(d.Body)).NotTo(ContainSubstring(minioSrv.Endpoint))
	Expect(string(d.Body)).NotTo(ContainSubstring("downloads.public.test:9000"))
	return data
}

var _ = Describe("Completion events", func() {
	It("sends started and completed for a Download that completes, signed, with its status and stable link", func() {
		download := newDownload(servedNamespace, 70000, 70007)
		done := completeDownload(download, []byte("the archive of 70000 and 70007"))

		got := eventsOf(done, events.TypeStarted, events.TypeCompleted)
		Expect(got).NotTo(HaveKey(events.TypeFailed))
		expectEnvelope(got[events.TypeStarted], done, events.TypeStarted)
		data := expectEnvelope(got[events.TypeCompleted], done, events.TypeCompleted)
		Expect(got[events.TypeCompleted].Event.Time().Equal(done.Status.CompletionTime.Time)).To(BeTrue(),
			"a completed event is dated at the completion, so every delivery carries the same time")
		Expect(data.Status.Status).To(Equal("completed"))
		Expect(data.Status.Size).To(HaveValue(Equal(done.Status.Archive.Size)))
		Expect(data.Status.SHA256).To(Equal(done.Status.Archive.SHA256))
		Expect(data.Status.Error).To(BeNil())
		Expect(data.Status.DownloadURL).To(BeEmpty(), "events may be stored and forwarded")
		Expect(data.Status.ArchiveURL).To(Equal(data.ArchiveURL))
		Expect(data.Status.ArchiveExpiresAt).To(Equal(done.ExpiresAt().UTC().Format(time.RFC3339)))
	})

	It("sends failed, with the public reason only, for a Download that fails", func() {
		failed := failDownload(newDownload(servedNamespace, 99999),
			&jobreport.Failure{Reason: downloadv1alpha1.ReasonSourceNotFound, Message: "source files/99999 is missing"},
			batchv1.JobReasonPodFailurePolicy, 1)

		got := eventsOf(failed, events.TypeStarted, events.TypeFailed)
		Expect(got).NotTo(HaveKey(events.TypeCompleted))
		data := expectEnvelope(got[events.TypeFailed], failed, events.TypeFailed)
		Expect(data.Status.Status).To(Equal("failed"))
		Expect(data.Status.Error).To(HaveValue(HaveField("Code", downloadv1alpha1.ReasonSourceNotFound)))
		Expect(data.Status.Error.Message).To(Equal(statusdoc.FailureText(downloadv1alpha1.ReasonSourceNotFound)),
			"the worker's message names 99999 only inside a key, so the text names no id")
		Expect(string(got[events.TypeFailed].Body)).NotTo(ContainSubstring("files/99999"),
			"the condition's message is for operators")
	})

	It("sends the events of recent transitions again after a restart, under the same ids", func() {
		done := completeDownload(newDownload(servedNamespace, 70000), []byte("restarted"))
		first := eventsOf(done, events.TypeCompleted)[events.TypeCompleted]

		restartManager()
		Eventually(func() []eventsink.Delivery {
			var completed []eventsink.Delivery
			for _, d := range eventReceiver.Of(done.Name) {
				if d.Event.Type() == events.TypeCompleted {
					completed = append(completed, d)
				}
			}
			return completed
		}).Should(ContainElement(And(
			HaveField("At", BeTemporally(">", first.At)),
			HaveField("SignatureErr", BeNil()),
			HaveField("Event.ID()", first.Event.ID()),
			HaveField("Event.Time()", BeTemporally("==", first.Event.Time())),
		)), "the new manager replays the completed event with its id")
	})
})
