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

package worker_test

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/manifest"
	"github.com/download-operator/download-operator/internal/worker"
	"github.com/download-operator/download-operator/test/miniotest"
	"github.com/download-operator/download-operator/test/poll"
)

type testFile struct {
	id   int64
	data []byte
	// deflated is the compression the worker must choose for it.
	deflated bool
}

func TestRunBundlesFilesIntoOneVerifiableArchive(t *testing.T) {
	thousand := make([]testFile, 1000)
	for i := range thousand {
		id := int64(20_000 + i)
		if i%2 == 0 {
			thousand[i] = testFile{id: id, data: csvBytes(uint64(i), 400+i%1600), deflated: true}
		} else {
			thousand[i] = testFile{id: id, data: randomBytes(uint64(i), i%2000)}
		}
	}
	cases := []struct {
		name  string
		files []testFile
	}{
		{"one file", []testFile{{id: 10_000, data: csvBytes(1, 300<<10), deflated: true}}},
		{"three files", []testFile{
			{id: 10_001, data: csvBytes(2, 200<<10), deflated: true},
			{id: 10_002, data: randomBytes(3, 300<<10)},
			{id: 10_003, data: []byte{}},
		}},
		{"a thousand files", thousand},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sources := make(map[int64][]byte, len(tc.files))
			ids := make([]int64, len(tc.files))
			var total int64
			for i, f := range tc.files {
				sources[f.id] = f.data
				ids[i] = f.id
				total += int64(len(f.data))
			}
			client, cfg := sharedRun(t, sources, ids...)
			dst := cfg.ArchiveBucket
			modified := lastModified(t, client, cfg.SourceBucket)

			rec := &recorder{}
			result, err := worker.Run(context.Background(), cfg, worker.Deps{Source: client, Reporter: rec})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}

			want := jobreport.Result{Bucket: dst, Key: archiveKey, Size: result.Size, SHA256: result.SHA256, BytesTotal: result.BytesTotal}
			if !reflect.DeepEqual(result, want) || result.Size == 0 || len(result.SHA256) != 64 {
				t.Errorf("result = %+v, want bucket %s, key %s, a size and a sha256, nothing skipped", result, dst, archiveKey)
			}
			zr := downloadArchive(t, client, result)
			checkManifest(t, zr, tc.files, nil)
			for i, f := range tc.files {
				checkEntry(t, zr.File[i], f, modified[sourceKey(f.id)])
			}
			if uploads := incompleteUploads(t, client, dst, archiveKey); len(uploads) != 0 {
				t.Errorf("incomplete uploads after success: %v", uploads)
			}
			checkReports(t, rec, result, total)
		})
	}
}

// lastModified lists the bucket's objects' modification times, which the entries must carry.
func lastModified(t *testing.T, client *minio.Client, bucket string) map[string]time.Time {
	t.Helper()
	times := make(map[string]time.Time)
	for obj := range client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("listing %s: %v", bucket, obj.Err)
		}
		times[obj.Key] = obj.LastModified
	}
	return times
}

func checkEntry(t *testing.T, entry *zip.File, want testFile, modified time.Time) {
	t.Helper()
	if entry.Name != worker.EntryName(want.id) {
		t.Errorf("entry name = %q, want %q", entry.Name, worker.EntryName(want.id))
		return
	}
	if entry.UncompressedSize64 != uint64(len(want.data)) {
		t.Errorf("%s: uncompressed size = %d, want %d", entry.Name, entry.UncompressedSize64, len(want.data))
	}
	if sum := crc32.ChecksumIEEE(want.data); entry.CRC32 != sum {
		t.Errorf("%s: CRC32 = %08x, want %08x", entry.Name, entry.CRC32, sum)
	}
	wantMethod := zip.Store
	if want.deflated {
		wantMethod = zip.Deflate
	}
	if entry.Method != wantMethod {
		t.Errorf("%s: method = %d, want %d", entry.Name, entry.Method, wantMethod)
	}
	// Zip keeps whole seconds.
	if !entry.Modified.Equal(modified.Truncate(time.Second)) {
		t.Errorf("%s: modified = %s, want the source's %s", entry.Name, entry.Modified, modified)
	}
	if got := worker.ReadEntry(t, entry, nil); string(got) != string(want.data) {
		t.Errorf("%s: content differs from the source", entry.Name)
	}
}

