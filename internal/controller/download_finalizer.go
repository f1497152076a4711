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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// cleanupFinalizer holds a deleted Download until its archive is gone, because object storage
// is outside the reach of Kubernetes garbage collection.
const cleanupFinalizer = downloadv1alpha1.CleanupFinalizer

// workerExitWait is how often the finalizer looks again while worker Pods shut down.
const workerExitWait = time.Second

func (r *DownloadReconciler) ensureFinalizer(ctx context.Context, download *downloadv1alpha1.Download) error {
	if controllerutil.ContainsFinalizer(download, cleanupFinalizer) {
		return nil
	}
	original := download.DeepCopy()
	controllerutil.AddFinalizer(download, cleanupFinalizer)
	if err := r.Patch(ctx, download, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

// finalize deletes the Job, waits until no worker Pod can still write, removes the archive and
// any upload in flight, then releases the Download.
func (r *DownloadReconciler) finalize(ctx context.Context, download *downloadv1alpha1.Download) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(download, cleanupFinalizer) {
		return ctrl.Result{}, nil
	}
	r.forgetLead(download)
	r.lastStatusWrites.Delete(download.UID)
	r.progressReporters.Delete(download.UID)
	// While another Download uses the same archive, the Job and the archive stay: that one still
	// waits for the Job, or serves the archive. Owner references release this Download's share.
	shared, err := r.archiveShared(ctx, download)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !shared {
		// In a namespace the operator no longer serves, it may not touch Jobs or Pods; owner
		// references still collect the Job, and the archive is in storage, which it can reach.
		if r.Options.serves(download.Namespace) {
			running, err := r.stopWorkers(ctx, download)
			if err != nil {
				return ctrl.Result{}, err
			}
			if running {
				return ctrl.Result{RequeueAfter: workerExitWait}, nil
			}
		}
		bucket, key := r.archiveOf(download)
		if err := r.Storage.DeleteArchive(ctx, bucket, key); err != nil {
			return ctrl.Result{}, fmt.Errorf("removing archive: %w", err)
		}
	}

	r.stoppedJobs.Delete(client.ObjectKey{Namespace: download.Namespace, Name: workerJobName(download)})
	original := download.DeepCopy()
	controllerutil.RemoveFinalizer(download, cleanupFinalizer)
	if err := r.Patch(ctx, download, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); err != nil {
		return requeueOnConflict(client.IgnoreNotFound(err))
	}
	return ctrl.Result{}, nil
}

// stopWorkers deletes the Job and reports whether worker Pods are still around. A worker that
// is still running could finish its upload after the archive was removed, leaving an orphan
// object; its Pods get SIGTERM from the Job's deletion and abort quickly.
//
// The Job is deleted once: while its Pods exit, the finalizer only looks again, so a slow exit
// costs no more writes. A Job that finished has no worker left that could write, so its Pods
// are not waited for.
func (r *DownloadReconciler) stopWorkers(ctx context.Context, download *downloadv1alpha1.Download) (running bool, err error) {
	key := client.ObjectKey{Namespace: download.Namespace, Name: workerJobName(download)}
	cached, err := r.cachedJob(ctx, key.Namespace, key.Name)
	if err != nil {
		return false, err
	}
	if _, stopped := r.stoppedJobs.Load(key); !stopped && (cached == nil || cached.DeletionTimestamp.IsZero()) {
		// Also when the cache does not hold it: it may have been created a moment ago.
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		if err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return false, fmt.Errorf("deleting Job %s: %w", job.Name, err)
		}
		r.stoppedJobs.Store(key, struct{}{})
	}
	r.forgetJob(key)
	if cached != nil && jobFinished(cached) {
		return false, nil
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(download.Namespace),
		client.MatchingLabels{DownloadNameLabel: preparer(download), ComponentLabel: WorkerComponent}); err != nil {
		return false, fmt.Errorf("listing worker Pods: %w", err)
	}
	if len(pods.Items) > 0 {
		logf.FromContext(ctx).V(1).Info("waiting for worker Pods to exit before removing the archive", "pods", len(pods.Items))
		return true, nil
	}
	return false, nil
}
