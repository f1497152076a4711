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

package worker

import (
	"go.opentelemetry.io/otel/attribute"
)

// Span names of a run. One span per source and one for the upload, never one per chunk, so a
// trace stays small whatever the archive's size.
const (
	// SpanRun covers all of Run and is the child of the span in TRACEPARENT (the controller's).
	SpanRun = "worker.Run"
	// SpanStat covers the stat of every source, which finds missing files before any upload.
	SpanStat = "source.stat"
	// SpanSourceRead covers reading one source into its archive entry. The reads and the upload
	// run at the same time, joined by a pipe, so source.read spans are siblings of archive.upload
	// under worker.Run rather than its children.
	SpanSourceRead = "source.read"
	// SpanUpload covers the multipart upload of the archive.
	SpanUpload = "archive.upload"
)

// Span attribute keys. Bucket and key follow OpenTelemetry's semantic conventions for S3, which
// MinIO speaks; the rest are the operator's own.
const (
	AttrBucket         = attribute.Key("aws.s3.bucket")
	AttrKey            = attribute.Key("aws.s3.key")
	AttrFiles          = attribute.Key("download.files")
	AttrFileID         = attribute.Key("download.file_id")
	AttrBytesRead      = attribute.Key("download.bytes_read")
	AttrBytesTotal     = attribute.Key("download.bytes_total")
	AttrBytesUploaded  = attribute.Key("download.bytes_uploaded")
	AttrDeflated       = attribute.Key("download.deflated")
	AttrParts          = attribute.Key("download.upload_parts")
	AttrPartSize       = attribute.Key("download.part_size")
	AttrArchiveSize    = attribute.Key("download.archive_size")
	AttrFailureReason  = attribute.Key("download.failure_reason")
	AttrExitCode       = attribute.Key("download.exit_code")
	AttrMissingFileIDs = attribute.Key("download.missing_file_ids")
	AttrSkippedFileIDs = attribute.Key("download.skipped_file_ids")
)

// uploadParts is how many parts minio-go's upload of unknown size sends for size bytes: full
// parts, then the rest, and always at least one.
func uploadParts(size int64, partSize uint64) int64 {
	if size <= 0 || partSize == 0 {
		return 1
	}
	return (size + int64(partSize) - 1) / int64(partSize)
}