// checkManifest proves that the archive holds files, in this order, then the manifest, which
// describes them with digests computed here and lists the skipped ids.
func checkManifest(t *testing.T, zr *zip.Reader, files []testFile, skipped []int64) {
	t.Helper()
	if len(zr.File) != len(files)+1 || zr.File[len(files)].Name != manifest.Name {
		t.Fatalf("archive has %d entries, want %d files, then %s", len(zr.File), len(files), manifest.Name)
	}
	m := worker.ReadManifest(t, zr.File[len(files)])
	want := manifest.Manifest{Version: manifest.Version, Files: []manifest.FileRecord{}, Skipped: []manifest.SkippedRecord{}}
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		want.Files = append(want.Files, manifest.FileRecord{ID: f.id, Name: worker.EntryName(f.id), Size: int64(len(f.data)),
			SHA256: hex.EncodeToString(sum[:]), CRC32: fmt.Sprintf("%08x", crc32.ChecksumIEEE(f.data))})
	}
	for _, id := range skipped {
		want.Skipped = append(want.Skipped, manifest.SkippedRecord{ID: id, Reason: manifest.SkipNotFound})
	}
	if !reflect.DeepEqual(*m, want) {
		t.Errorf("manifest = %+v\nwant       %+v", *m, want)
	}
}

// checkReports proves progress rose towards the total, and the Result came last, carrying the
// total in place of a final progress write.
func checkReports(t *testing.T, rec *recorder, result jobreport.Result, total int64) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.failures) != 0 {
		t.Errorf("failures reported on success: %+v", rec.failures)
	}
	if len(rec.results) != 1 || !reflect.DeepEqual(rec.results[0], result) {
		t.Errorf("results reported = %+v, want exactly %+v", rec.results, result)
	}
	if result.BytesTotal != total {
		t.Errorf("result carries %d source bytes, want %d", result.BytesTotal, total)
	}
	if n := len(rec.events); n < 1 || rec.events[n-1] != "result" {
		t.Fatalf("report order = %v, want progress ..., result", rec.events)
	}
	for i, p := range rec.progress {
		if p.BytesTotal != total || (i > 0 && p.BytesDone < rec.progress[i-1].BytesDone) {
			t.Errorf("progress %d = %+v does not rise towards %d", i, p, total)
		}
	}
}

// sharedRun uploads files to a fresh bucket of the shared MinIO and configures a run bundling ids
// from there into another fresh bucket.
func sharedRun(t *testing.T, files map[int64][]byte, ids ...int64) (*minio.Client, worker.Config) {
	t.Helper()
	client := storageClient(t, minioServer(t))
	src, dst := newBucket(t, client), newBucket(t, client)
	putSources(t, client, src, files)
	return client, testConfig(src, dst, ids...)
}

// workerError unwraps the classified error Run returns.
func workerError(t *testing.T, err error) *worker.Error {
	t.Helper()
	werr, ok := errors.AsType[*worker.Error](err)
	if !ok {
		t.Fatalf("Run error = %v (%T), want a *worker.Error", err, err)
	}
	return werr
}

