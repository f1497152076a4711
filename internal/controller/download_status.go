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
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/storage"
	"github.com/download-operator/download-operator/internal/tracing"
)

func isFinished(download *downloadv1alpha1.Download) bool {
	return download.Status.Phase == downloadv1alpha1.PhaseCompleted || download.Status.Phase == downloadv1alpha1.PhaseFailed
}

// mirrorJob copies what the Job and its worker report into the Download's status. It only
// changes the in-memory object; writeStatus persists it.
func (r *DownloadReconciler) mirrorJob(ctx context.Context, download *downloadv1alpha1.Download, job *batchv1.Job) error {
	status := &download.Status
	status.JobName = job.Name
	status.FileCount = int32(len(download.Spec.FileIDs))
	// A count that went down would tell clients a retry never happened, and the Job's counters
	// do dip: see workerPodsStarted.
	status.Attempts = max(status.Attempts, workerPodsStarted(job))
	if job.Status.StartTime != nil {
		status.StartTime = job.Status.StartTime
	}

	var progress jobreport.Progress
	hasProgress, err := jobreport.Decode(job.Annotations, jobreport.ProgressAnnotation, &progress)
	if err != nil {
		// A garbled report is the worker's bug; the Job's own conditions still decide the outcome.
		logf.FromContext(ctx).Error(err, "ignoring unreadable worker progress", "job", job.Name)
	}
	if hasProgress && err == nil && plausible(progress) {
		if r.reportOfEarlierAttempt(download, progress) {
			// The running attempt restarts the archive from its first byte and has not said
			// how far it got: showing the failed attempt's count would freeze the bar there.
			progress.BytesDone = 0
		}
		r.recordProgress(status, progress)
	}

	if jobFinished(job) && !follows(download) {
		// No worker of this Job can run any more. The lead stays offered until the cache shows
		// this Download finished (inFlightLeader drops it then): forgetting it here would leave
		// a moment when an identical Download sees neither a Job to follow nor a stored archive.
		r.forgetJob(client.ObjectKeyFromObject(job))
		if err := r.removeLeftUploads(ctx, download); err != nil {
			return err
		}
	}
	switch {
	case jobCondition(job, batchv1.JobComplete):
		return r.complete(ctx, download, job)
	case jobCondition(job, batchv1.JobFailed):
		reason, message := failureOf(job)
		r.fail(download, reason, message)
	case jobSuspended(job):
		// Waiting for admission: pending the first time; a Job preempted after it ran stays
		// Processing, since clients must never see a Download go back to Pending.
		if status.Phase != downloadv1alpha1.PhaseProcessing {
			status.Phase = downloadv1alpha1.PhasePending
		}
		setConditions(download, outcomeInFlight, downloadv1alpha1.ReasonQueued,
			fmt.Sprintf("Job %s waits in queue %s for admission", job.Name, job.Labels[QueueNameLabel]))
	case hasProgress || ptr.Deref(job.Status.Ready, 0) > 0 || job.Status.Failed > 0 ||
		status.Phase == downloadv1alpha1.PhaseProcessing:
		// Once a worker ran, the Download stays Processing between attempts: clients must
		// never see it go back to Pending.
		status.Phase = downloadv1alpha1.PhaseProcessing
		reason, message := downloadv1alpha1.ReasonArchiving, "the worker is streaming the archive"
		if job.Status.Failed > 0 {
			reason, message = downloadv1alpha1.ReasonRetrying, fmt.Sprintf("attempt %d after %d failed", status.Attempts, job.Status.Failed)
		}
		setConditions(download, outcomeInFlight, reason, message)
	default:
		status.Phase = downloadv1alpha1.PhasePending
		setConditions(download, outcomeInFlight, downloadv1alpha1.ReasonJobCreated,
			fmt.Sprintf("Job %s created; waiting for its worker Pod", job.Name))
	}
	return nil
}

// removeLeftUploads aborts the multipart uploads that attempts killed mid-upload left under the
// archive's key, once no worker of the Job can run any more. Workers cannot do it themselves:
// their credential may not list uploads, which would show other Downloads' keys.
func (r *DownloadReconciler) removeLeftUploads(ctx context.Context, download *downloadv1alpha1.Download) error {
	if err := r.Storage.RemoveIncompleteUploads(ctx, r.Options.ArchiveBucket, archiveKey(download)); err != nil {
		return fmt.Errorf("removing uploads left by killed attempts: %w", err)
	}
	return nil
}

