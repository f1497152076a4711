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

package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	batchv1 "k8s.io/api/batch/v1"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/manifest"
	"github.com/download-operator/download-operator/internal/worker"
	"github.com/download-operator/download-operator/pkg/client"
	"github.com/download-operator/download-operator/test/logbuffer"
	"github.com/download-operator/download-operator/test/poll"
	"github.com/download-operator/download-operator/test/stack"
)

// These tests run `get` against the whole real stack: envtest's kube-apiserver, the controller,
// MinIO, the facade and the worker, with the harness playing the kubelet and the Job controller.
// One stack serves the package; each test uses its own job.

var stk *stack.Stack

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runWithStack(m))
}

func runWithStack(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log io.Writer = io.Discard
	if testing.Verbose() {
		log = os.Stderr
	}
	var err error
	if stk, err = stack.Start(ctx, stack.Options{Log: log}); err != nil {
		fmt.Fprintf(os.Stderr, "starting the stack: %v\n", err)
		return 1
	}
	defer func() {
		if err := stk.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the stack: %v\n", err)
		}
	}()
	return m.Run()
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// session is one run of `get` whose terminal the test plays: what it prints, what the user
// types and when Ctrl-C comes.
type session struct {
	cmd       *getCmd
	stdout    *logbuffer.Buffer
	stderr    *logbuffer.Buffer
	interrupt chan os.Signal
}

func newSession(t *testing.T, tty bool, typed string) *session {
	s := &session{stdout: &logbuffer.Buffer{}, stderr: &logbuffer.Buffer{}, interrupt: make(chan os.Signal, 1)}
	s.cmd = &getCmd{stdin: strings.NewReader(typed), stdout: s.stdout, stderr: s.stderr, interrupts: s.interrupt,
		tty: tty, canPrompt: tty}
	// What the user saw, for `go test -v` readers judging the wording.
	t.Cleanup(func() { t.Logf("%s", s) })
	return s
}

func (s *session) start(ctx context.Context, args ...string) <-chan int {
	exit := make(chan int, 1)
	go func() { exit <- s.cmd.run(ctx, append([]string{"--server", stk.Facade.URL}, args...)) }()
	return exit
}

func (s *session) String() string {
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", s.stdout.String(), s.stderr.String())
}

// drive plays the cluster for one job in the background while `get` waits for it. The returned
// function waits for it to finish; getFailed stops it first, as nobody waits for the job then.
func drive(ctx context.Context, play func(context.Context) error) (finish func(getFailed bool) error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- play(ctx) }()
	return func(getFailed bool) error {
		if getFailed {
			cancel()
		}
		defer cancel()
		return <-done
	}
}

