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

// Package worker builds one zip archive from source objects in object storage and uploads it
// back, streaming end to end: nothing touches local disk and memory stays bounded whatever the
// file sizes. It runs inside the Download's Job Pod and reports through annotations on that Job
// (see internal/jobreport), because patching Jobs is all the RBAC it has. The archive ends with
// manifest.json (internal/manifest), which lists every entry's size and digests and the files
// skipped; docs/architecture.md, "Archive format and limits", describes the format and the sizes
// it supports.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/manifest"
	"github.com/download-operator/download-operator/internal/tracing"
)

const (
	// MinPartSize is the S3 minimum for every part but the last.
	MinPartSize uint64 = 5 << 20
	// MaxPartSize is the S3 maximum part size.
	MaxPartSize uint64 = 5 << 30
	// DefaultPartSize is the S3 minimum, so that the upload's uploadThreads parts take 10 MiB.
	// Under the GOMEMLIMIT of 32 MiB that the controller sets, two parts of 8 MiB brought the live
	// heap up to the GC's goal and the GC ran ten times as often; with 5 MiB the heap stays about
	// as far below the goal as with one part of 8 MiB. minio-go would pick 544 MiB parts for an
	// upload of unknown size. Archives over ~48 GiB (maxParts of 5 MiB) get larger parts
	// (partSizeFor).
	DefaultPartSize = MinPartSize
	// MaxArchiveSize is the largest object S3 stores, 5 TiB. An archive that could grow past it is
	// refused before anything is uploaded (ReasonArchiveTooLarge); its parts would be 525 MiB.
	MaxArchiveSize int64 = 5 << 40
	// maxParts is the most parts that one S3 multipart upload may have.
	maxParts = 10_000
	// DefaultProgressInterval bounds the write rate on the Job to what the apiserver shrugs off.
	DefaultProgressInterval = 3 * time.Second

	// idPlaceholder is replaced by the decimal file id in Config.SourceKeyTemplate.
	idPlaceholder = "{id}"
	// statParallelism overlaps the round trips of stat'ing up to a thousand small objects without
	// flooding the storage server.
	statParallelism = 8
	// cleanupTimeout bounds the abort of a failed upload and the report of a failure or result;
	// they run on a fresh context because the run's own may be the reason they are needed.
	cleanupTimeout = 10 * time.Second
	// maxNamedIDs keeps a failure message readable; the report carries the full list anyway.
	maxNamedIDs = 50
)

// uploadThreads is how many parts the upload holds, each in a buffer of Config.PartSize: while
// one part uploads, the archive goes on filling the next, so reading the sources overlaps with
// the upload instead of stopping for every part's round trip. Two are enough for that overlap;
// four only added buffers (BenchmarkUploadPipeline), the work being bound by the CPU. With the
// archive writer's buffers and compressors (about 3 MiB), the parts are the worker's memory.
const uploadThreads = 2

// Config says what to bundle and where to store it.
type Config struct {
	// FileIDs are the files to bundle, one archive entry each, in this order.
	FileIDs []int64
	// SourceBucket holds the files; SourceKeyTemplate maps an id to its key, with "{id}" standing
	// for the decimal id.
	SourceBucket      string
	SourceKeyTemplate string
	// ArchiveBucket and ArchiveKey name the archive object.
	ArchiveBucket string
	ArchiveKey    string
	// MaxBytesPerSecond caps the rate at which source objects are read; 0 means unlimited.
	MaxBytesPerSecond int64
	// PartSize is the multipart upload's part size, raised for an archive that could need more
	// than 10,000 parts of it. The upload holds two parts (uploadThreads), so this is the bulk of
	// the worker's memory.
	PartSize uint64
	// ProgressInterval is the shortest time between two progress writes.
	ProgressInterval time.Duration
	// MissingFiles says what to do about ids without a source object; empty means
	// MissingFilesFail. With MissingFilesSkip they are left out, listed in the Result and the
	// manifest, unless every id is missing.
	MissingFiles downloadv1alpha1.MissingFilesPolicy
}