// workerPodsStarted counts the worker Pods the Job has run. A Pod that just ended sits in
// uncountedTerminatedPods, in none of the Job's counters, until the Job controller has
// accounted for it; leaving it out makes the count drop by one at every Pod exit.
func workerPodsStarted(job *batchv1.Job) int32 {
	started := job.Status.Active + job.Status.Failed + job.Status.Succeeded
	if uncounted := job.Status.UncountedTerminatedPods; uncounted != nil {
		started += int32(len(uncounted.Failed) + len(uncounted.Succeeded))
	}
	return started
}

// reportOfEarlierAttempt tells whether a progress report was written by the worker Pod of an
// attempt before the current one. A failed attempt's last report stays on the Job until the next
// attempt writes its own, so a report's Pod seen first while fewer attempts had started is stale.
// The first sighting of each Pod is kept in memory only: after a controller restart a stale
// report may show until the running attempt's first report replaces it, a few seconds later.
func (r *DownloadReconciler) reportOfEarlierAttempt(download *downloadv1alpha1.Download, progress jobreport.Progress) bool {
	if progress.Pod == "" {
		return false
	}
	attempts := download.Status.Attempts
	seen, loaded := r.progressReporters.LoadOrStore(download.UID, progressReporter{pod: progress.Pod, attempts: attempts})
	if !loaded {
		return false
	}
	if reporter := seen.(progressReporter); reporter.pod == progress.Pod {
		return reporter.attempts < attempts
	}
	r.progressReporters.Store(download.UID, progressReporter{pod: progress.Pod, attempts: attempts})
	return false
}

// progressReporter is the worker Pod whose progress reports a Download last mirrored, and how
// many attempts had started when its first report was seen.
type progressReporter struct {
	pod      string
	attempts int32
}

// plausible rejects a progress report no honest worker sends. Progress is the one thing the
// controller takes from a worker without checking it against storage; it only moves a bar.
func plausible(progress jobreport.Progress) bool {
	return progress.BytesDone >= 0 && progress.BytesTotal >= 0 && progress.BytesDone <= progress.BytesTotal
}

// recordProgress sets bytes, percentage and an ETA from the rate observed since the Job started.
func (r *DownloadReconciler) recordProgress(status *downloadv1alpha1.DownloadStatus, progress jobreport.Progress) {
	// Only a new report moves the ETA. Recomputed from the clock at every reconcile, it would
	// change with nothing new to tell, and each change would cost another status write.
	if status.EtaSeconds != nil && progress.BytesDone == status.BytesDone && progress.BytesTotal == status.BytesTotal {
		return
	}
	status.BytesDone, status.BytesTotal = progress.BytesDone, progress.BytesTotal
	status.Progress = 0
	if progress.BytesTotal > 0 {
		status.Progress = int32(min(100, progress.BytesDone*100/progress.BytesTotal))
	}
	status.EtaSeconds = nil
	if status.StartTime == nil || progress.BytesDone <= 0 {
		return
	}
	elapsed := r.Clock.Since(status.StartTime.Time).Seconds()
	if elapsed <= 0 {
		return
	}
	bytesPerSecond := float64(progress.BytesDone) / elapsed
	remaining := float64(max(0, progress.BytesTotal-progress.BytesDone))
	status.EtaSeconds = ptr.To(int64(math.Ceil(remaining / bytesPerSecond)))
}

