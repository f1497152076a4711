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

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The bounds below are enforced twice: by the kubebuilder markers on DownloadSpec (the apiserver)
// and by the facade, which uses these constants. Markers cannot reference Go constants, so a test
// compares the generated CRD schema with these values.
const (
	// MinFileIDs and MaxFileIDs bound how many files one archive may bundle.
	MinFileIDs = 1
	MaxFileIDs = 1000
	// MinFileID and MaxFileID bound each source file id.
	MinFileID int64 = 10_000
	MaxFileID int64 = 100_000_000

	// MinURLExpirySeconds and MaxURLExpirySeconds follow S3 presigning limits (1 s .. 7 days);
	// the lower bound is raised to one minute so a URL survives the client's next poll.
	MinURLExpirySeconds = 60
	MaxURLExpirySeconds = 604_800

	DefaultTTLSecondsAfterFinished = 3600
	DefaultURLExpirySeconds        = 900
	DefaultActiveDeadlineSeconds   = 600
	DefaultBackoffLimit            = 3
)

// DownloadSpec is what to bundle and the limits for preparing it. It is immutable: a Download
// is one request, so a different request is a different Download.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable after creation; create a new Download instead"
// +kubebuilder:validation:XValidation:rule="!has(self.urlExpirySeconds) || !has(self.ttlSecondsAfterFinished) || self.urlExpirySeconds <= self.ttlSecondsAfterFinished",message="urlExpirySeconds must not exceed ttlSecondsAfterFinished, because the archive is deleted when the Download expires and the URL would then point at nothing"
type DownloadSpec struct {
	// fileIds are the source files to bundle, in archive order. Each id may appear only once.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:Minimum=10000
	// +kubebuilder:validation:items:Maximum=100000000
	// +listType=set
	// +required
	FileIDs []int64 `json:"fileIds"`

	// ttlSecondsAfterFinished is how long the Download and its archive are kept after it
	// completes or fails. Both are deleted when it runs out.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=3600
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`

	// urlExpirySeconds is how long the presigned download URL stays valid once issued.
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=604800
	// +kubebuilder:default=900
	// +optional
	URLExpirySeconds *int32 `json:"urlExpirySeconds,omitempty"`

	// activeDeadlineSeconds bounds the whole preparation, retries included, like a Job's.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=600
	// +optional
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`

	// backoffLimit is how many times a failed worker is retried before the Download fails.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=3
	// +optional
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`

	// maxBytesPerSecond caps the worker's bandwidth; 0 means unlimited.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=0
	// +optional
	MaxBytesPerSecond *int64 `json:"maxBytesPerSecond,omitempty"`

	// reusePolicy says whether this Download may share work with Downloads of the same files in
	// the same order: follow a Job already preparing them, or complete at once from a stored
	// archive of the same content (same ids, same source ETags, same archive format).
	// IfAvailable shares; Never runs a Job of its own and offers its work to nobody.
	// +kubebuilder:default=IfAvailable
	// +optional
	ReusePolicy ReusePolicy `json:"reusePolicy,omitempty"`

	// missingFiles says what happens when some fileIds have no source object. Fail fails the
	// Download with SourceNotFound, naming them. Skip leaves them out of the archive and lists them
	// in status.skippedFileIds and in the archive's manifest.json; the Download still completes
	// unless every id is missing.
	// +kubebuilder:default=Fail
	// +optional
	MissingFiles MissingFilesPolicy `json:"missingFiles,omitempty"`
}

// MissingFilesPolicy says what a Download does about requested files that do not exist.
// +kubebuilder:validation:Enum=Fail;Skip
type MissingFilesPolicy string

const (
	// MissingFilesFail fails the whole Download when any requested file is missing.
	MissingFilesFail MissingFilesPolicy = "Fail"
	// MissingFilesSkip archives the files that exist and reports the others as skipped.
	MissingFilesSkip MissingFilesPolicy = "Skip"
)

// ReusePolicy says whether a Download shares work with identical ones.
// +kubebuilder:validation:Enum=IfAvailable;Never
type ReusePolicy string

const (
	// ReuseIfAvailable shares work with identical Downloads where the operator allows it.
	ReuseIfAvailable ReusePolicy = "IfAvailable"
	// ReuseNever gives the Download a Job and an archive of its own, shared with nobody.
	ReuseNever ReusePolicy = "Never"
)

// DownloadPhase is a one-word summary of the conditions, for humans and printer columns.
// Clients that need detail read the conditions.
// +kubebuilder:validation:Enum=Pending;Processing;Completed;Failed
type DownloadPhase string

const (
	// PhasePending: accepted, but no worker has reported progress yet.
	PhasePending DownloadPhase = "Pending"
	// PhaseProcessing: a worker is streaming the archive.
	PhaseProcessing DownloadPhase = "Processing"
	// PhaseCompleted: the archive is stored and downloadURL is set.
	PhaseCompleted DownloadPhase = "Completed"
	// PhaseFailed: the Download will not complete; the Failed condition says why.
	PhaseFailed DownloadPhase = "Failed"
)

// Condition types. Complete and Failed mirror batch/v1 Job so that
// `kubectl wait --for=condition=Complete` works the same way on a Download. Ready, Reconciling
// and Stalled follow kstatus (sigs.k8s.io/cli-utils/pkg/kstatus), which Helm's --wait, Flux and
// Argo CD read: Reconciling and Stalled are abnormal-true, Ready is the positive one. Every
// condition carries the reason of the change that set it.
const (
	ConditionComplete    = "Complete"
	ConditionFailed      = "Failed"
	ConditionProgressing = "Progressing"
	// ConditionReady is True once the archive is stored and its URL signed (phase Completed).
	ConditionReady = "Ready"
	// ConditionReconciling is True while the Download is pending or processing.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True once the Download failed for good, with the Failed reason.
	ConditionStalled = "Stalled"
)

// Condition reasons. They are CamelCase per metav1.Condition and form a closed set that
// clients (the facade's error codes, dashboards) may match on.
const (
	// ReasonJobCreated: the worker Job exists and waits for its Pod to report progress.
	ReasonJobCreated = "JobCreated"
	// ReasonQueued: the worker Job waits, suspended, for Kueue to admit it from the namespace's
	// LocalQueue. Its deadline and the worker credential only start once it is admitted.
	ReasonQueued = "Queued"
	// ReasonArchiving: the worker reports bytes streamed into the archive.
	ReasonArchiving = "Archiving"
	// ReasonRetrying: a worker attempt failed with a retryable error and another one runs.
	ReasonRetrying = "Retrying"
	// ReasonArchiveReady: the archive is stored and a presigned URL was issued.
	ReasonArchiveReady = "ArchiveReady"
	// ReasonSourceNotFound: some requested file ids do not exist; retrying cannot help.
	ReasonSourceNotFound = "SourceNotFound"
	// ReasonArchiveTooLarge: the requested files could make an archive larger than one storage
	// object may be (5 TiB), so the worker refused it before uploading; retrying cannot help.
	ReasonArchiveTooLarge = "ArchiveTooLarge"
	// ReasonStorageError: object storage kept failing until the retries ran out.
	ReasonStorageError = "StorageError"
	// ReasonDeadlineExceeded: preparation took longer than activeDeadlineSeconds.
	ReasonDeadlineExceeded = "DeadlineExceeded"
	// ReasonBackoffLimitExceeded: the worker failed backoffLimit+1 times for other reasons.
	ReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	// ReasonNamespaceNotServed: the operator does not run workers in this namespace.
	ReasonNamespaceNotServed = "NamespaceNotServed"
	// ReasonResultMissing: the worker succeeded without reporting its archive, which is a bug.
	ReasonResultMissing = "ResultMissing"
	// ReasonArchiveReused: the Download completed with the archive of an identical Download,
	// prepared by that Download's Job (status.reusedFrom names it).
	ReasonArchiveReused = "ArchiveReused"
	// ReasonResultRejected: the worker reported an archive other than the one it was asked for,
	// or one that storage does not hold with the reported size. Never signed.
	ReasonResultRejected = "ResultRejected"
)

// ArchiveStatus identifies the finished archive and lets clients verify what they download.
type ArchiveStatus struct {
	// bucket holds the archive.
	Bucket string `json:"bucket"`
	// key is the archive's object key within bucket.
	Key string `json:"key"`
	// size is the archive's length in bytes.
	// +kubebuilder:validation:Minimum=0
	Size int64 `json:"size"`
	// sha256 is the hex digest of the archive, computed while it was streamed.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SHA256 string `json:"sha256"`
}

// DownloadStatus is the observed state of a Download. Only the controller writes it, through
// the status subresource.
type DownloadStatus struct {
	// observedGeneration is the metadata.generation this status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase summarises the conditions.
	// +optional
	Phase DownloadPhase `json:"phase,omitempty"`

	// fileCount is len(spec.fileIds), kept here because printer columns cannot count a list.
	// +kubebuilder:validation:Minimum=0
	// +optional
	FileCount int32 `json:"fileCount,omitempty"`

	// progress is the percentage of bytesTotal already archived.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Progress int32 `json:"progress,omitempty"`

	// bytesDone is how many source bytes are already in the archive.
	// +kubebuilder:validation:Minimum=0
	// +optional
	BytesDone int64 `json:"bytesDone,omitempty"`

	// bytesTotal is the summed size of the source files, once the worker knows it.
	// +kubebuilder:validation:Minimum=0
	// +optional
	BytesTotal int64 `json:"bytesTotal,omitempty"`

	// etaSeconds estimates the time left until completion.
	// +kubebuilder:validation:Minimum=0
	// +optional
	EtaSeconds *int64 `json:"etaSeconds,omitempty"`

	// skippedFileIds are the requested ids left out of the archive because they have no source
	// object (spec.missingFiles: Skip), in ascending order. The archive's manifest.json lists them too.
	// +listType=set
	// +optional
	SkippedFileIDs []int64 `json:"skippedFileIds,omitempty"`

	// jobName is the worker Job for this Download.
	// +optional
	JobName string `json:"jobName,omitempty"`

	// attempts counts the worker Pods started so far, retries included.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Attempts int32 `json:"attempts,omitempty"`

	// startTime is when the worker Job started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the Download completed or failed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// downloadURL is a presigned GET URL for the archive, signed for the public endpoint.
	// +optional
	DownloadURL string `json:"downloadURL,omitempty"`

	// urlExpiresAt is when downloadURL stops working.
	// +optional
	URLExpiresAt *metav1.Time `json:"urlExpiresAt,omitempty"`

	// archive describes the finished archive.
	// +optional
	Archive *ArchiveStatus `json:"archive,omitempty"`

	// reusedFrom names the Download whose work this one reused: whose Job it followed, or whose
	// stored archive it took. It is namespace/name when that Download is in another namespace.
	// +optional
	ReusedFrom string `json:"reusedFrom,omitempty"`

	// contentDigest identifies the archive's content: the sha256 of the archive format, the file
	// ids in order and the ETags their sources had when the Job started. Downloads whose digests
	// are equal can share one archive.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	// +optional
	ContentDigest string `json:"contentDigest,omitempty"`

	// conditions are Complete and Failed (as on a Job), Progressing, and Ready, Reconciling and
	// Stalled (kstatus: Reconciling while pending or processing, Ready once completed, Stalled
	// once failed).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// URL-Expires is a string column because a date column renders future times as "<invalid>".
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dl,categories=all
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Progress",type=integer,JSONPath=`.status.progress`
// +kubebuilder:printcolumn:name="Files",type=integer,JSONPath=`.status.fileCount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="URL-Expires",type=string,JSONPath=`.status.urlExpiresAt`,priority=1
// +kubebuilder:printcolumn:name="Reused-From",type=string,JSONPath=`.status.reusedFrom`,priority=1

// Download asks for a set of files to be bundled into one zip archive, prepared in the
// background by a Job, and offered through a presigned URL. Its name is the jobId clients poll.
type Download struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is a standard object metadata
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is what to bundle and the limits for preparing it. It cannot change after creation.
	// +required
	Spec DownloadSpec `json:"spec"`

	// status is the progress and result, written only by the controller.
	// +optional
	Status DownloadStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// DownloadList contains a list of Download
type DownloadList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []Download `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &Download{}, &DownloadList{})
		return nil
	})
}