// Validate rejects a Config the worker cannot run; such a Config is a bug in the controller.
func (c Config) Validate() error {
	var errs []error
	if len(c.FileIDs) == 0 {
		errs = append(errs, errors.New("no file ids"))
	}
	seen := make(map[int64]bool, len(c.FileIDs))
	for _, id := range c.FileIDs {
		if seen[id] {
			// Two entries with one name would make the archive ambiguous to unpack.
			errs = append(errs, fmt.Errorf("file id %d requested twice", id))
		}
		seen[id] = true
	}
	if c.SourceBucket == "" {
		errs = append(errs, errors.New("no source bucket"))
	}
	if !strings.Contains(c.SourceKeyTemplate, idPlaceholder) {
		errs = append(errs, fmt.Errorf("source key template %q lacks %s, so every id would map to one key",
			c.SourceKeyTemplate, idPlaceholder))
	}
	if c.ArchiveBucket == "" {
		errs = append(errs, errors.New("no archive bucket"))
	}
	if c.ArchiveKey == "" {
		errs = append(errs, errors.New("no archive key"))
	}
	if c.MaxBytesPerSecond < 0 {
		errs = append(errs, fmt.Errorf("negative bandwidth cap %d", c.MaxBytesPerSecond))
	}
	if c.PartSize < MinPartSize || c.PartSize > MaxPartSize {
		errs = append(errs, fmt.Errorf("part size %d outside [%d, %d]", c.PartSize, MinPartSize, MaxPartSize))
	}
	if c.ProgressInterval <= 0 {
		errs = append(errs, fmt.Errorf("progress interval %s is not positive", c.ProgressInterval))
	}
	switch c.MissingFiles {
	case "", downloadv1alpha1.MissingFilesFail, downloadv1alpha1.MissingFilesSkip:
	default:
		errs = append(errs, fmt.Errorf("missing-file policy %q is neither %s nor %s", c.MissingFiles,
			downloadv1alpha1.MissingFilesFail, downloadv1alpha1.MissingFilesSkip))
	}
	return errors.Join(errs...)
}

// SourceKey is the object key of a file id.
func (c Config) SourceKey(id int64) string {
	return strings.ReplaceAll(c.SourceKeyTemplate, idPlaceholder, strconv.FormatInt(id, 10))
}

// EntryName is the name of a file's entry in the archive.
func EntryName(id int64) string {
	return "file-" + strconv.FormatInt(id, 10) + ".bin"
}

// Deps are the worker's connections to the outside, injected so tests run it in-process.
type Deps struct {
	// Source reads the files. Required.
	Source *minio.Client
	// Archive stores the archive; nil means Source. Production uses one endpoint for both.
	Archive *minio.Client
	// Reporter receives progress, the result and any failure. Required.
	Reporter Reporter
	// Clock paces progress reports; nil means the real clock.
	Clock clock.WithTicker
	// Logger receives operational logs; nil discards them. Records are logged with the context of
	// the current span, so a handler wrapped by tracing.NewLogHandler adds trace_id and span_id.
	Logger *slog.Logger
	// TracerProvider receives the run's spans; nil means the global one, which Command sets up.
	TracerProvider trace.TracerProvider
}

// Error is a failed run, classified for the controller.
type Error struct {
	// Exit is the process exit code: ExitPermanent, ExitRetryable or ExitUsage.
	Exit int
	// Failure is what was reported on the Job. It is empty when nothing could be reported: for
	// usage errors (there is no Reason for a controller bug) and when recording the Result failed.
	Failure jobreport.Failure
	Err     error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitCode maps the error of Run to the worker's exit code.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if werr, ok := errors.AsType[*Error](err); ok {
		return werr.Exit
	}
	return jobreport.ExitRetryable
}

