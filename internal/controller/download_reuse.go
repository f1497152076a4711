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
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/storage"
	"github.com/download-operator/download-operator/internal/worker"
)

// Reuse lets identical Downloads share work. A Download that asks for the same files in the same
// order as one still in flight follows that one's Job instead of starting a Pod; one whose
// content (ids, source ETags, archive format) matches a completed Download's archive completes
// at once with a URL of its own. Every sharer owns the Job and points at the archive, so the Job
// stops and the archive goes only when the last of them does.

// ReuseScope is how far the operator lets Downloads share work.
type ReuseScope string

const (
	// ReuseOff gives every Download a Job and an archive of its own.
	ReuseOff ReuseScope = "Off"
	// ReuseNamespace shares work between Downloads of one namespace.
	ReuseNamespace ReuseScope = "Namespace"
	// ReuseCluster also lets a Download take a stored archive made in another namespace. A Job
	// is followed only within its namespace: owner references cannot cross namespaces.
	ReuseCluster ReuseScope = "Cluster"
)

// ReuseScopes are the valid scopes, for flag validation.
var ReuseScopes = []ReuseScope{ReuseOff, ReuseNamespace, ReuseCluster}

const (
	// requestIndex indexes Downloads by the files they ask for, in order.
	requestIndex = "download.operator.dev/request"
	// archiveIndex indexes Downloads by the archive they use (bucket/key), so that a deleted
	// Download can tell whether another still needs its archive.
	archiveIndex = "download.operator.dev/archive"
	// contentDigestAnnotation is on a worker Job's Pod template, which no worker can change: the
	// digest of the content the Job was started for, copied into status when it completes.
	contentDigestAnnotation = "download.operator.dev/content-digest"
	// archiveFormat versions the archive's layout inside content digests, so that an archive
	// made by an older worker is never reused for a newer layout. zip/2 ends with manifest.json.
	archiveFormat = "zip/2"
	// followRetry is how soon to look again for a followed Job the cache has not seen yet.
	followRetry = 200 * time.Millisecond
)

func (r *DownloadReconciler) reusable(download *downloadv1alpha1.Download) bool {
	return r.Options.Reuse != ReuseOff && download.Spec.ReusePolicy != downloadv1alpha1.ReuseNever
}