func TestRunReportsEveryMissingSourceBeforeUploading(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failureErr error
		policy     downloadv1alpha1.MissingFilesPolicy
	}{
		{"reported, by default", nil, ""},
		{"reported, under policy Fail", nil, downloadv1alpha1.MissingFilesFail},
		{"even when the failure cannot be reported", errors.New("apiserver unreachable"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, cfg := sharedRun(t, map[int64][]byte{30_001: csvBytes(1, 100), 30_003: csvBytes(3, 100), 30_005: nil},
				30_001, 30_004, 30_003, 30_002, 30_005)
			cfg.MissingFiles = tc.policy
			rec := &recorder{failureErr: tc.failureErr}

			_, err := worker.Run(context.Background(), cfg, worker.Deps{Source: client, Reporter: rec})

			werr := workerError(t, err)
			if werr.Exit != jobreport.ExitPermanent || worker.ExitCode(err) != jobreport.ExitPermanent {
				t.Errorf("exit = %d (ExitCode %d), want %d", werr.Exit, worker.ExitCode(err), jobreport.ExitPermanent)
			}
			f := werr.Failure
			if f.Reason != downloadv1alpha1.ReasonSourceNotFound || !slices.Equal(f.MissingFileIDs, []int64{30_002, 30_004}) {
				t.Errorf("failure = %+v, want %s for 30002 and 30004", f, downloadv1alpha1.ReasonSourceNotFound)
			}
			if !strings.Contains(f.Message, "30002, 30004") || strings.Contains(f.Message, "30001") {
				t.Errorf("failure message %q must name exactly the missing ids", f.Message)
			}
			if len(rec.failures) != 1 || rec.failures[0].Reason != f.Reason || !slices.Equal(rec.failures[0].MissingFileIDs, f.MissingFileIDs) {
				t.Errorf("failures reported = %+v, want once %+v", rec.failures, f)
			}
			if len(rec.progress) != 0 || len(rec.results) != 0 {
				t.Errorf("progress %+v or result %+v reported although nothing was uploaded", rec.progress, rec.results)
			}
			assertNothingStored(t, client, cfg.ArchiveBucket, archiveKey)
		})
	}
}

// runAsync starts Run and returns a channel delivering its error.
func runAsync(ctx context.Context, cfg worker.Config, deps worker.Deps) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := worker.Run(ctx, cfg, deps)
		done <- err
	}()
	return done
}

// waitRun waits for a run started by runAsync and returns its error and how long that took.
func waitRun(t *testing.T, done <-chan error, timeout time.Duration) (error, time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case err := <-done:
		return err, time.Since(start)
	case <-time.After(timeout):
		t.Fatalf("Run still running after %s", timeout)
		return nil, 0
	}
}

// waitUploading waits until the archive's multipart upload exists and source bytes flow, so the
// failure that follows strikes mid-upload.
func waitUploading(t *testing.T, rec *recorder, archive *minio.Client, bucket string) {
	t.Helper()
	poll.Until(t, 10*time.Second, "the upload to start", func() bool {
		return rec.bytesDone() > 0 && len(incompleteUploads(t, archive, bucket, archiveKey)) == 1
	})
}

func TestRunSkipsMissingFilesUnderPolicySkip(t *testing.T) {
	present := []testFile{
		{id: 31_005, data: csvBytes(5, 20<<10), deflated: true},
		{id: 31_001, data: randomBytes(1, 30<<10)},
		{id: 31_003, data: []byte{}},
	}
	client, cfg := sharedRun(t, map[int64][]byte{31_001: present[1].data, 31_003: present[2].data, 31_005: present[0].data},
		31_005, 31_004, 31_001, 31_003, 31_002)
	cfg.MissingFiles = downloadv1alpha1.MissingFilesSkip
	rec := &recorder{}

	result, err := worker.Run(context.Background(), cfg, worker.Deps{Source: client, Reporter: rec})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	wantSkipped := []int64{31_002, 31_004}
	if !slices.Equal(result.SkippedFileIDs, wantSkipped) {
		t.Errorf("result skips %v, want %v, ascending", result.SkippedFileIDs, wantSkipped)
	}
	zr := downloadArchive(t, client, result)
	checkManifest(t, zr, present, wantSkipped)
	modified := lastModified(t, client, cfg.SourceBucket)
	for i, f := range present {
		checkEntry(t, zr.File[i], f, modified[sourceKey(f.id)])
	}
	checkReports(t, rec, result, int64(len(present[0].data)+len(present[1].data)))
}