// Run stats every source, streams them into one zip archive uploaded to the archive bucket, and
// reports progress, then the Result, through deps.Reporter. On failure it reports a Failure (best
// effort), leaves no archive object and no incomplete upload behind, and returns an *Error.
func Run(ctx context.Context, cfg Config, deps Deps) (_ jobreport.Result, err error) {
	tracer := orDefault(deps.TracerProvider, otel.GetTracerProvider()).Tracer(tracing.ScopeName)
	ctx, span := tracer.Start(ctx, SpanRun, trace.WithAttributes(AttrFiles.Int(len(cfg.FileIDs))))
	defer func() {
		span.SetAttributes(AttrExitCode.Int(ExitCode(err)))
		if werr, ok := errors.AsType[*Error](err); ok && werr.Failure.Reason != "" {
			span.SetAttributes(AttrFailureReason.String(werr.Failure.Reason))
		}
		_ = tracing.RecordError(span, err)
		span.End()
	}()
	if err := cfg.Validate(); err != nil {
		return jobreport.Result{}, &Error{Exit: jobreport.ExitUsage, Err: fmt.Errorf("invalid worker config: %w", err)}
	}
	if deps.Source == nil || deps.Reporter == nil {
		return jobreport.Result{}, &Error{Exit: jobreport.ExitUsage, Err: errors.New("worker needs a source client and a reporter")}
	}
	r := &run{
		cfg:      cfg,
		source:   deps.Source,
		archive:  orDefault(deps.Archive, deps.Source),
		reporter: deps.Reporter,
		clock:    orDefault[clock.WithTicker](deps.Clock, clock.RealClock{}),
		log:      orDefault(deps.Logger, slog.New(slog.DiscardHandler)),
		limiter:  newLimiter(cfg.MaxBytesPerSecond),
		tracer:   tracer,
	}
	started := r.clock.Now()
	result, err := r.bundle(ctx)
	if err != nil {
		failed := classify(ctx, err)
		r.log.ErrorContext(ctx, "archive not stored", "reason", failed.Failure.Reason, "exit", failed.Exit, "error", err)
		r.reportFailure(ctx, failed.Failure)
		return jobreport.Result{}, failed
	}
	elapsed := r.clock.Since(started)
	span.SetAttributes(AttrBytesRead.Int64(r.done.Load()), AttrArchiveSize.Int64(result.Size))
	r.log.InfoContext(ctx, "archive stored", "bucket", result.Bucket, "key", result.Key, "size", result.Size,
		"sha256", result.SHA256, "sourceBytes", r.done.Load(), "elapsed", elapsed.String(), "peakRSSBytes", peakRSS())
	// The archive exists now, so recording it must not be undone by a late cancellation.
	reportCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := r.reporter.Result(reportCtx, result); err != nil {
		// Without the Result the controller cannot hand out the archive; a retry rebuilds it.
		return jobreport.Result{}, &Error{Exit: jobreport.ExitRetryable, Err: fmt.Errorf("recording result: %w", err)}
	}
	return result, nil
}