// requestKey identifies what a Download asks for: the files in archive order, and what to do
// about missing ones, since a Download that skips them must not wait on one that fails for them.
func requestKey(spec downloadv1alpha1.DownloadSpec) string {
	raw := make([]byte, 0, 8*len(spec.FileIDs)+8)
	for _, id := range spec.FileIDs {
		raw = binary.BigEndian.AppendUint64(raw, uint64(id))
	}
	raw = append(raw, missingFilesPolicy(spec)...)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// missingFilesPolicy is the spec's policy with the API default applied, for Downloads created
// before the field existed.
func missingFilesPolicy(spec downloadv1alpha1.DownloadSpec) downloadv1alpha1.MissingFilesPolicy {
	return cmp.Or(spec.MissingFiles, downloadv1alpha1.MissingFilesFail)
}

// sameRequest compares what requestKey hashes, so that a hash collision can never share work.
func sameRequest(a, b downloadv1alpha1.DownloadSpec) bool {
	return slices.Equal(a.FileIDs, b.FileIDs) && missingFilesPolicy(a) == missingFilesPolicy(b)
}

// leaderKey names the lock and the leaders entry that identical Downloads of a namespace share.
func leaderKey(download *downloadv1alpha1.Download) string {
	return download.Namespace + "/" + requestKey(download.Spec)
}

// contentDigest identifies an archive's content: the format, the ids in order and their ETags.
func contentDigest(ids []int64, etags []string) string {
	h := sha256.New()
	h.Write([]byte(archiveFormat))
	for i, id := range ids {
		fmt.Fprintf(h, "\x00%d\x00%s", id, etags[i])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// preparer is the Download whose Job prepares this one's archive: the one it follows, or itself.
func preparer(download *downloadv1alpha1.Download) string {
	if follows(download) {
		return download.Status.ReusedFrom
	}
	return download.Name
}

// follows tells whether a Download waits on another Download's Job (in its own namespace).
func follows(download *downloadv1alpha1.Download) bool {
	return download.Status.ReusedFrom != "" && download.Status.Archive == nil && !strings.Contains(download.Status.ReusedFrom, "/")
}

// archiveOf is the archive a Download uses: the one in its status once it has one, otherwise the
// one its Job writes.
func (r *DownloadReconciler) archiveOf(download *downloadv1alpha1.Download) (bucket, key string) {
	if archive := download.Status.Archive; archive != nil {
		return archive.Bucket, archive.Key
	}
	return r.Options.ArchiveBucket, archiveKeyOf(download.Namespace, preparer(download))
}

// leads tells whether other Downloads may follow this one's Job: it runs its own, still in
// flight, and shares its work.
func leads(download *downloadv1alpha1.Download) bool {
	return download.DeletionTimestamp.IsZero() && !isFinished(download) && download.Status.ReusedFrom == "" &&
		download.Spec.ReusePolicy != downloadv1alpha1.ReuseNever
}

// ensureWork finds or starts what prepares the Download's archive, in this order: the Job it
// already has or follows; the Job of an identical Download in flight; a stored archive of the
// same content, which completes it at once; a Job of its own. It returns the Job to mirror, or
// nil when there is none: the Download completed from a stored archive, or the Job it waits for
// has not reached the cache yet (wait is then how soon to look again).
func (r *DownloadReconciler) ensureWork(ctx context.Context, download *downloadv1alpha1.Download) (job *batchv1.Job, wait time.Duration, err error) {
	if follows(download) {
		job, wait, err := r.followJob(ctx, download, download.Status.ReusedFrom)
		if job != nil || err != nil {
			return job, wait, err
		}
		// The Job it followed is gone: choose again.
		download.Status.ReusedFrom, download.Status.JobName = "", ""
	}
	if !r.reusable(download) || download.Status.JobName != "" {
		return r.ensureOwnJob(ctx, download, "")
	}
	own, err := r.cachedJob(ctx, download.Namespace, jobName(download))
	if err != nil || own != nil {
		return r.ensureOwnJob(ctx, download, "")
	}

	// Identical Downloads decide one at a time, so that two arriving together start one Job.
	key := leaderKey(download)
	r.requestLocks.LockKey(key)
	defer func() { _ = r.requestLocks.UnlockKey(key) }()

	leader, err := r.inFlightLeader(ctx, download, key)
	if err != nil {
		return nil, 0, err
	}
	if leader != "" {
		return r.followJob(ctx, download, leader)
	}
	digest := r.contentDigestOf(ctx, download)
	if digest != "" {
		source, err := r.storedArchive(ctx, download, digest)
		if err != nil {
			return nil, 0, err
		}
		if source != nil {
			return nil, 0, r.completeFromArchive(ctx, download, source, digest)
		}
	}
	// The cache may not show this Job to the next identical Download for a while: remember it.
	r.leaders.Store(key, download.Name)
	return r.ensureOwnJob(ctx, download, digest)
}

// ensureOwnJob adapts ensureJob to ensureWork's results.
func (r *DownloadReconciler) ensureOwnJob(ctx context.Context, download *downloadv1alpha1.Download, digest string) (*batchv1.Job, time.Duration, error) {
	job, err := r.ensureJob(ctx, download, digest)
	if err != nil || job != nil {
		return job, 0, err
	}
	// A Job by our name that belongs to an older Download is still being garbage-collected.
	return nil, jobCollisionRetry, nil
}

func (r *DownloadReconciler) cachedJob(ctx context.Context, namespace, name string) (*batchv1.Job, error) {
	var job batchv1.Job
	err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &job)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("getting Job %s: %w", name, err)
	}
	return &job, nil
}

// inFlightLeader names the Download in flight whose Job prepares the same files, or "". Jobs
// started since the cache last caught up are in r.leaders; after a restart, the cache holds them.
func (r *DownloadReconciler) inFlightLeader(ctx context.Context, download *downloadv1alpha1.Download, key string) (string, error) {
	if name, found := r.leaders.Load(key); found && name != download.Name {
		var leader downloadv1alpha1.Download
		err := r.Get(ctx, client.ObjectKey{Namespace: download.Namespace, Name: name.(string)}, &leader)
		switch {
		case err == nil && leads(&leader):
			return leader.Name, nil
		case client.IgnoreNotFound(err) != nil:
			return "", fmt.Errorf("getting Download %s: %w", name, err)
		}
		r.leaders.CompareAndDelete(key, name)
	}
	var candidates downloadv1alpha1.DownloadList
	if err := r.List(ctx, &candidates, client.InNamespace(download.Namespace),
		client.MatchingFields{requestIndex: requestKey(download.Spec)}); err != nil {
		return "", fmt.Errorf("listing identical Downloads: %w", err)
	}
	var leader *downloadv1alpha1.Download
	for i := range candidates.Items {
		candidate := &candidates.Items[i]
		if candidate.Name == download.Name || !leads(candidate) || !sameRequest(candidate.Spec, download.Spec) {
			continue
		}
		started, err := r.startedJob(ctx, candidate)
		if err != nil {
			return "", err
		}
		if started && (leader == nil || candidate.CreationTimestamp.Before(&leader.CreationTimestamp)) {
			leader = candidate
		}
	}
	if leader == nil {
		return "", nil
	}
	r.leaders.Store(key, leader.Name)
	return leader.Name, nil
}

// startedJob tells whether a Download has started its Job. Status says so once written; the
// Job cache says so before that, since progress writes are paced and may lag the Job.
func (r *DownloadReconciler) startedJob(ctx context.Context, download *downloadv1alpha1.Download) (bool, error) {
	if download.Status.JobName != "" {
		return true, nil
	}
	job, err := r.cachedJob(ctx, download.Namespace, jobName(download))
	return job != nil, err
}

// followJob makes the Download wait on its leader's Job: it becomes one of the Job's owners, so
// that the Job keeps running while anyone waits for it, and its events reach this Download.
func (r *DownloadReconciler) followJob(ctx context.Context, download *downloadv1alpha1.Download, leader string) (*batchv1.Job, time.Duration, error) {
	job, err := r.cachedJob(ctx, download.Namespace, jobNameOf(leader))
	if err != nil {
		return nil, 0, err
	}
	if job == nil || !job.DeletionTimestamp.IsZero() {
		// Either the leader created it a moment ago and the cache lags, or it is gone and this
		// Download must start over: look once more after a short wait, from the beginning.
		download.Status.ReusedFrom, download.Status.JobName = "", ""
		return nil, followRetry, nil
	}
	download.Status.ReusedFrom = leader
	if !ownedBy(job, download) {
		if err := r.addOwner(ctx, job, download); err != nil {
			return nil, 0, err
		}
		logf.FromContext(ctx).V(1).Info("following the Job of an identical Download", "job", job.Name, "leader", leader)
	}
	return job, 0, nil
}

func ownedBy(job *batchv1.Job, download *downloadv1alpha1.Download) bool {
	return slices.ContainsFunc(job.OwnerReferences, func(ref metav1.OwnerReference) bool { return ref.UID == download.UID })
}

// addOwner adds the Download to the Job's owners with a strategic merge patch, which merges
// owner references by UID: no read of the current list, and repeating it changes nothing.
func (r *DownloadReconciler) addOwner(ctx context.Context, job *batchv1.Job, download *downloadv1alpha1.Download) error {
	ref := metav1.OwnerReference{
		APIVersion: downloadv1alpha1.GroupVersion.String(), Kind: "Download",
		Name: download.Name, UID: download.UID,
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{ref}}})
	if err != nil {
		return fmt.Errorf("encoding owner patch: %w", err)
	}
	if err := r.Patch(ctx, job, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		return fmt.Errorf("adding Download %s to the owners of Job %s: %w", download.Name, job.Name, err)
	}
	return nil
}

