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
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/tracing"
)

const (
	workerContainerName = "worker"
	// DownloadNameLabel marks a worker Job and its Pods with the Download they serve.
	DownloadNameLabel = "download.operator.dev/download"
	// ComponentLabel and WorkerComponent select worker Jobs and Pods.
	ComponentLabel  = "app.kubernetes.io/component"
	WorkerComponent = "download-worker"
	// QueueNameLabel names the Kueue LocalQueue a worker Job waits in.
	QueueNameLabel = "kueue.x-k8s.io/queue-name"
	// maxJobNameLength keeps the Job name usable as the job-name label value on its Pods.
	maxJobNameLength = 63
)

// jobName is deterministic, so a restarted controller finds the Job it already created instead
// of starting a second one. Downloads are named by a UUID (36 characters), which fits as is.
func jobName(download *downloadv1alpha1.Download) string { return jobNameOf(download.Name) }

// jobNameOf is the Job name of the Download named downloadName.
func jobNameOf(downloadName string) string {
	if len(downloadName) <= maxJobNameLength {
		return downloadName
	}
	sum := sha256.Sum256([]byte(downloadName))
	hash := hex.EncodeToString(sum[:])[:8]
	return strings.TrimRight(downloadName[:maxJobNameLength-len(hash)-1], "-.") + "-" + hash
}

// archiveKey is where the worker stores the archive: one object per Download, so the finalizer
// knows what to delete even when no result was ever reported.
func archiveKey(download *downloadv1alpha1.Download) string {
	return archiveKeyOf(download.Namespace, download.Name)
}

// archiveKeyOf is the archive key of the Download name in namespace.
func archiveKeyOf(namespace, name string) string { return namespace + "/" + name + ".zip" }

// ensureJob returns the Download's own Job, creating it when missing, for the content digest
// when known (or ""). It returns nil without error when a Job by that name belongs to someone
// else (an older Download of the same name whose Job is still being garbage-collected).
func (r *DownloadReconciler) ensureJob(ctx context.Context, download *downloadv1alpha1.Download, digest string) (*batchv1.Job, error) {
	var job batchv1.Job
	err := r.Get(ctx, client.ObjectKey{Namespace: download.Namespace, Name: jobName(download)}, &job)
	switch {
	case err == nil:
		if !metav1.IsControlledBy(&job, download) {
			logf.FromContext(ctx).Info("a Job with this Download's name belongs to another owner; waiting for it to go", "job", job.Name)
			return nil, nil
		}
		return &job, r.ensureWorkerCredential(ctx, download, &job)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("getting Job: %w", err)
	}

	ctx, span := startSpan(ctx, SpanCreateJob, download)
	defer span.End()
	desired, err := r.desiredJob(ctx, download, digest)
	if err != nil {
		return nil, tracing.RecordError(span, err)
	}
	err = r.Create(ctx, desired)
	if apierrors.IsAlreadyExists(err) {
		// The cache simply lags our own earlier create: the Job is there, and its next event
		// brings it, with the UID its credential Secret needs as owner.
		return desired, nil
	}
	if err != nil {
		return nil, tracing.RecordError(span, fmt.Errorf("creating Job %s: %w", desired.Name, err))
	}
	logf.FromContext(ctx).V(1).Info("worker Job created", "job", desired.Name)
	// The Pod template already names the Secret; the kubelet holds the container until it exists.
	return desired, tracing.RecordError(span, r.ensureWorkerCredential(ctx, download, desired))
}

// desiredJob builds the worker Job. Its limits come from the Download's spec; its Pod satisfies
// the restricted Pod Security Standard.
func (r *DownloadReconciler) desiredJob(ctx context.Context, download *downloadv1alpha1.Download, digest string) (*batchv1.Job, error) {
	spec := download.Spec
	labels := map[string]string{
		"app.kubernetes.io/name":       "download-operator",
		"app.kubernetes.io/managed-by": "download-operator",
		ComponentLabel:                 WorkerComponent,
		DownloadNameLabel:              download.Name,
	}
	fileIDs := make([]string, len(spec.FileIDs))
	for i, id := range spec.FileIDs {
		fileIDs[i] = strconv.FormatInt(id, 10)
	}
	secretEnv := func(name, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: credentialSecretName(jobName(download))},
			Key:                  key,
		}}}
	}
	name := jobName(download)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: download.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            spec.BackoffLimit,
			ActiveDeadlineSeconds:   spec.ActiveDeadlineSeconds,
			TTLSecondsAfterFinished: spec.TTLSecondsAfterFinished,
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{
					// Missing files or bad arguments do not get better on retry.
					Action: batchv1.PodFailurePolicyActionFailJob,
					OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
						ContainerName: ptr.To(workerContainerName),
						Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
						// Sorted, as the API requires.
						Values: []int32{jobreport.ExitUsage, jobreport.ExitPermanent},
					},
				},
				{
					// A Pod evicted or preempted did nothing wrong; do not spend a retry on it.
					Action: batchv1.PodFailurePolicyActionIgnore,
					OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
						{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue},
					},
				},
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:      corev1.RestartPolicyNever,
					ServiceAccountName: r.Options.WorkerServiceAccount,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  workerContainerName,
						Image: r.Options.WorkerImage,
						Args: []string{
							"worker",
							"--job-name=" + name,
							"--file-ids=" + strings.Join(fileIDs, ","),
							"--source-bucket=" + r.Options.SourceBucket,
							"--source-key-template=" + r.Options.SourceKeyTemplate,
							"--archive-bucket=" + r.Options.ArchiveBucket,
							"--archive-key=" + archiveKey(download),
							"--max-bytes-per-second=" + strconv.FormatInt(ptr.Deref(spec.MaxBytesPerSecond, 0), 10),
							"--missing-files=" + string(missingFilesPolicy(spec)),
							"--storage-endpoint=" + r.Options.StorageEndpoint,
							"--storage-secure=" + strconv.FormatBool(r.Options.StorageSecure),
						},
						Env: append([]corev1.EnvVar{
							{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{
								FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"},
							}},
							// Progress reports carry it, so that the controller can tell a failed
							// attempt's last report from the running attempt's.
							{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
								FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
							}},
							// A soft heap target: the worker holds two 5 MiB parts (one uploading, one
							// filling), and without it the GC lets the heap grow towards twice the live size.
							{Name: "GOMEMLIMIT", Value: "32MiB"},
							secretEnv("STORAGE_ACCESS_KEY", StorageAccessKeyKey),
							secretEnv("STORAGE_SECRET_KEY", StorageSecretKeyKey),
							secretEnv("STORAGE_SESSION_TOKEN", StorageSessionTokenKey),
						}, append(traceEnv(ctx), r.Options.WorkerTracingEnv...)...),
						Resources: r.Options.WorkerResources,
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							RunAsNonRoot:             ptr.To(true),
							RunAsUser:                ptr.To[int64](65532),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
					}},
				},
			},
		},
	}
	if digest != "" {
		job.Spec.Template.Annotations = map[string]string{contentDigestAnnotation: digest}
	}
	if queue := r.Options.queueName(download.Namespace); queue != "" {
		// Kueue admits a Job by unsuspending it; created running, the worker would start before
		// its turn. The label goes on the Job only, where Kueue reads it.
		job.Labels = maps.Clone(labels)
		job.Labels[QueueNameLabel] = queue
		job.Spec.Suspend = ptr.To(true)
	}
	if err := controllerutil.SetControllerReference(download, job, r.Scheme); err != nil {
		return nil, fmt.Errorf("setting owner of Job %s: %w", name, err)
	}
	return job, nil
}