// orDefault is cmp.Or for types that are not ordered: v unless it is nil.
func orDefault[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// run is the state of one Run.
type run struct {
	cfg      Config
	source   *minio.Client
	archive  *minio.Client
	reporter Reporter
	clock    clock.WithTicker
	log      *slog.Logger
	limiter  *rate.Limiter
	tracer   trace.Tracer
	// done counts source bytes read so far, for progress.
	done byteCounter
}

// source is a file to bundle, as stat'ed before the upload starts.
type source struct {
	id   int64
	key  string
	info minio.ObjectInfo
}

func (r *run) bundle(ctx context.Context) (jobreport.Result, error) {
	sources, skipped, err := r.statSources(ctx)
	if err != nil {
		return jobreport.Result{}, err
	}
	total := sourceBytes(sources)
	r.log.InfoContext(ctx, "sources found", "files", len(sources), "bytes", total, "skipped", len(skipped))
	// Every requested id counts towards the bound, since a skipped one still has a manifest record.
	partSize, err := partSizeFor(total, len(r.cfg.FileIDs), r.cfg.PartSize)
	if err != nil {
		return jobreport.Result{}, err
	}
	if partSize != r.cfg.PartSize {
		r.makeRoomForParts(ctx, partSize)
	}

	progress := newProgressThrottle(r.reporter, r.clock, r.cfg.ProgressInterval, r.log)
	stopProgress := progress.follow(ctx, r.clock, &r.done, total)
	summary, err := r.upload(ctx, sources, skipped, partSize)
	stopProgress()
	if err != nil {
		return jobreport.Result{}, err
	}
	// The result carries the total, so the final count needs no progress write of its own.
	return jobreport.Result{Bucket: r.cfg.ArchiveBucket, Key: r.cfg.ArchiveKey, Size: summary.size, SHA256: summary.sha256,
		BytesTotal: total, SkippedFileIDs: skipped}, nil
}

func sourceBytes(sources []source) int64 {
	var total int64
	for _, s := range sources {
		total += s.info.Size
	}
	return total
}

// statSources stats every source before anything is uploaded, so that a request naming missing
// files fails at once, naming all of them, and progress knows its total. Under MissingFilesSkip
// it returns the sources that exist, in request order, and the missing ids, ascending, instead;
// unless none exists, since an archive of nothing is no answer to any request.
func (r *run) statSources(ctx context.Context) (_ []source, skipped []int64, err error) {
	ctx, span := r.tracer.Start(ctx, SpanStat, trace.WithAttributes(
		AttrBucket.String(r.cfg.SourceBucket), AttrFiles.Int(len(r.cfg.FileIDs))))
	defer func() {
		if notFound, ok := errors.AsType[*sourceNotFoundError](err); ok {
			span.SetAttributes(AttrMissingFileIDs.Int64Slice(notFound.ids))
		}
		_ = tracing.RecordError(span, err)
		span.End()
	}()
	sources := make([]source, len(r.cfg.FileIDs))
	var (
		mu      sync.Mutex
		missing []int64
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(statParallelism)
	for i, id := range r.cfg.FileIDs {
		key := r.cfg.SourceKey(id)
		g.Go(func() error {
			info, err := r.source.StatObject(gctx, r.cfg.SourceBucket, key, minio.StatObjectOptions{})
			if isNoSuchKey(err) {
				mu.Lock()
				missing = append(missing, id)
				mu.Unlock()
				return nil
			}
			if err != nil {
				return fmt.Errorf("stat source %s/%s: %w", r.cfg.SourceBucket, key, err)
			}
			sources[i] = source{id: id, key: key, info: info}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		if r.cfg.MissingFiles != downloadv1alpha1.MissingFilesSkip || len(missing) == len(r.cfg.FileIDs) {
			return nil, nil, &sourceNotFoundError{bucket: r.cfg.SourceBucket, ids: missing}
		}
		// Those not found were left zero.
		sources = slices.DeleteFunc(sources, func(s source) bool { return s.key == "" })
		span.SetAttributes(AttrSkippedFileIDs.Int64Slice(missing))
		r.log.InfoContext(ctx, "skipping files without a source object", "ids", missing)
	}
	span.SetAttributes(AttrBytesTotal.Int64(sourceBytes(sources)))
	return sources, missing, nil
}

// upload streams the archive through a pipe into a multipart upload of unknown size, so memory
// holds uploadThreads parts, never the archive: minio-go allocates their buffers once and, while
// it uploads one, fills the next from the pipe. The object becomes visible only when the upload
// completes; on any failure the upload is aborted so no parts linger.
func (r *run) upload(ctx context.Context, sources []source, skipped []int64, partSize uint64) (_ archiveSummary, err error) {
	putCtx, span := r.tracer.Start(ctx, SpanUpload, trace.WithAttributes(AttrBucket.String(r.cfg.ArchiveBucket),
		AttrKey.String(r.cfg.ArchiveKey), AttrPartSize.Int64(int64(partSize))))
	// Counted where the upload reads the pipe into its parts, so that a failed upload still says
	// how far it got.
	var uploaded byteCounter
	defer func() {
		span.SetAttributes(AttrBytesUploaded.Int64(uploaded.Load()))
		if err == nil {
			span.SetAttributes(AttrParts.Int64(uploadParts(uploaded.Load(), partSize)))
		}
		_ = tracing.RecordError(span, err)
		span.End()
	}()
	pr, pw := io.Pipe()
	writeCtx, cancelWrite := context.WithCancel(ctx)
	defer cancelWrite()
	type written struct {
		summary archiveSummary
		err     error
	}
	// Buffered and sent before the pipe is closed, so that when PutObject fails because the
	// writer did, the writer's error is already here and wins as the cause.
	writerDone := make(chan written, 1)
	go func() {
		summary, err := r.writeArchive(writeCtx, pw, sources, skipped)
		writerDone <- written{summary, err}
		_ = pw.CloseWithError(err)
	}()

	_, putErr := r.archive.PutObject(putCtx, r.cfg.ArchiveBucket, r.cfg.ArchiveKey, io.TeeReader(pr, &uploaded), -1, minio.PutObjectOptions{
		PartSize:              partSize,
		ContentType:           "application/zip",
		ConcurrentStreamParts: true,
		NumThreads:            uploadThreads,
	})
	if putErr == nil {
		// PutObject succeeds after reading EOF, which the writer sends only on success; or after
		// maxParts parts, had the archive outgrown maxArchiveSize. Closing the pipe frees a
		// writer stuck in that case, and the sizes tell the two apart.
		_ = pr.CloseWithError(errUploadEnded)
		w := <-writerDone
		if w.err == nil && w.summary.size != uploaded.Load() {
			w.err = fmt.Errorf("uploaded %d bytes of an archive of %d", uploaded.Load(), w.summary.size)
		}
		return w.summary, w.err
	}

	cause := putErr
	select {
	case w := <-writerDone:
		if w.err != nil {
			cause = w.err
		}
	default:
		// The upload failed on its own: stop the writer, whose error is only a consequence.
		cancelWrite()
		_ = pr.CloseWithError(putErr)
		<-writerDone
	}
	r.removeIncompleteUpload(ctx)
	return archiveSummary{}, fmt.Errorf("uploading archive %s/%s: %w", r.cfg.ArchiveBucket, r.cfg.ArchiveKey, cause)
}

// errUploadEnded is what the archive writer meets if the upload stopped reading before the end.
var errUploadEnded = errors.New("the upload stopped reading the archive")

// partSizeFor is the part size for an archive of ids requested files holding total source bytes,
// given the configured one: configured, or, when the archive could need more than maxParts parts
// of it, the smallest whole number of MiB that fits it into maxParts. The archive's size is
// unknown until it is written, but bounded (maxArchiveSize), so memory grows only for archives
// that could not be stored otherwise: up to 525 MiB per part at MaxArchiveSize. An archive that
// could outgrow MaxArchiveSize is an *archiveTooLargeError.
func partSizeFor(total int64, ids int, configured uint64) (uint64, error) {
	bound := maxArchiveSize(total, ids)
	if bound > MaxArchiveSize {
		return 0, &archiveTooLargeError{files: ids, total: total, bound: bound}
	}
	const mib = 1 << 20
	fits := (uint64(bound) + maxParts*mib - 1) / (maxParts * mib) * mib
	return max(fits, configured), nil
}

// makeRoomForParts raises the soft memory limit (GOMEMLIMIT, which the controller sets for two
// parts of the configured size) by what the larger parts add, so that the garbage collector keeps
// the headroom it was given instead of running all the time once the parts alone pass the limit.
// The container's memory limit must allow for them (docs/architecture.md, "Archive format and
// limits").
func (r *run) makeRoomForParts(ctx context.Context, partSize uint64) {
	extra := int64(partSize-r.cfg.PartSize) * uploadThreads
	limit := debug.SetMemoryLimit(-1)
	if limit != math.MaxInt64 {
		debug.SetMemoryLimit(limit + extra)
	}
	r.log.InfoContext(ctx, "part size raised to fit the archive", "partSize", partSize, "configured", r.cfg.PartSize,
		"softMemoryLimit", debug.SetMemoryLimit(-1))
}

// removeIncompleteUpload removes the parts this failed attempt's upload left. minio-go aborts
// its own upload after a failure too, but a cancelled context or a dropped connection can defeat
// that, so this runs on a fresh context. It needs a credential that may list the bucket's
// uploads; a worker's own credential may not (the listing would show other Downloads' keys), and
// then the controller removes the parts when the Download finishes, as it does for attempts
// killed before they could clean up.
func (r *run) removeIncompleteUpload(ctx context.Context) {
	removeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := r.archive.RemoveIncompleteUpload(removeCtx, r.cfg.ArchiveBucket, r.cfg.ArchiveKey); err != nil {
		r.log.InfoContext(ctx, "left the failed attempt's upload to the controller",
			"bucket", r.cfg.ArchiveBucket, "key", r.cfg.ArchiveKey, "error", err)
	}
}

func (r *run) writeArchive(ctx context.Context, w io.Writer, sources []source, skipped []int64) (archiveSummary, error) {
	aw, err := newArchiveWriter(w)
	if err != nil {
		return archiveSummary{}, err
	}
	for _, s := range sources {
		if err := r.addSource(ctx, aw, s); err != nil {
			return archiveSummary{}, err
		}
	}
	records := make([]manifest.SkippedRecord, len(skipped))
	for i, id := range skipped {
		records[i] = manifest.SkippedRecord{ID: id, Reason: manifest.SkipNotFound}
	}
	return aw.close(records)
}

func (r *run) addSource(ctx context.Context, aw *archiveWriter, s source) (err error) {
	ctx, span := r.tracer.Start(ctx, SpanSourceRead, trace.WithAttributes(AttrFileID.Int64(s.id),
		AttrBucket.String(r.cfg.SourceBucket), AttrKey.String(s.key)))
	var read byteCounter
	defer func() {
		span.SetAttributes(AttrBytesRead.Int64(read.Load()))
		_ = tracing.RecordError(span, err)
		span.End()
	}()
	opts := minio.GetObjectOptions{}
	// Read exactly the version that was stat'ed: bytesTotal and the entry's timestamp came from it.
	if err := opts.SetMatchETag(s.info.ETag); err != nil {
		return fmt.Errorf("source %s/%s: %w", r.cfg.SourceBucket, s.key, err)
	}
	obj, err := r.source.GetObject(ctx, r.cfg.SourceBucket, s.key, opts)
	if err != nil {
		return fmt.Errorf("opening source %s/%s: %w", r.cfg.SourceBucket, s.key, err)
	}
	defer func() { _ = obj.Close() }()

	var in io.Reader = obj
	if r.limiter != nil {
		in = &rateLimitedReader{ctx: ctx, r: in, limiter: r.limiter}
	}
	in = io.TeeReader(in, io.MultiWriter(&r.done, &read))
	entry, err := aw.add(s.id, s.info.LastModified, in)
	if isNoSuchKey(err) {
		if r.cfg.MissingFiles == downloadv1alpha1.MissingFilesSkip {
			// Retryable: the next attempt's stat skips the file, and the totals it reports
			// then match the archive.
			return fmt.Errorf("source of file id %d vanished after it was stat'ed; the next attempt skips it: %w", s.id, err)
		}
		return &sourceNotFoundError{bucket: r.cfg.SourceBucket, ids: []int64{s.id}}
	}
	if err != nil {
		return fmt.Errorf("archiving source %s/%s: %w", r.cfg.SourceBucket, s.key, err)
	}
	if entry.size != s.info.Size {
		return fmt.Errorf("source %s/%s: read %d bytes, stat said %d", r.cfg.SourceBucket, s.key, entry.size, s.info.Size)
	}
	span.SetAttributes(AttrDeflated.Bool(entry.deflated))
	r.log.DebugContext(ctx, "file archived", "id", s.id, "bytes", entry.size, "deflated", entry.deflated)
	return nil
}

func (r *run) reportFailure(ctx context.Context, failure jobreport.Failure) {
	if failure.Reason == "" {
		return
	}
	reportCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := r.reporter.Failure(reportCtx, failure); err != nil {
		// The exit code still tells the Job controller whether to retry.
		r.log.ErrorContext(ctx, "could not report failure", "reason", failure.Reason, "error", err)
	}
}

// sourceNotFoundError names requested files without a source object. Retrying cannot help.
type sourceNotFoundError struct {
	bucket string
	ids    []int64
}

func (e *sourceNotFoundError) Error() string {
	named := e.ids[:min(len(e.ids), maxNamedIDs)]
	ids := make([]string, len(named))
	for i, id := range named {
		ids[i] = strconv.FormatInt(id, 10)
	}
	msg := fmt.Sprintf("no source object in bucket %q for file ids %s", e.bucket, strings.Join(ids, ", "))
	if more := len(e.ids) - len(named); more > 0 {
		msg += fmt.Sprintf(" and %d more", more)
	}
	return msg
}

// archiveTooLargeError is a request whose archive could outgrow MaxArchiveSize. Retrying cannot
// help.
type archiveTooLargeError struct {
	files        int
	total, bound int64
}

func (e *archiveTooLargeError) Error() string {
	return fmt.Sprintf("%d files of %d bytes could make an archive of up to %d bytes, more than the %d bytes one object may hold",
		e.files, e.total, e.bound, MaxArchiveSize)
}

// classify decides what the controller is told and whether the Job retries.
func classify(ctx context.Context, err error) *Error {
	if notFound, ok := errors.AsType[*sourceNotFoundError](err); ok {
		return &Error{Exit: jobreport.ExitPermanent, Err: err, Failure: jobreport.Failure{
			Reason:         downloadv1alpha1.ReasonSourceNotFound,
			Message:        notFound.Error(),
			MissingFileIDs: notFound.ids,
		}}
	}
	if tooLarge, ok := errors.AsType[*archiveTooLargeError](err); ok {
		return &Error{Exit: jobreport.ExitPermanent, Err: err, Failure: jobreport.Failure{
			Reason:  downloadv1alpha1.ReasonArchiveTooLarge,
			Message: tooLarge.Error(),
		}}
	}
	msg := err.Error()
	if ctx.Err() != nil {
		// Pod termination (node drain, eviction): another Pod can finish the job.
		msg = "interrupted: " + msg
	}
	return &Error{Exit: jobreport.ExitRetryable, Err: err, Failure: jobreport.Failure{
		Reason:  downloadv1alpha1.ReasonStorageError,
		Message: msg,
	}}
}

func isNoSuchKey(err error) bool {
	resp, ok := errors.AsType[minio.ErrorResponse](err)
	return ok && resp.Code == minio.NoSuchKey
}