// contentDigestOf stats the Download's sources. It returns "" when one is missing or storage
// cannot tell: such a Download reuses nothing, and its worker reports what is wrong.
func (r *DownloadReconciler) contentDigestOf(ctx context.Context, download *downloadv1alpha1.Download) string {
	keys := make([]string, len(download.Spec.FileIDs))
	layout := worker.Config{SourceKeyTemplate: r.Options.SourceKeyTemplate}
	for i, id := range download.Spec.FileIDs {
		keys[i] = layout.SourceKey(id)
	}
	etags, err := r.Storage.SourceETags(ctx, r.Options.SourceBucket, keys)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			logf.FromContext(ctx).Error(err, "cannot read the sources' ETags; not reusing any archive")
		}
		return ""
	}
	return contentDigest(download.Spec.FileIDs, etags)
}

// storedArchive finds a completed Download, still inside its TTL, whose archive has the same
// content and is still in storage.
func (r *DownloadReconciler) storedArchive(ctx context.Context, download *downloadv1alpha1.Download, digest string) (*downloadv1alpha1.Download, error) {
	opts := []client.ListOption{client.MatchingFields{requestIndex: requestKey(download.Spec)}}
	if r.Options.Reuse != ReuseCluster {
		opts = append(opts, client.InNamespace(download.Namespace))
	}
	var candidates downloadv1alpha1.DownloadList
	if err := r.List(ctx, &candidates, opts...); err != nil {
		return nil, fmt.Errorf("listing identical Downloads: %w", err)
	}
	now := r.Clock.Now()
	for i := range candidates.Items {
		candidate := &candidates.Items[i]
		archive := candidate.Status.Archive
		if candidate.UID == download.UID || candidate.Status.Phase != downloadv1alpha1.PhaseCompleted || archive == nil ||
			candidate.Status.ContentDigest != digest || !candidate.DeletionTimestamp.IsZero() ||
			candidate.Spec.ReusePolicy == downloadv1alpha1.ReuseNever || !now.Before(candidate.ExpiresAt()) ||
			!sameRequest(candidate.Spec, download.Spec) {
			continue
		}
		size, err := r.Storage.ArchiveSize(ctx, archive.Bucket, archive.Key)
		switch {
		case errors.Is(err, storage.ErrNotFound) || (err == nil && size != archive.Size):
			continue
		case err != nil:
			return nil, fmt.Errorf("checking the stored archive of Download %s: %w", candidate.Name, err)
		}
		return candidate, nil
	}
	return nil, nil
}

