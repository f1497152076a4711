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
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/keymutex"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/manifest"
	"github.com/download-operator/download-operator/internal/worker"
	"github.com/download-operator/download-operator/test/chartrbac"
)

// storeArchive puts bytes where the worker would have streamed the archive and returns the
// result the worker would report.
func storeArchive(download *downloadv1alpha1.Download, content []byte) jobreport.Result {
	GinkgoHelper()
	key := archiveKey(download)
	_, err := s3.PutObject(ctx, archiveBucket, key, bytes.NewReader(content), int64(len(content)),
		minio.PutObjectOptions{ContentType: "application/zip"})
	Expect(err).NotTo(HaveOccurred())
	sum := sha256.Sum256(content)
	return jobreport.Result{Bucket: archiveBucket, Key: key, Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}
}

// workerCredential returns the credential Secret the controller made for a Job.
func workerCredential(job *batchv1.Job) *corev1.Secret {
	GinkgoHelper()
	var secret corev1.Secret
	Eventually(func() error {
		return k8sClient.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: credentialSecretName(job.Name)}, &secret)
	}).Should(Succeed())
	return &secret
}

// completeDownload runs a Download through a successful Job and returns it Completed.
func completeDownload(download *downloadv1alpha1.Download, content []byte) *downloadv1alpha1.Download {
	GinkgoHelper()
	createDownload(download)
	job := waitForJob(download)
	startJob(job, 5*time.Second)
	succeedJob(job, storeArchive(download, content))
	return eventuallyPhase(download, downloadv1alpha1.PhaseCompleted)
}

// failDownload runs a Download through a Job that fails as the worker reported, and returns it Failed.
func failDownload(download *downloadv1alpha1.Download, failure *jobreport.Failure, jobReason string, failedPods int32) *downloadv1alpha1.Download {
	GinkgoHelper()
	createDownload(download)
	job := waitForJob(download)
	startJob(job, time.Second)
	failJob(job, failure, jobReason, failedPods)
	return eventuallyPhase(download, downloadv1alpha1.PhaseFailed)
}

// getThroughPublicHost fetches a presigned URL the way a browser would reach the public endpoint:
// the request goes to MinIO, but carries the public Host header the URL was signed for.
func getThroughPublicHost(signed string) (*http.Response, []byte) {
	GinkgoHelper()
	u, err := url.Parse(signed)
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+minioSrv.Endpoint+u.RequestURI(), nil)
	Expect(err).NotTo(HaveOccurred())
	req.Host = u.Host
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp, body
}

func eventsFor(download *downloadv1alpha1.Download) []eventsv1.Event {
	GinkgoHelper()
	var list eventsv1.EventList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(download.Namespace))).To(Succeed())
	var matching []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == download.Name {
			matching = append(matching, e)
		}
	}
	return matching
}

// directReconciler reconciles outside the manager, as the chart's controller ServiceAccount, for
// tests that move the fake clock and need the reconcile that a real-time requeue would only
// bring much later.
func directReconciler() *DownloadReconciler {
	return &DownloadReconciler{
		Client: controllerClient, APIReader: controllerClient, Scheme: env.Scheme,
		Recorder: events.NewFakeRecorder(10), Storage: store, Clock: fakeClock, Options: testOptions(),
		requestLocks: keymutex.NewHashed(0),
	}
}

func reconcileNow(download *downloadv1alpha1.Download) reconcile.Result {
	GinkgoHelper()
	result, err := directReconciler().Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(download)})
	Expect(err).NotTo(HaveOccurred())
	return result
}