func TestRunFailsUnderPolicySkipWhenEveryFileIsMissing(t *testing.T) {
	client, cfg := sharedRun(t, map[int64][]byte{}, 32_003, 32_001, 32_002)
	cfg.MissingFiles = downloadv1alpha1.MissingFilesSkip
	rec := &recorder{}

	_, err := worker.Run(context.Background(), cfg, worker.Deps{Source: client, Reporter: rec})

	werr := workerError(t, err)
	if werr.Exit != jobreport.ExitPermanent || werr.Failure.Reason != downloadv1alpha1.ReasonSourceNotFound ||
		!slices.Equal(werr.Failure.MissingFileIDs, []int64{32_001, 32_002, 32_003}) {
		t.Errorf("exit %d, failure %+v; want permanent %s for 32001-32003", werr.Exit, werr.Failure,
			downloadv1alpha1.ReasonSourceNotFound)
	}
	if len(rec.failures) != 1 || len(rec.results) != 0 || len(rec.progress) != 0 {
		t.Errorf("reported failures %+v, results %+v, progress %+v; want one failure", rec.failures, rec.results, rec.progress)
	}
	assertNothingStored(t, client, cfg.ArchiveBucket, archiveKey)
}

// A source deleted after the stat fails the run permanently under policy Fail; under Skip, the
// attempt fails for a retry, whose stat then skips the file.
func TestRunFailsWhenASourceVanishesMidStream(t *testing.T) {
	for _, tc := range []struct {
		policy     downloadv1alpha1.MissingFilesPolicy
		wantExit   int
		wantReason string
		wantIDs    []int64
	}{
		{downloadv1alpha1.MissingFilesFail, jobreport.ExitPermanent, downloadv1alpha1.ReasonSourceNotFound, []int64{40_002}},
		{downloadv1alpha1.MissingFilesSkip, jobreport.ExitRetryable, downloadv1alpha1.ReasonStorageError, nil},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			runWhileASourceVanishes(t, tc.policy, tc.wantExit, tc.wantReason, tc.wantIDs)
		})
	}
}

func runWhileASourceVanishes(t *testing.T, policy downloadv1alpha1.MissingFilesPolicy, wantExit int, wantReason string, wantIDs []int64) {
	client, cfg := sharedRun(t, map[int64][]byte{40_001: randomBytes(1, 2<<20), 40_002: csvBytes(2, 10<<10)}, 40_001, 40_002)
	cfg.MissingFiles = policy
	// The first file streams for about two seconds, long enough to delete the second one.
	cfg.MaxBytesPerSecond = 1 << 20
	rec := &recorder{}

	done := runAsync(context.Background(), cfg, worker.Deps{Source: client, Reporter: rec})
	waitUploading(t, rec, client, cfg.ArchiveBucket)
	if err := client.RemoveObject(context.Background(), cfg.SourceBucket, sourceKey(40_002), minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("removing source: %v", err)
	}
	err, _ := waitRun(t, done, 20*time.Second)

	werr := workerError(t, err)
	if werr.Exit != wantExit || werr.Failure.Reason != wantReason || !slices.Equal(werr.Failure.MissingFileIDs, wantIDs) {
		t.Errorf("error = %v, exit %d, failure %+v; want exit %d, %s, missing %v", err, werr.Exit, werr.Failure,
			wantExit, wantReason, wantIDs)
	}
	if !strings.Contains(werr.Failure.Message, "40002") {
		t.Errorf("failure message %q does not name file 40002", werr.Failure.Message)
	}
	if len(rec.failures) != 1 || len(rec.results) != 0 {
		t.Errorf("reported failures %+v and results %+v, want one failure", rec.failures, rec.results)
	}
	assertNothingStored(t, client, cfg.ArchiveBucket, archiveKey)
}

