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
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/storage"
)

// credentialMargin is how long a worker credential outlives the Job's deadline: the last part
// and the completion of the upload may come right at the deadline, and clocks drift.
const credentialMargin = 5 * time.Minute

// Keys of a worker's credential Secret.
const (
	StorageAccessKeyKey    = "accessKey"
	StorageSecretKeyKey    = "secretKey"
	StorageSessionTokenKey = "sessionToken"
)

// credentialSecretName is deterministic, so the Job's Pod template can name the Secret before
// the Secret exists: the kubelet holds the container until it appears.
func credentialSecretName(jobName string) string { return jobName + "-storage" }

// credentialLifetime covers the Job's whole life: STS raises it to its own minimum.
func credentialLifetime(download *downloadv1alpha1.Download) time.Duration {
	deadline := ptr.Deref(download.Spec.ActiveDeadlineSeconds, downloadv1alpha1.DefaultActiveDeadlineSeconds)
	return time.Duration(deadline)*time.Second + credentialMargin
}

// workerScope is everything a Download's worker may touch in storage.
func (r *DownloadReconciler) workerScope(download *downloadv1alpha1.Download) storage.WorkerScope {
	return storage.WorkerScope{
		SourceBucket:     r.Options.SourceBucket,
		SourceKeyPattern: storage.SourceKeyPattern(r.Options.SourceKeyTemplate),
		ArchiveBucket:    r.Options.ArchiveBucket,
		ArchiveKey:       archiveKey(download),
	}
}

// ensureWorkerCredential mints a credential scoped to this Download and hands it to the Job's
// worker in a Secret the Job owns, so it is collected with the Job. The operator's own key never
// leaves the controller.
//
// The controller may create Secrets but not read them, so it remembers which Jobs it already
// equipped. After a restart it tries once more per unfinished Job; AlreadyExists ends that.
func (r *DownloadReconciler) ensureWorkerCredential(ctx context.Context, download *downloadv1alpha1.Download, job *batchv1.Job) error {
	if job.UID == "" || jobFinished(job) || jobSuspended(job) {
		// A suspended Job waits for Kueue, maybe for long: its credential is minted on
		// admission, so that its lifetime starts when the worker can run.
		return nil
	}
	if uid, equipped := r.equippedJobs.Load(client.ObjectKeyFromObject(job)); equipped && uid == job.UID {
		return nil
	}
	credential, err := r.Storage.MintWorkerCredential(ctx, r.workerScope(download), credentialLifetime(download), job.Name)
	if err != nil {
		return fmt.Errorf("minting the worker credential of Job %s: %w", job.Name, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: credentialSecretName(job.Name), Namespace: job.Namespace, Labels: job.Labels,
			Annotations: map[string]string{downloadv1alpha1.CredentialExpiresAnnotation: credential.Expiration.UTC().Format(time.RFC3339)},
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: ptr.To(true),
		StringData: map[string]string{
			StorageAccessKeyKey:    credential.AccessKey,
			StorageSecretKeyKey:    credential.SecretKey,
			StorageSessionTokenKey: credential.SessionToken,
		},
	}
	// A plain owner reference, not a controller one: blockOwnerDeletion would need update on
	// jobs/finalizers, and the Secret must not hold the Job back anyway.
	if err := controllerutil.SetOwnerReference(job, secret, r.Scheme); err != nil {
		return fmt.Errorf("setting owner of Secret %s: %w", secret.Name, err)
	}
	if err := r.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the worker credential Secret %s: %w", secret.Name, err)
	}
	r.equippedJobs.Store(client.ObjectKeyFromObject(job), job.UID)
	logf.FromContext(ctx).V(1).Info("worker credential handed over", "secret", secret.Name, "expires", credential.Expiration)
	return nil
}

// forgetJob drops a Job from the equipped Jobs once it can no longer start a worker: when it
// finished, or when its Download is deleted.
func (r *DownloadReconciler) forgetJob(job client.ObjectKey) { r.equippedJobs.Delete(job) }

// jobSuspended tells whether the Job waits, suspended, to be admitted (by Kueue).
func jobSuspended(job *batchv1.Job) bool { return ptr.Deref(job.Spec.Suspend, false) }

func jobFinished(job *batchv1.Job) bool {
	return jobCondition(job, batchv1.JobComplete) || jobCondition(job, batchv1.JobFailed)
}
