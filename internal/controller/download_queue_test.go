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
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

var _ = Describe("Kueue queueing", func() {
	It("runs Jobs at once, unlabelled, when no queue is configured", func() {
		download := newDownload(servedNamespace, 70000)
		createDownload(download)
		job := waitForJob(download)
		Expect(job.Labels).NotTo(HaveKey(QueueNameLabel))
		Expect(job.Spec.Suspend).To(Or(BeNil(), HaveValue(BeFalse())))
		workerCredential(job)
	})

	It("creates the Job suspended in the namespace's queue, shows it Queued, and starts the credential and the clock on admission", func() {
		// Requests and limits as the controller's flags give them by default.
		resources := corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		}
		restartManager(func(o *Options) {
			o.QueueName = "everyone"
			o.NamespaceQueueNames = map[string]string{servedNamespace: "tenant-a"}
			o.WorkerResources = resources
		})
		DeferCleanup(func() { restartManager() })

		download := newDownload(servedNamespace, 70000)
		createDownload(download)
		job := waitForJob(download)

		By("labelling the Job, not its Pods, with the namespace's LocalQueue, and creating it suspended")
		Expect(job.Labels).To(HaveKeyWithValue(QueueNameLabel, "tenant-a"))
		Expect(job.Spec.Template.Labels).NotTo(HaveKey(QueueNameLabel))
		Expect(job.Spec.Suspend).To(HaveValue(BeTrue()))
		Expect(job.Spec.Template.Spec.Containers[0].Resources).To(Equal(resources), "Kueue counts the requests against the quota")

		By("showing the Download Pending, Queued, in progress for kstatus, with no start time")
		Eventually(func(g Gomega) {
			queued := fetch(download)
			g.Expect(queued.Status.Phase).To(Equal(downloadv1alpha1.PhasePending))
			g.Expect(meta.FindStatusCondition(queued.Status.Conditions, downloadv1alpha1.ConditionReconciling)).To(And(
				Not(BeNil()), HaveField("Reason", downloadv1alpha1.ReasonQueued)))
		}).Should(Succeed())
		queued := fetch(download)
		Expect(queued.Status.StartTime).To(BeNil())
		health, err := kstatusOf(queued)
		Expect(err).NotTo(HaveOccurred())
		Expect(health.Status).To(Equal(status.InProgressStatus))

		By("minting no worker credential while the Job waits: its lifetime would run out in the queue")
		secret := client.ObjectKey{Namespace: job.Namespace, Name: credentialSecretName(job.Name)}
		Consistently(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, secret, &corev1.Secret{}))
		}, "1s").Should(BeTrue())

		By("admitting the Job as Kueue does, by unsuspending it")
		admitted := time.Now()
		patch, err := json.Marshal(map[string]any{"spec": map[string]any{"suspend": false}})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Patch(ctx, job, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
		credential := workerCredential(job)
		expires, err := time.Parse(time.RFC3339, credential.Annotations[downloadv1alpha1.CredentialExpiresAnnotation])
		Expect(err).NotTo(HaveOccurred())
		Expect(expires).To(BeTemporally(">=", admitted.Add(credentialLifetime(download)).Add(-time.Minute)),
			"the credential lasts the whole deadline from admission")

		startJob(job, time.Second)
		Eventually(func() downloadv1alpha1.DownloadPhase { return fetch(download).Status.Phase }).
			Should(Equal(downloadv1alpha1.PhaseProcessing))
	})
})