var _ = Describe("Download controller", func() {
	It("creates exactly one worker Job with the spec's limits, an owner, a failure policy and a restricted Pod", func() {
		download := newDownload(servedNamespace, 70000, 70001, 70002)
		download.Spec.BackoffLimit = ptr.To[int32](2)
		download.Spec.ActiveDeadlineSeconds = ptr.To[int64](120)
		download.Spec.MaxBytesPerSecond = ptr.To[int64](1 << 20)
		createDownload(download)
		job := waitForJob(download)
		current := eventuallyPhase(download, downloadv1alpha1.PhasePending)

		Expect(current.Status.JobName).To(Equal(job.Name))
		Expect(current.Status.FileCount).To(BeEquivalentTo(3))
		Expect(current.Finalizers).To(ContainElement(cleanupFinalizer))
		progressing := meta.FindStatusCondition(current.Status.Conditions, downloadv1alpha1.ConditionProgressing)
		Expect(progressing).NotTo(BeNil())
		Expect(progressing.Reason).To(Equal(downloadv1alpha1.ReasonJobCreated))
		Expect(current.Status.ObservedGeneration).To(Equal(current.Generation))

		Expect(metav1.IsControlledBy(job, current)).To(BeTrue(), "the Job must be owned by its Download for garbage collection")
		Expect(job.Spec.BackoffLimit).To(HaveValue(BeEquivalentTo(2)))
		Expect(job.Spec.ActiveDeadlineSeconds).To(HaveValue(BeEquivalentTo(120)))
		Expect(job.Spec.TTLSecondsAfterFinished).To(HaveValue(BeEquivalentTo(downloadv1alpha1.DefaultTTLSecondsAfterFinished)))

		rules := job.Spec.PodFailurePolicy.Rules
		Expect(rules).To(HaveLen(2))
		Expect(rules[0].Action).To(Equal(batchv1.PodFailurePolicyActionFailJob))
		Expect(rules[0].OnExitCodes.Values).To(ContainElement(int32(jobreport.ExitPermanent)))
		Expect(rules[0].OnExitCodes.Values).NotTo(ContainElement(int32(jobreport.ExitRetryable)))
		Expect(rules[1].Action).To(Equal(batchv1.PodFailurePolicyActionIgnore))
		Expect(rules[1].OnPodConditions[0].Type).To(Equal(corev1.DisruptionTarget))

		pod := job.Spec.Template.Spec
		Expect(pod.RestartPolicy).To(Equal(corev1.RestartPolicyNever))
		Expect(pod.ServiceAccountName).To(Equal("download-worker"))
		Expect(pod.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
		Expect(pod.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
		Expect(pod.Containers).To(HaveLen(1))
		worker := pod.Containers[0]
		Expect(worker.Image).To(Equal("download-operator:test"))
		Expect(worker.Args[0]).To(Equal("worker"))
		Expect(worker.Args).To(ContainElements(
			"--job-name="+job.Name, "--file-ids=70000,70001,70002", "--archive-key="+archiveKey(download),
			"--max-bytes-per-second=1048576", "--storage-endpoint="+minioSrv.Endpoint))
		Expect(worker.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
		Expect(worker.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
		Expect(worker.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
		secretRefs := map[string]string{}
		for _, e := range worker.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				Expect(e.ValueFrom.SecretKeyRef.Name).To(Equal(credentialSecretName(job.Name)))
				secretRefs[e.Name] = e.ValueFrom.SecretKeyRef.Key
			}
		}
		Expect(secretRefs).To(Equal(map[string]string{
			"STORAGE_ACCESS_KEY": StorageAccessKeyKey, "STORAGE_SECRET_KEY": StorageSecretKeyKey,
			"STORAGE_SESSION_TOKEN": StorageSessionTokenKey,
		}))

		By("handing the worker a short-lived credential of its own in a Secret the Job owns")
		secret := workerCredential(job)
		Expect(secret.OwnerReferences).To(ConsistOf(And(
			HaveField("Kind", "Job"), HaveField("Name", job.Name), HaveField("UID", job.UID))))
		Expect(secret.Immutable).To(HaveValue(BeTrue()))
		Expect(string(secret.Data[StorageAccessKeyKey])).NotTo(BeEmpty())
		Expect(string(secret.Data[StorageAccessKeyKey])).NotTo(Equal(operatorAccessKey), "the operator's own key must stay in the controller")
		Expect(string(secret.Data[StorageSessionTokenKey])).NotTo(BeEmpty())
		// 120 s of deadline and the margin are below STS's minimum of 15 minutes.
		expires, err := time.Parse(time.RFC3339, secret.Annotations[downloadv1alpha1.CredentialExpiresAnnotation])
		Expect(err).NotTo(HaveOccurred())
		Expect(expires).To(BeTemporally("~", time.Now().Add(15*time.Minute), time.Minute))

		Consistently(func() []batchv1.Job { return workerJobs(download) }, "2s").Should(HaveLen(1))
	})

	It("hands the facade's trace to the worker through the Job's TRACEPARENT", func() {
		const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		download := newDownload(servedNamespace, 70000)
		download.Annotations = map[string]string{
			downloadv1alpha1.TraceparentAnnotation: "00-" + traceID + "-00f067aa0ba902b7-01",
		}
		createDownload(download)
		env := map[string]string{}
		for _, e := range waitForJob(download).Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		Expect(env).To(HaveKeyWithValue("TRACEPARENT", MatchRegexp("^00-"+traceID+"-[0-9a-f]{16}-01$")))

		untraced := newDownload(servedNamespace, 70000)
		createDownload(untraced)
		Expect(waitForJob(untraced).Spec.Template.Spec.Containers[0].Env).NotTo(
			ContainElement(HaveField("Name", "TRACEPARENT")), "a Download without a trace must not get a made-up one")
	})

	It("mirrors worker progress into status with an ETA from the observed rate", func() {
		download := newDownload(servedNamespace, 70000)
		createDownload(download)
		job := waitForJob(download)
		startJob(job, 10*time.Second)
		annotateJob(job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: 25 << 20, BytesTotal: 100 << 20})

		current := eventuallyPhase(download, downloadv1alpha1.PhaseProcessing)
		Eventually(func(g Gomega) {
			current = fetch(download)
			g.Expect(current.Status.Progress).To(BeEquivalentTo(25))
		}).Should(Succeed())
		Expect(current.Status.BytesDone).To(BeEquivalentTo(25 << 20))
		Expect(current.Status.BytesTotal).To(BeEquivalentTo(100 << 20))
		// 25 MiB in 10 s leaves 75 MiB at 2.5 MiB/s: 30 s.
		Expect(current.Status.EtaSeconds).To(HaveValue(BeEquivalentTo(30)))
		Expect(current.Status.StartTime).NotTo(BeNil())
		Expect(current.Status.Attempts).To(BeEquivalentTo(1))
		Expect(meta.FindStatusCondition(current.Status.Conditions, downloadv1alpha1.ConditionProgressing).Reason).
			To(Equal(downloadv1alpha1.ReasonArchiving))
	})

	It("stays Processing between worker attempts instead of going back to Pending", func() {
		download := newDownload(servedNamespace, 70000)
		createDownload(download)
		job := waitForJob(download)
		startJob(job, time.Second)
		eventuallyPhase(download, downloadv1alpha1.PhaseProcessing)

		By("the first Pod failing with a retryable error while the Job controller has not started the next")
		updateJobStatus(job, func(s *batchv1.JobStatus) { s.Active, s.Ready, s.Failed = 0, ptr.To[int32](0), 1 })
		Eventually(func() string {
			return meta.FindStatusCondition(fetch(download).Status.Conditions, downloadv1alpha1.ConditionProgressing).Reason
		}).Should(Equal(downloadv1alpha1.ReasonRetrying))
		Consistently(func() downloadv1alpha1.DownloadPhase { return fetch(download).Status.Phase }, "1s").
			Should(Equal(downloadv1alpha1.PhaseProcessing))
	})

	It("restarts progress at 0 when a retry replaces a failed worker, instead of freezing at its count", func() {
		download := newDownload(servedNamespace, 70000)
		createDownload(download)
		job := waitForJob(download)
		startJob(job, 10*time.Second)
		annotateJob(job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: 80, BytesTotal: 100, Pod: "worker-a"})
		Eventually(func() int64 { return fetch(download).Status.BytesDone }).Should(BeEquivalentTo(80))

		By("the first Pod failing and the retry's Pod running, before the retry reports anything")
		updateJobStatus(job, func(s *batchv1.JobStatus) { s.Active, s.Ready, s.Failed = 1, ptr.To[int32](1), 1 })
		Eventually(func(g Gomega) {
			current := fetch(download)
			g.Expect(current.Status.Attempts).To(BeEquivalentTo(2))
			g.Expect(current.Status.BytesDone).To(BeZero(), "the failed attempt's 80 bytes are not the retry's")
			g.Expect(current.Status.Progress).To(BeZero())
			g.Expect(current.Status.BytesTotal).To(BeEquivalentTo(100))
		}).Should(Succeed())

		By("the retry's own reports, below the failed attempt's count")
		annotateJob(job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: 10, BytesTotal: 100, Pod: "worker-b"})
		Eventually(func() int64 { return fetch(download).Status.BytesDone }).Should(BeEquivalentTo(10))
		annotateJob(job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: 30, BytesTotal: 100, Pod: "worker-b"})
		Eventually(func() int32 { return fetch(download).Status.Progress }).Should(BeEquivalentTo(30))
	})

	It("completes a Download with missingFiles: Skip and lists the ids its worker skipped", func() {
		download := newDownload(servedNamespace, 70000, 70001, 99999)
		download.Spec.MissingFiles = downloadv1alpha1.MissingFilesSkip
		createDownload(download)
		job := waitForJob(download)
		Expect(job.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--missing-files=Skip"))
		startJob(job, time.Second)
		result := storeArchive(download, []byte("the archive without 99999"))
		result.SkippedFileIDs = []int64{99999}
		succeedJob(job, result)

		current := eventuallyPhase(download, downloadv1alpha1.PhaseCompleted)
		Expect(current.Status.SkippedFileIDs).To(Equal([]int64{99999}))
		Expect(current.Status.DownloadURL).NotTo(BeEmpty())
	})

	It("counts a worker Pod the Job controller has not counted yet, so attempts never dip", func() {
		download := newDownload(servedNamespace, 70000)
		createDownload(download)
		job := waitForJob(download)
		startJob(job, time.Second)
		Eventually(func() int32 { return fetch(download).Status.Attempts }).Should(BeEquivalentTo(1))

		By("the first Pod ending: the Job controller holds it in uncountedTerminatedPods, in no counter")
		updateJobStatus(job, func(s *batchv1.JobStatus) {
			s.Active, s.Ready = 0, ptr.To[int32](0)
			s.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Failed: []types.UID{"first-worker-pod"}}
		})
		reconcileNow(download)
		Expect(fetch(download).Status.Attempts).To(BeEquivalentTo(1))

		By("a Job read that counts fewer Pods than status already shows, as a lagging cache can give")
		current := fetch(download)
		stale := job.DeepCopy()
		stale.Status = batchv1.JobStatus{StartTime: job.Status.StartTime}
		Expect(directReconciler().mirrorJob(ctx, current, stale)).To(Succeed())
		Expect(current.Status.Attempts).To(BeEquivalentTo(1))

		By("the retry running once the Job controller has counted the failed Pod")
		updateJobStatus(job, func(s *batchv1.JobStatus) {
			s.Active, s.Ready, s.Failed = 1, ptr.To[int32](1), 1
			s.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
		})
		Eventually(func() int32 { return fetch(download).Status.Attempts }).Should(BeEquivalentTo(2))
	})

	It("completes with a URL signed for the public endpoint that really downloads the archive", func() {
		content := []byte("PK\x03\x04 pretend this is the archive the worker streamed")
		download := completeDownload(newDownload(servedNamespace, 70000, 70001), content)

		Expect(download.Status.Progress).To(BeEquivalentTo(100))
		Expect(download.Status.Archive).NotTo(BeNil())
		Expect(download.Status.Archive.Key).To(Equal(archiveKey(download)))
		Expect(download.Status.Archive.Size).To(BeEquivalentTo(len(content)))
		Expect(download.Status.CompletionTime).NotTo(BeNil())
		Expect(download.Status.URLExpiresAt.Time).To(Equal(fakeClock.Now().Add(15 * time.Minute)))
		Expect(meta.IsStatusConditionTrue(download.Status.Conditions, downloadv1alpha1.ConditionComplete)).To(BeTrue())
		Expect(meta.IsStatusConditionFalse(download.Status.Conditions, downloadv1alpha1.ConditionProgressing)).To(BeTrue())

		signed, err := url.Parse(download.Status.DownloadURL)
		Expect(err).NotTo(HaveOccurred())
		Expect(signed.Host).To(Equal("downloads.public.test:9000"), "the URL must be signed for the public endpoint")
		Expect(signed.Query().Get("response-content-disposition")).To(ContainSubstring("download-" + download.Name + ".zip"))

		resp, body := getThroughPublicHost(download.Status.DownloadURL)
		Expect(resp.StatusCode).To(Equal(http.StatusOK), string(body))
		Expect(body).To(Equal(content))
		Expect(resp.Header.Get("Content-Disposition")).To(ContainSubstring("download-" + download.Name + ".zip"))

		Eventually(func() []eventsv1.Event { return eventsFor(download) }).Should(
			ContainElement(HaveField("Reason", downloadv1alpha1.ReasonArchiveReady)))
	})

	DescribeTable("fails with a reason a person understands, and an Event",
		func(failure *jobreport.Failure, jobReason string, wantReason, wantMessage string) {
			download := newDownload(servedNamespace, 70000, 70001)
			current := failDownload(download, failure, jobReason, 1)
			failed := meta.FindStatusCondition(current.Status.Conditions, downloadv1alpha1.ConditionFailed)
			Expect(failed).NotTo(BeNil())
			Expect(failed.Status).To(Equal(metav1.ConditionTrue))
			Expect(failed.Reason).To(Equal(wantReason))
			Expect(failed.Message).To(ContainSubstring(wantMessage))
			Expect(current.Status.CompletionTime).NotTo(BeNil())
			Expect(current.Status.DownloadURL).To(BeEmpty())

			Eventually(func() []eventsv1.Event { return eventsFor(download) }).Should(ContainElement(And(
				HaveField("Reason", wantReason), HaveField("Type", corev1.EventTypeWarning))))
			Consistently(func() []batchv1.Job { return workerJobs(download) }, "1s").Should(HaveLen(1),
				"a failed Download never gets a new Job")
		},
		Entry("missing source files (permanent, via podFailurePolicy)",
			&jobreport.Failure{Reason: downloadv1alpha1.ReasonSourceNotFound, Message: "files 70001 do not exist", MissingFileIDs: []int64{70001}},
			batchv1.JobReasonPodFailurePolicy, downloadv1alpha1.ReasonSourceNotFound, "70001"),
		Entry("storage errors until the retries ran out",
			&jobreport.Failure{Reason: downloadv1alpha1.ReasonStorageError, Message: "storage unreachable: connection refused"},
			batchv1.JobReasonBackoffLimitExceeded, downloadv1alpha1.ReasonStorageError, "connection refused"),
		Entry("the deadline, whatever the last attempt said",
			&jobreport.Failure{Reason: downloadv1alpha1.ReasonStorageError, Message: "interrupted"},
			batchv1.JobReasonDeadlineExceeded, downloadv1alpha1.ReasonDeadlineExceeded, "activeDeadlineSeconds"),
		Entry("retries exhausted without a report (a crashing worker)",
			nil, batchv1.JobReasonBackoffLimitExceeded, downloadv1alpha1.ReasonBackoffLimitExceeded, "every attempt"),
	)

	It("fails a Download outside the served namespaces instead of ignoring it", func() {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "not-served"}})).To(Succeed())
		download := newDownload("not-served", 70000)
		createDownload(download)

		current := eventuallyPhase(download, downloadv1alpha1.PhaseFailed)
		failed := meta.FindStatusCondition(current.Status.Conditions, downloadv1alpha1.ConditionFailed)
		Expect(failed.Reason).To(Equal(downloadv1alpha1.ReasonNamespaceNotServed))
		Expect(failed.Message).To(ContainSubstring("--namespaces"))
		Consistently(func() []batchv1.Job { return workerJobs(download) }, "1s").Should(BeEmpty())
	})

	It("on deletion waits for worker Pods, then removes the Job, the archive and uploads in flight", func() {
		download := newDownload(servedNamespace, 70000)
		createDownload(download)
		job := waitForJob(download)
		startJob(job, time.Second)
		storeArchive(download, []byte("partial or complete archive"))
		core := minio.Core{Client: s3}
		_, err := core.NewMultipartUpload(ctx, archiveBucket, archiveKey(download), minio.PutObjectOptions{})
		Expect(err).NotTo(HaveOccurred())
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-worker", Namespace: servedNamespace, Labels: job.Spec.Template.Labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "download-operator:test"}}},
		}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		Eventually(func() []string { return fetch(download).Finalizers }).Should(ContainElement(cleanupFinalizer))

		Expect(k8sClient.Delete(ctx, download)).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &batchv1.Job{})
		}).Should(Satisfy(apierrors.IsNotFound))
		Consistently(func() error {
			_, err := s3.StatObject(ctx, archiveBucket, archiveKey(download), minio.StatObjectOptions{})
			return err
		}, "2s").Should(Succeed(), "the archive must stay while a worker Pod could still write it")

		Expect(k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0))).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(download), &downloadv1alpha1.Download{})
		}).Should(Satisfy(apierrors.IsNotFound))
		_, err = s3.StatObject(ctx, archiveBucket, archiveKey(download), minio.StatObjectOptions{})
		Expect(minio.ToErrorResponse(err).Code).To(Equal(minio.NoSuchKey))
		for upload := range s3.ListIncompleteUploads(ctx, archiveBucket, archiveKey(download), false) {
			Fail("an incomplete upload survived the deletion: " + upload.UploadID)
		}
	})

	It("re-signs the URL before it expires and deletes the Download when its TTL runs out", func() {
		download := newDownload(servedNamespace, 70000)
		download.Spec.TTLSecondsAfterFinished = ptr.To[int32](300)
		download.Spec.URLExpirySeconds = ptr.To[int32](100)
		download = completeDownload(download, []byte("archive"))
		firstExpiry := download.Status.URLExpiresAt.Time
		Expect(firstExpiry).To(Equal(fakeClock.Now().Add(100 * time.Second)))

		By("asking to come back when a fifth of the URL's validity is left")
		result := reconcileNow(download)
		Expect(result.RequeueAfter).To(Equal(80 * time.Second))

		By("re-signing once that moment has come")
		fakeClock.Step(85 * time.Second)
		reconcileNow(download)
		refreshed := fetch(download)
		Expect(refreshed.Status.URLExpiresAt.Time).To(Equal(firstExpiry.Add(85 * time.Second)))
		resp, _ := getThroughPublicHost(refreshed.Status.DownloadURL)
		Expect(resp.StatusCode).To(Equal(http.StatusOK))

		By("never signing beyond the Download's own expiry")
		fakeClock.Step(160 * time.Second) // 245 s after completion: 55 s of life left
		reconcileNow(download)
		Expect(fetch(download).Status.URLExpiresAt.Time).To(Equal(download.Status.CompletionTime.Add(300 * time.Second)))

		By("deleting the Download, and with it the archive, once the TTL has passed")
		fakeClock.Step(60 * time.Second)
		reconcileNow(download)
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(download), &downloadv1alpha1.Download{})
		}).Should(Satisfy(apierrors.IsNotFound))
		_, err := s3.StatObject(ctx, archiveBucket, archiveKey(download), minio.StatObjectOptions{})
		Expect(minio.ToErrorResponse(err).Code).To(Equal(minio.NoSuchKey))
	})

	It("folds the changes of a Download in flight into one status write per interval, and writes finishing at once", func() {
		// Only this reconciler may write, so that every write below is its own.
		stopManager()
		<-managerDone
		DeferCleanup(startManager)
		r := directReconciler()
		r.Options.StatusWriteInterval = 5 * time.Second
		reconcileOnce := func(download *downloadv1alpha1.Download) time.Duration {
			GinkgoHelper()
			result, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(download)})
			Expect(err).NotTo(HaveOccurred())
			return result.RequeueAfter
		}
		download := newDownload(servedNamespace, 70000)
		createDownload(download)

		By("creating the Job without writing status, and coming back when the interval has passed")
		Expect(reconcileOnce(download)).To(Equal(5 * time.Second))
		job := waitForJob(download)
		Expect(fetch(download).Status).To(Equal(downloadv1alpha1.DownloadStatus{}))

		By("holding back progress inside the interval")
		startJob(job, time.Second)
		annotateJob(job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: 10, BytesTotal: 100})
		fakeClock.Step(2 * time.Second)
		Expect(reconcileOnce(download)).To(Equal(3 * time.Second))
		Expect(fetch(download).Status.Phase).To(BeEmpty())

		By("writing everything seen so far in one write once it has passed")
		fakeClock.Step(3 * time.Second)
		reconcileOnce(download)
		written := fetch(download)
		Expect(written.Status.Phase).To(Equal(downloadv1alpha1.PhaseProcessing))
		Expect(written.Status.BytesDone).To(BeEquivalentTo(10))
		Expect(written.Status.JobName).To(Equal(job.Name))
		annotateJob(job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: 20, BytesTotal: 100})
		Expect(reconcileOnce(download)).To(Equal(5 * time.Second))
		Expect(fetch(download).ResourceVersion).To(Equal(written.ResourceVersion))

		By("writing the completion at once")
		succeedJob(job, storeArchive(download, []byte("archive")))
		reconcileOnce(download)
		Expect(fetch(download).Status.Phase).To(Equal(downloadv1alpha1.PhaseCompleted))
	})

	It("keeps a finished Download finished after its Job is gone", func() {
		download := completeDownload(newDownload(servedNamespace, 70000), []byte("archive"))
		job := waitForJob(download)
		Expect(k8sClient.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
		Eventually(func() []batchv1.Job { return workerJobs(download) }).Should(BeEmpty())

		reconcileNow(download)
		Consistently(func() []batchv1.Job { return workerJobs(download) }, "1s").Should(BeEmpty())
		current := fetch(download)
		Expect(current.Status.Phase).To(Equal(downloadv1alpha1.PhaseCompleted))
		Expect(current.Status.DownloadURL).To(Equal(download.Status.DownloadURL))
	})

	It("creates no second Job when the controller restarts, and resumes mirroring", func() {
		download := newDownload(servedNamespace, 70000)
		createDownload(download)
		job := waitForJob(download)
		eventuallyPhase(download, downloadv1alpha1.PhasePending)

		restartManager()
		startJob(job, 4*time.Second)
		annotateJob(job, jobreport.ProgressAnnotation, jobreport.Progress{BytesDone: 50, BytesTotal: 100})
		Eventually(func() int32 { return fetch(download).Status.Progress }).Should(BeEquivalentTo(50))

		jobs := workerJobs(download)
		Expect(jobs).To(HaveLen(1))
		Expect(jobs[0].UID).To(Equal(job.UID))
	})

	It("runs the real worker with the Job's own arguments, end to end to a downloadable zip", func() {
		sources := map[int64][]byte{70000: bytes.Repeat([]byte("csv,row\n"), 10000), 70001: []byte("small file")}
		for id, content := range sources {
			_, err := s3.PutObject(ctx, "files", strconv.FormatInt(id, 10), bytes.NewReader(content), int64(len(content)), minio.PutObjectOptions{})
			Expect(err).NotTo(HaveOccurred())
		}
		download := newDownload(servedNamespace, 70000, 70001)
		createDownload(download)
		job := waitForJob(download)
		startJob(job, time.Second)

		By("running download-operator worker with the container's args and env, as the kubelet would")
		kubeconfig := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
		workerUser, err := chartRelease.Identity(chartrbac.Worker, servedNamespace)
		Expect(err).NotTo(HaveOccurred())
		raw, err := workerUser.Kubeconfig()
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(kubeconfig, raw, 0o600)).To(Succeed())
		// The worker gets exactly what its Pod would: the credential minted for this Download.
		credential := workerCredential(job)
		for name, value := range map[string]string{
			"POD_NAMESPACE":         servedNamespace,
			"STORAGE_ACCESS_KEY":    string(credential.Data[StorageAccessKeyKey]),
			"STORAGE_SECRET_KEY":    string(credential.Data[StorageSecretKeyKey]),
			"STORAGE_SESSION_TOKEN": string(credential.Data[StorageSessionTokenKey]),
		} {
			GinkgoT().Setenv(name, value)
		}
		container := job.Spec.Template.Spec.Containers[0]
		Expect(container.Args[0]).To(Equal("worker"))
		var stderr bytes.Buffer
		exit := worker.Command(ctx, append(container.Args[1:], "--kubeconfig="+kubeconfig), &stderr)
		Expect(exit).To(Equal(0), stderr.String())
		Expect(stderr.String()).NotTo(BeEmpty(), "the worker logs its work")
		Expect(stderr.String()).NotTo(ContainSubstring(string(credential.Data[StorageSecretKeyKey])), "the worker must never log its credentials")

		By("completing the Job as the Job controller would once the Pod exited 0")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
		Expect(job.Annotations).To(HaveKey(jobreport.ResultAnnotation))
		completeJob(job)
		completed := eventuallyPhase(download, downloadv1alpha1.PhaseCompleted)

		By("downloading the archive through its presigned URL and checking every entry")
		resp, body := getThroughPublicHost(completed.Status.DownloadURL)
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		sum := sha256.Sum256(body)
		Expect(hex.EncodeToString(sum[:])).To(Equal(completed.Status.Archive.SHA256))
		Expect(completed.Status.Archive.Size).To(BeEquivalentTo(len(body)))
		archive, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
		Expect(err).NotTo(HaveOccurred())
		Expect(archive.File).To(HaveLen(3), "the two files, then manifest.json")
		Expect(archive.File[2].Name).To(Equal(manifest.Name))
		for i, id := range []int64{70000, 70001} {
			entry := archive.File[i]
			Expect(entry.Name).To(Equal(worker.EntryName(id)))
			r, err := entry.Open()
			Expect(err).NotTo(HaveOccurred())
			content, err := io.ReadAll(r)
			Expect(err).NotTo(HaveOccurred())
			Expect(content).To(Equal(sources[id]))
		}
		Expect(completed.Status.BytesTotal).To(BeEquivalentTo(len(sources[70000]) + len(sources[70001])))
	})

	It("never writes credentials into status, Events, the Job or logs", func() {
		download := completeDownload(newDownload(servedNamespace, 70000), []byte("archive"))
		failing := failDownload(newDownload(servedNamespace, 70001),
			&jobreport.Failure{Reason: downloadv1alpha1.ReasonStorageError, Message: "storage unreachable"},
			batchv1.JobReasonBackoffLimitExceeded, 4)
		Eventually(func() []eventsv1.Event { return eventsFor(failing) }).ShouldNot(BeEmpty())

		var everything strings.Builder
		for _, obj := range []client.ObjectList{&downloadv1alpha1.DownloadList{}, &eventsv1.EventList{}, &batchv1.JobList{}} {
			Expect(k8sClient.List(ctx, obj)).To(Succeed())
			raw, err := json.Marshal(obj)
			Expect(err).NotTo(HaveOccurred())
			everything.Write(raw)
		}
		everything.WriteString(logs.String())
		Expect(everything.String()).To(ContainSubstring(download.Name), "the haystack must hold what was searched")
		Expect(everything.String()).NotTo(ContainSubstring(minioSrv.SecretKey))
		// The URL's signature is derived from the key but must not contain it.
		Expect(fetch(download).Status.DownloadURL).NotTo(ContainSubstring(minioSrv.SecretKey))
	})
})