// complete records the archive the worker reported and signs the first URL for it. The report
// comes from a Pod, and anything that may patch the Job could have written it, so it is accepted
// only for the archive this Download was given and only as storage really holds it.
func (r *DownloadReconciler) complete(ctx context.Context, download *downloadv1alpha1.Download, job *batchv1.Job) error {
	var result jobreport.Result
	found, err := jobreport.Decode(job.Annotations, jobreport.ResultAnnotation, &result)
	if !found || err != nil {
		r.fail(download, downloadv1alpha1.ReasonResultMissing,
			fmt.Sprintf("the worker Job %s succeeded without a readable archive report (%v)", job.Name, err))
		return nil
	}
	if rejection, err := r.verifyResult(ctx, download, result); err != nil || rejection != "" {
		if rejection != "" {
			logf.FromContext(ctx).Info("rejecting the worker's result", "job", job.Name, "why", rejection)
			r.fail(download, downloadv1alpha1.ReasonResultRejected, rejection)
		}
		return err
	}
	status := &download.Status
	status.Archive = &downloadv1alpha1.ArchiveStatus{
		Bucket: result.Bucket, Key: result.Key, Size: result.Size, SHA256: result.SHA256,
	}
	status.SkippedFileIDs = result.SkippedFileIDs
	// Like progress, the total only moves a bar; one below the bytes already reported is ignored.
	if result.BytesTotal > 0 && result.BytesTotal >= status.BytesDone {
		status.BytesTotal = result.BytesTotal
	}
	// The digest comes from the Pod template, which the controller wrote and no worker can change.
	status.ContentDigest = job.Spec.Template.Annotations[contentDigestAnnotation]
	status.CompletionTime = job.Status.CompletionTime
	if status.CompletionTime == nil {
		status.CompletionTime = ptr.To(metav1.NewTime(r.Clock.Now()))
	}
	if status.ReusedFrom != "" {
		return r.markCompleted(ctx, download, downloadv1alpha1.ReasonArchiveReused,
			fmt.Sprintf("the Job of Download %s prepared the archive; its URL is signed", status.ReusedFrom))
	}
	return r.markCompleted(ctx, download, downloadv1alpha1.ReasonArchiveReady, "the archive is stored and its URL is signed")
}

// markCompleted signs the first URL of the Download's archive and marks it Completed.
func (r *DownloadReconciler) markCompleted(ctx context.Context, download *downloadv1alpha1.Download, reason, message string) error {
	status := &download.Status
	status.BytesDone = status.BytesTotal
	status.Progress = 100
	status.EtaSeconds = ptr.To[int64](0)
	if err := r.signURL(ctx, download); err != nil {
		return err
	}
	status.Phase = downloadv1alpha1.PhaseCompleted
	setConditions(download, outcomeCompleted, reason, message)
	return nil
}

// verifyResult compares a worker's result with what the controller expects and with what
// storage holds. It returns why the result is rejected, or an error when storage cannot tell.
func (r *DownloadReconciler) verifyResult(ctx context.Context, download *downloadv1alpha1.Download, result jobreport.Result) (rejection string, err error) {
	bucket, key := r.archiveOf(download)
	if result.Bucket != bucket || result.Key != key {
		return fmt.Sprintf("the worker reported the archive %s/%s, but this Download's archive is %s/%s",
			result.Bucket, result.Key, bucket, key), nil
	}
	size, err := r.Storage.ArchiveSize(ctx, bucket, key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Sprintf("the worker reported the archive %s/%s, but storage does not hold it", bucket, key), nil
	case err != nil:
		return "", fmt.Errorf("checking the reported archive: %w", err)
	case size != result.Size:
		return fmt.Sprintf("the worker reported %d bytes for %s/%s, but storage holds %d", result.Size, bucket, key, size), nil
	}
	return skippedRejection(download.Spec, result.SkippedFileIDs), nil
}

// skippedRejection tells why the ids a worker reports as skipped cannot be right, or "". They
// reach clients as the ids their archive lacks, so they must be requested ids, each once and in
// ascending order, skipped only where the spec allows it, and never all of them (a Download
// whose every file is missing fails with SourceNotFound instead).
func skippedRejection(spec downloadv1alpha1.DownloadSpec, skipped []int64) string {
	switch {
	case len(skipped) == 0:
		return ""
	case missingFilesPolicy(spec) != downloadv1alpha1.MissingFilesSkip:
		return fmt.Sprintf("the worker skipped %d files, but this Download's missingFiles policy is Fail", len(skipped))
	case len(skipped) >= len(spec.FileIDs):
		return "the worker skipped every requested file"
	}
	for i, id := range skipped {
		if (i > 0 && id <= skipped[i-1]) || !slices.Contains(spec.FileIDs, id) {
			return fmt.Sprintf("the worker reported file id %d as skipped, which is not a distinct requested id in order", id)
		}
	}
	return ""
}

