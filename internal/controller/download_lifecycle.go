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

	"go.opentelemetry.io/otel/attribute"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/tracing"
)

// urlRefreshFraction is the share of a URL's validity left when it is re-signed, so that a client
// polling every few seconds always holds a URL with time to spare.
const urlRefreshFraction = 5

// reconcileFinished keeps a Completed Download's URL fresh and deletes any finished Download
// once ttlSecondsAfterFinished has passed. The finalizer then removes the archive.
func (r *DownloadReconciler) reconcileFinished(ctx context.Context, original, download *downloadv1alpha1.Download) (ctrl.Result, error) {
	now := r.Clock.Now()
	if !now.Before(download.ExpiresAt()) {
		logf.FromContext(ctx).Info("ttlSecondsAfterFinished passed; deleting the Download")
		err := r.Delete(ctx, download, client.PropagationPolicy(metav1.DeletePropagationBackground))
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if refresh, due := urlRefreshAt(download); due && !now.Before(refresh) {
		if err := r.signURL(ctx, download); err != nil {
			return ctrl.Result{}, err
		}
	}
	return r.writeStatus(ctx, original, download)
}

// signURL presigns the archive for the public endpoint, never beyond the Download's own expiry:
// after that the archive is gone and the URL would only yield errors.
func (r *DownloadReconciler) signURL(ctx context.Context, download *downloadv1alpha1.Download) error {
	now := r.Clock.Now()
	validity := time.Duration(ptr.Deref(download.Spec.URLExpirySeconds, downloadv1alpha1.DefaultURLExpirySeconds)) * time.Second
	validity = min(validity, download.ExpiresAt().Sub(now))
	if validity < time.Second {
		return nil
	}
	ctx, span := startSpan(ctx, SpanSignURL, download)
	defer span.End()
	span.SetAttributes(attribute.Int64("download.url_validity_seconds", int64(validity.Seconds())))
	archive := download.Status.Archive
	u, err := r.Storage.PresignGet(ctx, archive.Bucket, archive.Key, validity, "download-"+download.Name+".zip")
	if err != nil {
		return tracing.RecordError(span, fmt.Errorf("signing the download URL: %w", err))
	}
	download.Status.DownloadURL = u.String()
	download.Status.URLExpiresAt = ptr.To(metav1.NewTime(now.Add(validity)))
	return nil
}

// urlRefreshAt is when a Completed Download's URL is signed again. It reports false when the URL
// never needs it: one that already lasts until the Download's own expiry cannot be extended.
func urlRefreshAt(download *downloadv1alpha1.Download) (time.Time, bool) {
	urlExpiresAt := download.Status.URLExpiresAt
	switch {
	case download.Status.Phase != downloadv1alpha1.PhaseCompleted:
		return time.Time{}, false
	case urlExpiresAt == nil:
		return time.Time{}, true
	case !urlExpiresAt.Time.Before(download.ExpiresAt()):
		return time.Time{}, false
	}
	validity := time.Duration(ptr.Deref(download.Spec.URLExpirySeconds, downloadv1alpha1.DefaultURLExpirySeconds)) * time.Second
	return urlExpiresAt.Add(-validity / urlRefreshFraction), true
}

// minFinishedRequeue is the shortest wait before a finished Download's next visit. A visit that
// is already due must still be scheduled: controller-runtime takes a RequeueAfter of zero or less
// as no requeue at all, and nothing else would wake a settled Download whose Job is gone.
const minFinishedRequeue = time.Second

// nextVisit is the earliest moment a finished Download needs attention again.
func (r *DownloadReconciler) nextVisit(download *downloadv1alpha1.Download) time.Time {
	next := download.ExpiresAt()
	if refresh, due := urlRefreshAt(download); due && refresh.Before(next) {
		next = refresh
	}
	return next
}