func putSources(t *testing.T, sources map[int64][]byte) {
	t.Helper()
	for id, content := range sources {
		if err := stk.PutSource(t.Context(), id, content); err != nil {
			t.Fatal(err)
		}
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// onlyFile fails unless dir holds exactly want: no temporary file may be left behind.
func onlyFile(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("%s holds %q, want %q", dir, names, want)
	}
}

// idempotentJobID is the jobId the facade gives the CLI's Idempotency-Key. Keys are scoped per
// client, and the CLI reaches the facade from loopback, so that address is the client.
func idempotentJobID(key string) string {
	return facade.IdempotentJobID(stack.Namespace, stk.Facade.ClientLabelValue("127.0.0.1"), key)
}

func TestGetDownloadsARealArchiveEndToEnd(t *testing.T) {
	// 2 MiB that deflate cannot shrink, so the archive takes many chunks to download.
	incompressible := make([]byte, 2<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(incompressible)
	sources := map[int64][]byte{70000: incompressible, 70007: []byte("a small file")}
	putSources(t, sources)
	for _, tc := range []struct {
		name      string
		tty       bool
		wantShown []string
	}{
		{"logging plain lines", false, []string{"accepted: 2 files", "completed", "downloading 2.0 MiB to ", "downloaded 50%", "saved "}},
		{"drawing progress bars on a terminal", true, []string{"accepted: 2 files", "completed", "100%", "\r", "MiB", "saved "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			key := uuid.NewString()
			jobID := idempotentJobID(key)
			dir := t.TempDir()
			out := filepath.Join(dir, "out.zip")

			s := newSession(t, tc.tty, "")
			completed := getCompleted(ctx, t, s, jobID, "70000", "70007", "-o", out, "--idempotency-key", key)

			body, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sha256Hex(body), completed.Status.Archive.SHA256; got != want {
				t.Errorf("saved file sha256 %s, the worker reported %s", got, want)
			}
			archive, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
			if err != nil {
				t.Fatalf("the saved file is no zip: %v", err)
			}
			if len(archive.File) != 3 || archive.File[2].Name != manifest.Name {
				t.Fatalf("%d entries, want the 2 files, then %s", len(archive.File), manifest.Name)
			}
			for i, id := range []int64{70000, 70007} {
				entry := archive.File[i]
				r, err := entry.Open()
				if err != nil {
					t.Fatal(err)
				}
				content, err := io.ReadAll(r)
				if err != nil {
					t.Fatalf("reading entry %s: %v", entry.Name, err)
				}
				if entry.Name != worker.EntryName(id) || !bytes.Equal(content, sources[id]) {
					t.Errorf("entry %d is %s with %d bytes, want %s with %d", i, entry.Name, len(content), worker.EntryName(id), len(sources[id]))
				}
			}
			onlyFile(t, dir, "out.zip")
			for _, want := range append(tc.wantShown, jobID, completed.Status.Archive.SHA256) {
				if !strings.Contains(s.stdout.String(), want) {
					t.Errorf("stdout lacks %q\n%s", want, s)
				}
			}
			if s.stderr.String() != "" {
				t.Errorf("stderr is not empty\n%s", s)
			}
		})
	}
}

func TestGetRejectsAnArchiveWhoseChecksumDoesNotMatch(t *testing.T) {
	ctx := testContext(t)
	putSources(t, map[int64][]byte{70100: []byte("the real content")})
	jobID, key := initiateWithKey(t, ctx, 70100)
	completed, err := stk.RunToCompletion(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}

	// Same length, one byte different: only the sha256 can tell.
	archive := completed.Status.Archive
	tampered := tamperArchive(t, ctx, archive.Bucket, archive.Key, func(archive []byte) error {
		archive[len(archive)/2] ^= 0xff
		return nil
	})
	expectGetRefuses(t, ctx, 70100, key, "checksum mismatch", archive.SHA256, sha256Hex(tampered))
}

// initiateWithKey initiates a job for id under a new Idempotency-Key, as an earlier run of get
// would have, and returns the job's id and the key.
func initiateWithKey(t *testing.T, ctx context.Context, id int64) (jobID, key string) {
	t.Helper()
	c, err := client.New(stk.Facade.URL)
	if err != nil {
		t.Fatal(err)
	}
	key = uuid.NewString()
	job, err := c.Initiate(ctx, []int64{id}, key)
	if err != nil {
		t.Fatal(err)
	}
	return job.JobID, key
}

// tamperArchive changes the stored archive in place, as a fault in storage would, and returns
// the changed bytes.
func tamperArchive(t *testing.T, ctx context.Context, bucket, key string, change func(archive []byte) error) []byte {
	t.Helper()
	object, err := stk.S3.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tampered, err := io.ReadAll(object)
	if err != nil {
		t.Fatal(err)
	}
	if err := change(tampered); err != nil {
		t.Fatal(err)
	}
	if _, err := stk.S3.PutObject(ctx, bucket, key, bytes.NewReader(tampered), int64(len(tampered)),
		minio.PutObjectOptions{ContentType: "application/zip"}); err != nil {
		t.Fatal(err)
	}
	return tampered
}

// expectGetRefuses runs get for the job of id and key, whose archive was tampered with, and
// expects it to fail saying why, without saving anything.
func expectGetRefuses(t *testing.T, ctx context.Context, id int64, key string, why ...string) {
	t.Helper()
	dir := t.TempDir()
	s := newSession(t, false, "")
	// The same key and files pick the completed job up again, as after an interrupted run.
	exit := <-s.start(ctx, strconv.FormatInt(id, 10), "-o", filepath.Join(dir, "out.zip"), "--idempotency-key", key)
	if exit != ExitFailed {
		t.Fatalf("exit %d, want %d\n%s", exit, ExitFailed, s)
	}
	for _, want := range append(why, "out.zip was not written") {
		if !strings.Contains(s.stderr.String(), want) {
			t.Errorf("stderr lacks %q\n%s", want, s)
		}
	}
	onlyFile(t, dir)
}

// An archive whose bytes are what the server reported, but whose entry is not what its manifest
// lists (a worker bug, or storage altered before the checksum was taken), is not saved.
func TestGetRejectsAnArchiveThatDoesNotMatchItsManifest(t *testing.T) {
	ctx := testContext(t)
	putSources(t, map[int64][]byte{70110: bytes.Repeat([]byte{0x9c, 0x41, 0x07, 0xe3}, 4096)})
	jobID, key := initiateWithKey(t, ctx, 70110)
	running, err := stk.WaitForStartedJob(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	if exit, log, err := stk.RunWorker(ctx, running); err != nil || exit != 0 {
		t.Fatalf("worker: exit %d, %v\n%s", exit, err, log)
	}

	// One byte of the entry's data changes in storage, and the result reports the changed archive's sha256.
	var result jobreport.Result
	if err := stk.Admin.Get(ctx, ctrlclient.ObjectKeyFromObject(running), running); err != nil {
		t.Fatal(err)
	}
	if found, err := jobreport.Decode(running.Annotations, jobreport.ResultAnnotation, &result); !found || err != nil {
		t.Fatalf("no result on the Job: %v", err)
	}
	tampered := tamperArchive(t, ctx, result.Bucket, result.Key, func(archive []byte) error {
		zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
		if err != nil {
			return err
		}
		offset, err := zr.File[0].DataOffset()
		if err != nil {
			return err
		}
		archive[offset+10] ^= 0xff
		return nil
	})
	result.SHA256 = sha256Hex(tampered)
	value, err := jobreport.Encode(result)
	if err != nil {
		t.Fatal(err)
	}
	patch := ctrlclient.MergeFrom(running.DeepCopy())
	running.Annotations[jobreport.ResultAnnotation] = value
	if err := stk.Admin.Patch(ctx, running, patch); err != nil {
		t.Fatal(err)
	}
	if err := stk.CompleteJob(ctx, running); err != nil {
		t.Fatal(err)
	}
	if _, err := stk.WaitForPhase(ctx, jobID, downloadv1alpha1.PhaseCompleted); err != nil {
		t.Fatal(err)
	}
	expectGetRefuses(t, ctx, 70110, key, "entry "+worker.EntryName(70110), "does not match its manifest")
}

func TestGetReportsWhyTheServerFailedTheDownload(t *testing.T) {
	ctx := testContext(t)
	putSources(t, map[int64][]byte{70200: []byte("present")})
	key := uuid.NewString()
	jobID := idempotentJobID(key)
	cluster := drive(ctx, func(ctx context.Context) error {
		job, err := stk.WaitForStartedJob(ctx, jobID)
		if err != nil {
			return err
		}
		exit, log, err := stk.RunWorker(ctx, job)
		if err != nil {
			return err
		}
		if exit != jobreport.ExitPermanent {
			return fmt.Errorf("worker exit %d, want %d: %s", exit, jobreport.ExitPermanent, log)
		}
		// The worker reported the failure on its Job; the Job controller applies podFailurePolicy.
		return stk.FailJob(ctx, job, nil, batchv1.JobReasonPodFailurePolicy, 1)
	})
	dir := t.TempDir()
	s := newSession(t, false, "")
	exit := <-s.start(ctx, "70200", "70404", "-o", filepath.Join(dir, "out.zip"), "--idempotency-key", key)
	if err := cluster(exit != ExitFailed); err != nil {
		t.Fatalf("driving job %s: %v\n%s", jobID, err, s)
	}
	if exit != ExitFailed {
		t.Fatalf("exit %d, want %d\n%s", exit, ExitFailed, s)
	}
	for _, want := range []string{jobID, downloadv1alpha1.ReasonSourceNotFound, "70404"} {
		if !strings.Contains(s.stderr.String(), want) {
			t.Errorf("stderr lacks %q\n%s", want, s)
		}
	}
	onlyFile(t, dir)
}

func TestGetInterruptedWhileWaiting(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tty        bool
		typed      string
		wantCancel bool
		wantOut    []string
		wantErr    []string
	}{
		{name: "without a terminal, cancels the job", wantCancel: true,
			wantErr: []string{"interrupted: cancelling job"}, wantOut: []string{"cancelled job"}},
		{name: "on a terminal, cancels the job when told yes", tty: true, typed: "y\n", wantCancel: true,
			wantOut: []string{"cancel the download on the server? [y/N]", "cancelled job"}},
		{name: "on a terminal, keeps the job by default", tty: true, typed: "\n",
			wantOut: []string{"cancel the download on the server? [y/N]", "goes on on the server", "--idempotency-key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			key := uuid.NewString()
			jobID := idempotentJobID(key)
			dir := t.TempDir()
			s := newSession(t, tc.tty, tc.typed)
			// Nobody starts the Job, so the job stays pending until the user gives up.
			exit := s.start(ctx, "70300", "-o", filepath.Join(dir, "out.zip"), "--idempotency-key", key)
			poll.Until(t, 20*time.Second, s, func() bool { return strings.Contains(s.stdout.String(), "accepted") })
			s.interrupt <- os.Interrupt
			select {
			case code := <-exit:
				if code != ExitInterrupted {
					t.Fatalf("exit %d, want %d\n%s", code, ExitInterrupted, s)
				}
			case <-ctx.Done():
				t.Fatalf("get did not stop after Ctrl-C\n%s", s)
			}
			for _, want := range append(tc.wantOut, jobID) {
				if !strings.Contains(s.stdout.String(), want) {
					t.Errorf("stdout lacks %q\n%s", want, s)
				}
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(s.stderr.String(), want) {
					t.Errorf("stderr lacks %q\n%s", want, s)
				}
			}
			if tc.wantCancel {
				if err := stk.WaitGone(ctx, jobID); err != nil {
					t.Errorf("the job was not cancelled on the server: %v", err)
				}
			} else {
				d, err := stk.Download(ctx, jobID)
				if err != nil || !d.DeletionTimestamp.IsZero() {
					t.Errorf("the job must go on: %v", err)
				}
				c, err := client.New(stk.Facade.URL)
				if err == nil {
					err = c.Cancel(ctx, jobID) // keep the client's count of active jobs low
				}
				if err != nil {
					t.Error(err)
				}
			}
			onlyFile(t, dir)
		})
	}
}

func TestGetExitsWithUsageWhenTheServerRejectsTheRequest(t *testing.T) {
	s := newSession(t, false, "")
	if exit := <-s.start(testContext(t), "70000", "5"); exit != ExitUsage {
		t.Fatalf("exit %d, want %d\n%s", exit, ExitUsage, s)
	}
	if !strings.Contains(s.stderr.String(), "400 BadRequest") || !strings.Contains(s.stderr.String(), "file id 5") {
		t.Errorf("stderr does not give the server's reason\n%s", s)
	}
}

func TestGetGivesUpAfterItsTimeout(t *testing.T) {
	ctx := testContext(t)
	key := uuid.NewString()
	s := newSession(t, false, "")
	start := time.Now()
	// Nobody starts the Job, so only --timeout can end the wait.
	exit := <-s.start(ctx, "70400", "--timeout", "1s", "--idempotency-key", key)
	if exit != ExitFailed {
		t.Fatalf("exit %d, want %d\n%s", exit, ExitFailed, s)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("took %s with --timeout 1s", elapsed)
	}
	jobID := idempotentJobID(key)
	for _, want := range []string{"--timeout of 1s ran out", jobID + " goes on on the server", "--idempotency-key " + key} {
		if !strings.Contains(s.stderr.String(), want) {
			t.Errorf("stderr lacks %q\n%s", want, s)
		}
	}
	c, err := client.New(stk.Facade.URL)
	if err == nil {
		err = c.Cancel(ctx, jobID)
	}
	if err != nil {
		t.Error(err)
	}
}

// The client's JSON types against the real facade's answers, for the calls `get` does not make.
func TestClientSpeaksTheRealFacade(t *testing.T) {
	ctx := testContext(t)
	putSources(t, map[int64][]byte{70500: []byte("12345")})
	c, err := client.New(stk.Facade.URL)
	if err != nil {
		t.Fatal(err)
	}

	health, err := c.Health(ctx)
	if err != nil || !health.Healthy() || health.Checks["storage"] != client.CheckOK || health.Checks["kubernetes"] != client.CheckOK {
		t.Errorf("Health = %+v, %v", health, err)
	}
	for id, want := range map[int64]client.FileCheck{
		70500: {FileID: 70500, Available: true, Size: 5},
		70501: {FileID: 70501, Available: false},
	} {
		if got, err := c.Check(ctx, id); err != nil || *got != want {
			t.Errorf("Check(%d) = %+v, %v; want %+v", id, got, err, want)
		}
	}

	unknown := uuid.NewString()
	_, err = c.Status(ctx, unknown)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != facade.CodeNotFound || apiErr.RequestID == "" {
		t.Errorf("Status of an unknown job = %v, want a 404 NotFound APIError with a request id", err)
	}
	_, err = c.Status(ctx, "not-a-uuid")
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != facade.CodeBadRequest {
		t.Errorf("Status of a malformed id = %v, want 400 BadRequest", err)
	}

	job, err := c.Initiate(ctx, []int64{70500}, "")
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != client.StatePending || job.TotalFileIDs != 1 || job.Location != "/v1/download/status/"+job.JobID || job.RetryAfter != 3*time.Second {
		t.Errorf("Initiate = %+v", job)
	}
	if err := c.Cancel(ctx, job.JobID); err != nil {
		t.Fatal(err)
	}
	// Following a cancelled job ends with the server's reason rather than hanging.
	final, err := c.Wait(ctx, job.JobID, nil)
	var failed *client.JobFailedError
	if err == nil {
		if !errors.As(final.Err(), &failed) || failed.Code != facade.CodeCancelled {
			t.Errorf("Wait after Cancel = %+v", final)
		}
	} else if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("Wait after Cancel: %v, want a Cancelled status or, once the Download is gone, 404", err)
	}
}