// fail marks the Download Failed for good.
func (r *DownloadReconciler) fail(download *downloadv1alpha1.Download, reason, message string) {
	status := &download.Status
	status.Phase = downloadv1alpha1.PhaseFailed
	status.EtaSeconds = nil
	if status.CompletionTime == nil {
		status.CompletionTime = ptr.To(metav1.NewTime(r.Clock.Now()))
	}
	setConditions(download, outcomeFailed, reason, message)
}

func (r *DownloadReconciler) markNamespaceNotServed(download *downloadv1alpha1.Download) {
	download.Status.FileCount = int32(len(download.Spec.FileIDs))
	r.fail(download, downloadv1alpha1.ReasonNamespaceNotServed, fmt.Sprintf(
		"download-operator runs no workers in namespace %q; add it to the operator's --namespaces "+
			"(Helm value namespaces), which also creates the worker ServiceAccount and its Role there, "+
			"then create the Download again", download.Namespace))
}

// outcome is where a Download stands, as its conditions tell it.
type outcome int

const (
	// outcomeInFlight: pending or processing (Job created, archiving, retrying).
	outcomeInFlight outcome = iota
	// outcomeCompleted: the archive is stored and its URL signed.
	outcomeCompleted
	// outcomeFailed: the Download will not complete.
	outcomeFailed
)

// setConditions sets every condition of a Download from its outcome, so that the Job-style
// conditions (Complete, Failed, Progressing) and the kstatus ones (Ready, Reconciling, Stalled)
// never disagree. kstatus reads Reconciling=True as InProgress, Stalled=True as Failed and
// Ready=True as Current; the three are always present, so a tool never has to guess what an
// absent condition means. Complete and Failed are set only once true, as on a Job.
func setConditions(download *downloadv1alpha1.Download, state outcome, reason, message string) {
	set := func(conditionType string, isTrue bool, message string) {
		status := metav1.ConditionFalse
		if isTrue {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&download.Status.Conditions, metav1.Condition{
			Type: conditionType, Status: status, Reason: reason, Message: message,
			ObservedGeneration: download.Generation,
		})
	}
	switch state {
	case outcomeCompleted:
		set(downloadv1alpha1.ConditionComplete, true, message)
		set(downloadv1alpha1.ConditionProgressing, false, "done")
	case outcomeFailed:
		set(downloadv1alpha1.ConditionFailed, true, message)
		set(downloadv1alpha1.ConditionProgressing, false, message)
	default:
		set(downloadv1alpha1.ConditionProgressing, true, message)
	}
	set(downloadv1alpha1.ConditionReady, state == outcomeCompleted, message)
	set(downloadv1alpha1.ConditionReconciling, state == outcomeInFlight, message)
	set(downloadv1alpha1.ConditionStalled, state == outcomeFailed, message)
}

// failureOf explains a failed Job, preferring the worker's own report of its last attempt
// over the Job controller's generic reason.
func failureOf(job *batchv1.Job) (reason, message string) {
	var report jobreport.Failure
	hasReport, err := jobreport.Decode(job.Annotations, jobreport.FailureAnnotation, &report)
	hasReport = hasReport && err == nil
	jobReason, jobMessage := "", ""
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			jobReason, jobMessage = c.Reason, c.Message
		}
	}
	switch {
	case jobReason == batchv1.JobReasonDeadlineExceeded:
		return downloadv1alpha1.ReasonDeadlineExceeded, "preparation took longer than activeDeadlineSeconds: " + jobMessage
	case hasReport && workerReasons.Has(report.Reason):
		return report.Reason, report.Message
	case jobReason == batchv1.JobReasonBackoffLimitExceeded:
		return downloadv1alpha1.ReasonBackoffLimitExceeded, "the worker failed on every attempt: " + jobMessage
	default:
		return downloadv1alpha1.ReasonBackoffLimitExceeded, fmt.Sprintf("the worker Job failed (%s): %s", jobReason, jobMessage)
	}
}

// workerReasons are the failure reasons a worker may report. Any other value is not trusted
// into the condition, whose reason clients and dashboards match on.
var workerReasons = sets.New(downloadv1alpha1.ReasonSourceNotFound, downloadv1alpha1.ReasonStorageError,
	downloadv1alpha1.ReasonArchiveTooLarge)

