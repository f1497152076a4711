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
	"maps"
	"slices"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/keymutex"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// DownloadReconciler turns each Download into a worker Job, mirrors the Job's progress and result
// into Download.status, keeps the presigned URL fresh and expires finished Downloads.
type DownloadReconciler struct {
	client.Client
	Scheme *runtime.Scheme
	// APIReader reads around the cache; the finalizer uses it to see worker Pods without
	// keeping a Pod informer for the rare deletion.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Storage   ArchiveStore
	// Clock drives TTLs, URL refresh and ETAs, so tests can move time instead of sleeping.
	Clock   clock.PassiveClock
	Options Options
	// Events receives the started, completed and failed transitions of Downloads for the
	// operator's event sinks; nil sends none.
	Events EventEmitter

	// requestLocks serialise the reuse decisions of identical Downloads; leaders maps each
	// namespace/request key to the Download whose Job prepares it, until the cache shows it.
	requestLocks keymutex.KeyMutex
	leaders      sync.Map
	// lastStatusWrites maps each Download in flight (by UID) to when its status was last written.
	lastStatusWrites sync.Map
	// progressReporters maps each Download in flight (by UID) to the worker Pod whose progress
	// it mirrors (reportOfEarlierAttempt).
	progressReporters sync.Map
	// stoppedJobs holds the Jobs a finalizer already deleted, while it waits for their Pods.
	stoppedJobs sync.Map

	// equippedJobs maps each unfinished Job whose credential Secret exists to its UID (a Job of
	// the same name made later is another Job), so that each Secret is created once without the
	// controller being allowed to read Secrets.
	equippedJobs sync.Map
}

// NewDownloadReconciler wires a reconciler to a manager's clients and event recorder, so the
// controller binary and the test harnesses build it the same way.
func NewDownloadReconciler(mgr ctrl.Manager, store ArchiveStore, opts Options) *DownloadReconciler {
	return &DownloadReconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Scheme:       mgr.GetScheme(),
		Recorder:     mgr.GetEventRecorder("download-controller"),
		Storage:      store,
		Options:      opts,
		requestLocks: keymutex.NewHashed(0),
	}
}

// Downloads are watched in every namespace so that one created where no worker can run fails
// visibly instead of waiting forever. Jobs and worker Pods live only in served namespaces.
// +kubebuilder:rbac:groups=download.operator.dev,resources=downloads,verbs=get;list;watch;delete;patch
// +kubebuilder:rbac:groups=download.operator.dev,resources=downloads/status,verbs=patch
// +kubebuilder:rbac:groups=download.operator.dev,resources=downloads/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=list
// +kubebuilder:rbac:groups="",resources=secrets,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one Download one step along its lifecycle.
func (r *DownloadReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// 1. Get the Download. NotFound means it is gone, and owner references take its Job with it.
	var download downloadv1alpha1.Download
	if err := r.Get(ctx, req.NamespacedName, &download); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctx = logf.IntoContext(ctx, logf.FromContext(ctx).WithValues("phase", download.Status.Phase))
	ctx = continueTrace(ctx, &download)

	// 2. Deletion: remove the Job and the archive before letting the Download go.
	if !download.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &download)
	}
	original := download.DeepCopy()

	// 3. A Download in a namespace without worker RBAC can never run. The controller adds no
	// finalizer there: nothing is made for it that would need cleaning up. One the facade set at
	// create is released by finalize, which touches no Job outside served namespaces.
	if !r.Options.serves(download.Namespace) {
		if isFinished(&download) {
			return r.reconcileFinished(ctx, original, &download)
		}
		r.markNamespaceNotServed(&download)
		return r.writeStatus(ctx, original, &download)
	}
	if err := r.ensureFinalizer(ctx, &download); err != nil {
		// NotFound: the Download was deleted since the cache saw it; there is nothing to hold.
		return requeueOnConflict(client.IgnoreNotFound(err))
	}
	original = download.DeepCopy()

	// 4. Finished Downloads never get a new Job: they only keep their URL fresh, then expire.
	if isFinished(&download) {
		return r.reconcileFinished(ctx, original, &download)
	}

	// 5. Find the work: the Job of an identical Download in flight, a stored archive of the same
	// content (which completes it at once), or a Job of its own with its storage credential.
	job, wait, err := r.ensureWork(ctx, &download)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("ensuring the worker Job: %w", err)
	}
	if job == nil {
		if isFinished(&download) {
			return r.writeStatus(ctx, original, &download)
		}
		return ctrl.Result{RequeueAfter: wait}, nil
	}

	// 6. Mirror the Job into status; on completion record the archive and sign its URL.
	if err := r.mirrorJob(ctx, &download, job); err != nil {
		return ctrl.Result{}, err
	}

	// 7. Write status and, once finished, come back for URL refresh and expiry.
	return r.writeStatus(ctx, original, &download)
}

// jobCollisionRetry is how soon to look again when an old Job with our name is being deleted.
const jobCollisionRetry = 2 * time.Second

// requeueOnConflict turns an optimistic-lock conflict into a quiet retry: it only means the
// Download changed since it was read, and the next reconcile sees the new version.
func requeueOnConflict(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	return ctrl.Result{}, err
}

// SetupWithManager registers the controller: it reacts to Downloads and to the Jobs they own.
func (r *DownloadReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if err := r.indexDownloads(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&downloadv1alpha1.Download{}, builder.WithPredicates(notStatusOnly())).
		// Every owner of a Job hears of it, not only the controller owner: Downloads that follow
		// another's Job own it too.
		Watches(&batchv1.Job{}, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &downloadv1alpha1.Download{})).
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: max(1, r.Options.MaxConcurrentReconciles)}).
		Named("download").
		Complete(r)
}

// notStatusOnly drops the updates of a Download that changed only its status, which are this
// controller's own writes: everything a status depends on arrives through the Job's events or a
// requeue, so reconciling after each write would double the reconciles and their reads for
// nothing. Changes to spec, labels, annotations, finalizers or deletion still pass.
func notStatusOnly() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		before, after := e.ObjectOld, e.ObjectNew
		return before.GetGeneration() != after.GetGeneration() ||
			!before.GetDeletionTimestamp().Equal(after.GetDeletionTimestamp()) ||
			!maps.Equal(before.GetLabels(), after.GetLabels()) ||
			!maps.Equal(before.GetAnnotations(), after.GetAnnotations()) ||
			!slices.Equal(before.GetFinalizers(), after.GetFinalizers())
	}}
}