func TestRunAbortsUploadWhenSourceStorageFails(t *testing.T) {
	// The source server is stopped mid-stream while the archive server stays up, so that the
	// test can prove the abort left nothing behind where the archive was going.
	sourceServer := miniotest.StartForTest(t)
	source := storageClient(t, sourceServer)
	archive := storageClient(t, minioServer(t))
	src, dst := newBucket(t, source), newBucket(t, archive)
	files := make(map[int64][]byte)
	ids := make([]int64, 8)
	for i := range ids {
		ids[i] = int64(50_000 + i)
		files[ids[i]] = randomBytes(uint64(i), 1<<20)
	}
	putSources(t, source, src, files)
	cfg := testConfig(src, dst, ids...)
	cfg.MaxBytesPerSecond = 2 << 20
	rec := &recorder{}

	done := runAsync(context.Background(), cfg, worker.Deps{Source: source, Archive: archive, Reporter: rec})
	waitUploading(t, rec, archive, dst)
	if err := sourceServer.Stop(); err != nil {
		t.Fatalf("stopping source server: %v", err)
	}
	err, took := waitRun(t, done, 30*time.Second)
	t.Logf("Run returned %s after the source server stopped: %v", took, err)

	werr := workerError(t, err)
	if werr.Exit != jobreport.ExitRetryable || werr.Failure.Reason != downloadv1alpha1.ReasonStorageError {
		t.Errorf("exit %d, failure %+v; want retryable %s", werr.Exit, werr.Failure, downloadv1alpha1.ReasonStorageError)
	}
	if len(rec.failures) != 1 || len(rec.results) != 0 {
		t.Errorf("reported failures %+v and results %+v, want one failure", rec.failures, rec.results)
	}
	assertNothingStored(t, archive, dst, archiveKey)
}

func TestRunAbortsUploadPromptlyWhenCancelled(t *testing.T) {
	client, cfg := sharedRun(t, map[int64][]byte{60_001: randomBytes(1, 8<<20)}, 60_001)
	cfg.MaxBytesPerSecond = 2 << 20
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	done := runAsync(ctx, cfg, worker.Deps{Source: client, Reporter: rec})
	waitUploading(t, rec, client, cfg.ArchiveBucket)
	cancel()
	err, took := waitRun(t, done, 10*time.Second)

	if took > 5*time.Second {
		t.Errorf("Run took %s to return after cancellation, want at most 5s", took)
	}
	werr := workerError(t, err)
	if werr.Exit != jobreport.ExitRetryable || werr.Failure.Reason != downloadv1alpha1.ReasonStorageError ||
		!strings.HasPrefix(werr.Failure.Message, "interrupted") {
		t.Errorf("exit %d, failure %+v; want retryable %s saying interrupted", werr.Exit, werr.Failure,
			downloadv1alpha1.ReasonStorageError)
	}
	if len(rec.failures) != 1 {
		t.Errorf("reported failures %+v, want one despite the cancelled context", rec.failures)
	}
	assertNothingStored(t, client, cfg.ArchiveBucket, archiveKey)
}

func TestRunCapsSourceBandwidth(t *testing.T) {
	client, cfg := sharedRun(t, map[int64][]byte{70_001: randomBytes(1, 1<<20), 70_002: randomBytes(2, 1<<20)}, 70_001, 70_002)
	cfg.MaxBytesPerSecond = 1 << 20

	start := time.Now()
	if _, err := worker.Run(context.Background(), cfg, worker.Deps{Source: client, Reporter: &recorder{}}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// 2 MiB at 1 MiB/s, less the initial burst.
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("2 MiB at 1 MiB/s took %s, want at least 1.5s", took)
	}
}

func TestRunRejectsInvalidConfigWithoutReporting(t *testing.T) {
	cfg := testConfig("files", "downloads", 1, 1)
	cfg.SourceKeyTemplate = "static"
	rec := &recorder{}
	_, err := worker.Run(context.Background(), cfg, worker.Deps{Source: &minio.Client{}, Reporter: rec})
	werr := workerError(t, err)
	if werr.Exit != jobreport.ExitUsage || !strings.Contains(err.Error(), "twice") || !strings.Contains(err.Error(), "{id}") {
		t.Errorf("error = %v (exit %d), want a usage error naming the duplicate id and the template", err, werr.Exit)
	}
	if len(rec.events) != 0 {
		t.Errorf("reports %v for a usage error, which has no Reason", rec.events)
	}
}