func jobCondition(job *batchv1.Job, conditionType batchv1.JobConditionType) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == conditionType && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// writeStatus persists status changes through the status subresource, records the transition,
// and schedules the next visit a finished Download needs.
func (r *DownloadReconciler) writeStatus(ctx context.Context, original, download *downloadv1alpha1.Download) (ctrl.Result, error) {
	download.Status.ObservedGeneration = download.Generation
	if !equality.Semantic.DeepEqual(original.Status, download.Status) {
		if wait := r.statusWriteWait(download); wait > 0 {
			// The next write, or the Job's next event, carries this change too.
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		// The patch holds only the fields that differ from original, the informer's copy. If
		// that copy lags behind this controller's own last write, a field flipped back to its
		// cached value would be left out, and the stale value would stay. The resourceVersion
		// makes such a patch conflict instead, and the retry reads the newer copy.
		patch := client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})
		if err := r.patchStatus(ctx, download, patch); err != nil {
			return requeueOnConflict(err)
		}
		r.recordTransition(original, download)
		r.emitEvents(original, download)
		r.statusWritten(download)
	}
	if !isFinished(download) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: max(r.nextVisit(download).Sub(r.Clock.Now()), minFinishedRequeue)}, nil
}

// statusWriteWait is how long a status change must wait to fold into one write with the next:
// until StatusWriteInterval has passed since the last write, or since this controller first
// saw the Download in flight. Finishing is never held back, so neither clients nor kubectl wait
// are.
func (r *DownloadReconciler) statusWriteWait(download *downloadv1alpha1.Download) time.Duration {
	if r.Options.StatusWriteInterval <= 0 || isFinished(download) {
		return 0
	}
	last, _ := r.lastStatusWrites.LoadOrStore(download.UID, r.Clock.Now())
	return last.(time.Time).Add(r.Options.StatusWriteInterval).Sub(r.Clock.Now())
}

// statusWritten records a status write for statusWriteWait; a finished Download has no more.
func (r *DownloadReconciler) statusWritten(download *downloadv1alpha1.Download) {
	if isFinished(download) {
		r.lastStatusWrites.Delete(download.UID)
		r.progressReporters.Delete(download.UID)
		return
	}
	r.lastStatusWrites.Store(download.UID, r.Clock.Now())
}

// patchStatus sends the status patch inside a span that shows what the Download became.
func (r *DownloadReconciler) patchStatus(ctx context.Context, download *downloadv1alpha1.Download, patch client.Patch) error {
	ctx, span := startSpan(ctx, SpanWriteStatus, download)
	defer span.End()
	span.SetAttributes(
		attribute.String("download.phase", string(download.Status.Phase)),
		attribute.Int("download.progress", int(download.Status.Progress)),
		attribute.Int64("download.bytes_done", download.Status.BytesDone),
	)
	if err := r.Status().Patch(ctx, download, patch); err != nil {
		err = fmt.Errorf("writing status: %w", err)
		if apierrors.IsConflict(err) {
			// A conflict is an ordinary retry, not a failure worth marking in the trace.
			span.SetAttributes(attribute.Bool("download.conflict", true))
			return err
		}
		return tracing.RecordError(span, err)
	}
	return nil
}

// recordTransition emits the Event and metrics of a Download that just finished.
func (r *DownloadReconciler) recordTransition(original, download *downloadv1alpha1.Download) {
	if isFinished(original) || !isFinished(download) {
		return
	}
	took := download.Status.CompletionTime.Sub(download.CreationTimestamp.Time)
	if download.Status.Phase == downloadv1alpha1.PhaseCompleted {
		r.Recorder.Eventf(download, nil, corev1.EventTypeNormal, downloadv1alpha1.ReasonArchiveReady, "Complete",
			"archive of %d files (%d bytes) ready after %s", len(download.Spec.FileIDs), download.Status.Archive.Size, took.Round(time.Second))
		observeCompleted(download, took)
		return
	}
	failed := meta.FindStatusCondition(download.Status.Conditions, downloadv1alpha1.ConditionFailed)
	r.Recorder.Eventf(download, nil, corev1.EventTypeWarning, failed.Reason, "Fail", "%s", failed.Message)
	observeFailed(failed.Reason)
}
