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

// Package jobreport is the contract between the worker and the controller. The worker may only
// patch its own Job, so it reports progress, its result and any failure as annotations on
// that Job; the controller reads them from its Job informer and mirrors them into the Download.
package jobreport

import (
	"encoding/json"
	"fmt"
)

// Annotation keys on the worker's Job. Each holds one JSON document.
const (
	// ProgressAnnotation holds a Progress, rewritten at most once per ProgressInterval.
	ProgressAnnotation = "download.operator.dev/progress"
	// ResultAnnotation holds a Result, written once after the archive is stored.
	ResultAnnotation = "download.operator.dev/result"
	// FailureAnnotation holds a Failure, written before the worker exits non-zero.
	FailureAnnotation = "download.operator.dev/failure"
)

// Worker exit codes. The Job's podFailurePolicy fails the Job at once on ExitPermanent; any other
// non-zero code counts against backoffLimit and is retried.
const (
	// ExitPermanent: retrying cannot help (for example a requested file does not exist).
	ExitPermanent = 3
	// ExitRetryable: storage or network trouble that a later attempt may not meet.
	ExitRetryable = 4
	// ExitUsage: the worker was started with invalid arguments; a controller bug, not retried.
	ExitUsage = 2
)

// Progress is how far the worker is. BytesTotal is known once every source object was stat'ed.
type Progress struct {
	BytesDone  int64 `json:"bytesDone"`
	BytesTotal int64 `json:"bytesTotal"`
	// Pod names the worker Pod that wrote the report. An attempt's last report stays on the Job
	// after its Pod failed, until the next attempt writes its own; the controller uses the name to
	// tell such a stale report from the running attempt's.
	Pod string `json:"pod,omitempty"`
}

// Result identifies the stored archive.
type Result struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// BytesTotal is the source bytes archived: the final progress, carried by the result so
	// that it costs no write of its own.
	BytesTotal int64 `json:"bytesTotal,omitempty"`
	// SkippedFileIDs are the requested ids left out because they have no source object
	// (missing-file policy Skip), ascending. The archive's manifest lists them too.
	SkippedFileIDs []int64 `json:"skippedFileIds,omitempty"`
}

// Failure explains why an attempt failed. Reason is one of the Reason constants of
// api/v1alpha1 (for example SourceNotFound or StorageError).
type Failure struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// MissingFileIDs lists the requested ids with no source object, for SourceNotFound.
	MissingFileIDs []int64 `json:"missingFileIds,omitempty"`
}

// Encode renders a report as an annotation value.
func Encode(report any) (string, error) {
	raw, err := json.Marshal(report)
	if err != nil {
		return "", fmt.Errorf("encoding job report: %w", err)
	}
	return string(raw), nil
}

// Decode reads the annotation key from annotations into report. It returns false when the
// annotation is absent.
func Decode(annotations map[string]string, key string, report any) (bool, error) {
	raw, ok := annotations[key]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal([]byte(raw), report); err != nil {
		return true, fmt.Errorf("decoding annotation %s: %w", key, err)
	}
	return true, nil
}