// completeFromArchive completes the Download with another's stored archive and a URL of its own.
func (r *DownloadReconciler) completeFromArchive(ctx context.Context, download, source *downloadv1alpha1.Download, digest string) error {
	status := &download.Status
	status.ReusedFrom = source.Name
	if source.Namespace != download.Namespace {
		status.ReusedFrom = source.Namespace + "/" + source.Name
	}
	status.Archive = source.Status.Archive.DeepCopy()
	status.ContentDigest = digest
	status.FileCount = int32(len(download.Spec.FileIDs))
	status.BytesTotal = source.Status.BytesTotal
	status.CompletionTime = ptr.To(metav1.NewTime(r.Clock.Now()))
	logf.FromContext(ctx).V(1).Info("completing from the stored archive of an identical Download", "source", status.ReusedFrom)
	return r.markCompleted(ctx, download, downloadv1alpha1.ReasonArchiveReused,
		fmt.Sprintf("the archive of Download %s has the same content; its URL is signed", status.ReusedFrom))
}

// archiveShared tells whether another Download, not being deleted, still uses the archive or
// waits for the Job that writes it. The Job's owners answer for followers whose status has not
// reached the cache yet.
func (r *DownloadReconciler) archiveShared(ctx context.Context, download *downloadv1alpha1.Download) (bool, error) {
	if waiting, err := r.othersWaitFor(ctx, download); err != nil || waiting {
		return waiting, err
	}
	bucket, key := r.archiveOf(download)
	var users downloadv1alpha1.DownloadList
	if err := r.List(ctx, &users, client.MatchingFields{archiveIndex: bucket + "/" + key}); err != nil {
		return false, fmt.Errorf("listing the Downloads that use archive of %s: %w", download.Name, err)
	}
	return slices.ContainsFunc(users.Items, func(other downloadv1alpha1.Download) bool {
		return other.UID != download.UID && other.DeletionTimestamp.IsZero()
	}), nil
}

// othersWaitFor tells whether another live Download owns the Job this Download's archive comes from.
func (r *DownloadReconciler) othersWaitFor(ctx context.Context, download *downloadv1alpha1.Download) (bool, error) {
	if !r.Options.serves(download.Namespace) {
		return false, nil
	}
	job, err := r.cachedJob(ctx, download.Namespace, workerJobName(download))
	if err != nil || job == nil {
		return false, err
	}
	for _, ref := range job.OwnerReferences {
		if ref.Kind != "Download" || ref.UID == download.UID {
			continue
		}
		var owner downloadv1alpha1.Download
		err := r.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: ref.Name}, &owner)
		switch {
		case err == nil && owner.UID == ref.UID && owner.DeletionTimestamp.IsZero():
			return true, nil
		case client.IgnoreNotFound(err) != nil:
			return false, fmt.Errorf("getting Download %s, an owner of Job %s: %w", ref.Name, job.Name, err)
		}
	}
	return false, nil
}

// workerJobName is the Job a Download mirrors: the one in status, or its own.
func workerJobName(download *downloadv1alpha1.Download) string {
	if download.Status.JobName != "" {
		return download.Status.JobName
	}
	return jobName(download)
}

// forgetLead stops offering a Download's Job to new identical Downloads once it goes. One that
// finished is dropped by inFlightLeader when the cache shows it, not before.
func (r *DownloadReconciler) forgetLead(download *downloadv1alpha1.Download) {
	r.leaders.CompareAndDelete(leaderKey(download), download.Name)
}

// indexDownloads registers the cache indexes reuse reads.
func (r *DownloadReconciler) indexDownloads(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &downloadv1alpha1.Download{}, requestIndex, func(obj client.Object) []string {
		return []string{requestKey(obj.(*downloadv1alpha1.Download).Spec)}
	}); err != nil {
		return fmt.Errorf("indexing Downloads by request: %w", err)
	}
	if err := indexer.IndexField(ctx, &downloadv1alpha1.Download{}, archiveIndex, func(obj client.Object) []string {
		bucket, key := r.archiveOf(obj.(*downloadv1alpha1.Download))
		return []string{bucket + "/" + key}
	}); err != nil {
		return fmt.Errorf("indexing Downloads by archive: %w", err)
	}
	return nil
}