var _ = Describe("controller metrics", func() {
	It("count completions, archived bytes and failures by reason, and report Downloads by phase", func() {
		completeDownload(newDownload(servedNamespace, 70000), []byte("0123456789"))
		failDownload(newDownload(servedNamespace, 70001),
			&jobreport.Failure{Reason: downloadv1alpha1.ReasonSourceNotFound, Message: "70001 missing"},
			batchv1.JobReasonPodFailurePolicy, 1)

		families, err := metrics.Registry.Gather()
		Expect(err).NotTo(HaveOccurred())
		byName := map[string]*dto.MetricFamily{}
		for _, f := range families {
			byName[f.GetName()] = f
		}
		Expect(byName).To(HaveKey("download_operator_download_completion_seconds"))
		Expect(byName["download_operator_download_completion_seconds"].Metric[0].Histogram.GetSampleCount()).To(BeNumerically(">=", 1))
		Expect(byName["download_operator_archived_bytes_total"].Metric[0].Counter.GetValue()).To(BeNumerically(">=", 10))
		Expect(byName).To(HaveKey("download_operator_download_failures_total"))
		Expect(byName["download_operator_download_failures_total"].Metric).To(ContainElement(
			HaveField("Label", ContainElement(And(
				HaveField("Name", HaveValue(Equal("reason"))),
				HaveField("Value", HaveValue(Equal(downloadv1alpha1.ReasonSourceNotFound))))))))

		phases := map[string]float64{}
		for _, m := range byName["download_operator_downloads"].Metric {
			phases[m.Label[0].GetValue()] = m.Gauge.GetValue()
		}
		Expect(phases).To(HaveKey("Completed"))
		Expect(phases["Completed"]).To(BeNumerically(">=", 1))
		Expect(phases["Failed"]).To(BeNumerically(">=", 1))
		Expect(byName).To(HaveKey("download_operator_active_jobs"))
	})
})
