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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/manifest"
	"github.com/download-operator/download-operator/internal/worker"
	"github.com/download-operator/download-operator/test/miniotest"
	"github.com/download-operator/download-operator/test/poll"
)

func TestCommandRejectsInvalidArguments(t *testing.T) {
	const secret = "do-not-print-this-secret"
	valid := map[string]string{
		"namespace": "ns", "job-name": "job", "file-ids": "10001,10002", "archive-key": "a.zip",
		"storage-endpoint": "127.0.0.1:1", "kubeconfig": filepath.Join(t.TempDir(), "missing"),
	}
	cases := []struct {
		name     string
		override map[string]string
		extra    []string
		noCreds  bool
		// wantErr is what stderr must say, so each case fails for its own reason.
		wantErr string
	}{
		{name: "no job name", override: map[string]string{"job-name": ""}, wantErr: "--job-name is required"},
		{name: "no namespace", override: map[string]string{"namespace": ""}, wantErr: "--namespace is required"},
		{name: "no file ids", override: map[string]string{"file-ids": ""}, wantErr: "--file-ids is required"},
		{name: "a file id that is no number", override: map[string]string{"file-ids": "10001,x"}, wantErr: "invalid syntax"},
		{name: "a file id twice", override: map[string]string{"file-ids": "10001,10001"}, wantErr: "requested twice"},
		{name: "no archive key", override: map[string]string{"archive-key": ""}, wantErr: "no archive key"},
		{name: "parts below the S3 minimum", override: map[string]string{"part-size": "1024"}, wantErr: "part size 1024"},
		{name: "an unknown missing-file policy", override: map[string]string{"missing-files": "skip"},
			wantErr: "is neither Fail nor Skip"},
		{name: "an unknown flag", extra: []string{"--access-key=x"}, wantErr: "flag provided but not defined"},
		{name: "a positional argument", extra: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "no credentials", noCreds: true, wantErr: worker.EnvAccessKey + " and " + worker.EnvSecretKey + " must be set"},
		{name: "an unreadable kubeconfig", wantErr: "loading kubeconfig"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(worker.EnvNamespace, "")
			t.Setenv(worker.EnvAccessKey, "access")
			t.Setenv(worker.EnvSecretKey, secret)
			if tc.noCreds {
				t.Setenv(worker.EnvSecretKey, "")
			}
			var args []string
			for name, value := range valid {
				if override, ok := tc.override[name]; ok {
					value = override
				}
				args = append(args, "--"+name+"="+value)
			}
			for name, value := range tc.override {
				if _, ok := valid[name]; !ok {
					args = append(args, "--"+name+"="+value)
				}
			}
			args = append(args, tc.extra...)
			var stderr bytes.Buffer

			code := worker.Command(context.Background(), args, &stderr)

			if code != jobreport.ExitUsage {
				t.Errorf("exit = %d, want %d; stderr:\n%s", code, jobreport.ExitUsage, &stderr)
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr does not say %q:\n%s", tc.wantErr, &stderr)
			}
			if strings.Contains(stderr.String(), secret) {
				t.Errorf("stderr leaks the secret key:\n%s", &stderr)
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		var stderr bytes.Buffer
		if code := worker.Command(context.Background(), []string{"-h"}, &stderr); code != 0 {
			t.Errorf("exit = %d, want 0", code)
		}
		if !strings.Contains(stderr.String(), "-max-bytes-per-second") || !strings.Contains(stderr.String(), "-missing-files") {
			t.Errorf("help does not list the flags:\n%s", &stderr)
		}
	})
}

// commandFixture is a Job, sources and a kubeconfig of a user with the worker's RBAC.
type commandFixture struct {
	server        *miniotest.Server
	namespace     string
	job           string
	src, dst      string
	kubeconfig    string
	sourcesTotal  int64
	fileIDsString string
}

func newCommandFixture(t *testing.T, files map[int64][]byte) commandFixture {
	t.Helper()
	env := kube(t)
	server := minioServer(t)
	client := storageClient(t, server)
	ns, user := workerNamespace(t, env)
	createJob(t, env, ns, "download-worker", nil)
	kubeconfig := writeKubeconfig(t, user)
	src, dst := newBucket(t, client), newBucket(t, client)
	putSources(t, client, src, files)
	f := commandFixture{server: server, namespace: ns, job: "download-worker", src: src, dst: dst, kubeconfig: kubeconfig}
	var ids []string
	for id, data := range files {
		ids = append(ids, fmt.Sprint(id))
		f.sourcesTotal += int64(len(data))
	}
	f.fileIDsString = strings.Join(ids, ",")
	return f
}

func writeKubeconfig(tb testing.TB, user *envtest.AuthenticatedUser) string {
	tb.Helper()
	raw, err := user.KubeConfig()
	if err != nil {
		tb.Fatalf("rendering kubeconfig: %v", err)
	}
	path := filepath.Join(tb.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// workerArgs are the flags the controller passes (desiredJob in internal/controller), with a
// kubeconfig in place of the in-cluster config; the namespace comes from POD_NAMESPACE.
func (f commandFixture) workerArgs() []string {
	return []string{
		"--job-name=" + f.job,
		"--file-ids=" + f.fileIDsString,
		"--source-bucket=" + f.src,
		"--source-key-template=" + sourceKeyTemplate,
		"--archive-bucket=" + f.dst,
		"--archive-key=" + archiveKey,
		"--max-bytes-per-second=0",
		"--storage-endpoint=" + f.server.Endpoint,
		"--storage-secure=false",
		"--kubeconfig=" + f.kubeconfig,
	}
}

// args are workerArgs with progress reported often enough for a test to watch it, then extra,
// which overrides them: the last of a repeated flag wins.
func (f commandFixture) args(extra ...string) []string {
	return append(append(f.workerArgs(), "--progress-interval=100ms"), extra...)
}

// env is the environment the Pod spec provides.
func (f commandFixture) env() map[string]string {
	return map[string]string{
		worker.EnvNamespace: f.namespace,
		worker.EnvAccessKey: f.server.AccessKey,
		worker.EnvSecretKey: f.server.SecretKey,
	}
}

func TestCommandStoresArchiveAndReportsOnItsJob(t *testing.T) {
	f := newCommandFixture(t, map[int64][]byte{80_001: csvBytes(1, 50<<10), 80_002: randomBytes(2, 70<<10), 80_003: nil})
	for name, value := range f.env() {
		t.Setenv(name, value)
	}
	var stderr bytes.Buffer

	// 80004 has no source, which the policy Skip leaves out.
	code := worker.Command(context.Background(), f.args("--file-ids="+f.fileIDsString+",80004", "--missing-files=Skip"), &stderr)

	if code != 0 {
		t.Fatalf("exit = %d, want 0; stderr:\n%s", code, &stderr)
	}
	annotations := jobAnnotations(t, kube(t), f.namespace, f.job)
	var result jobreport.Result
	var progress jobreport.Progress
	if found, err := jobreport.Decode(annotations, jobreport.ResultAnnotation, &result); !found || err != nil {
		t.Fatalf("result annotation: found %v, error %v; annotations %v", found, err, annotations)
	}
	// A run shorter than the progress interval reports no progress: its result carries the total.
	if found, err := jobreport.Decode(annotations, jobreport.ProgressAnnotation, &progress); err != nil ||
		(found && (progress.BytesTotal != f.sourcesTotal || progress.BytesDone > f.sourcesTotal)) {
		t.Errorf("progress annotation = %+v (found %v, error %v), want at most %d of %d", progress, found, err, f.sourcesTotal, f.sourcesTotal)
	}
	if result.BytesTotal != f.sourcesTotal {
		t.Errorf("result carries %d source bytes, want %d", result.BytesTotal, f.sourcesTotal)
	}
	if _, failed := annotations[jobreport.FailureAnnotation]; failed {
		t.Errorf("failure annotated on success: %v", annotations)
	}
	if result.Bucket != f.dst || result.Key != archiveKey {
		t.Errorf("result names %s/%s, want %s/%s", result.Bucket, result.Key, f.dst, archiveKey)
	}
	if !slices.Equal(result.SkippedFileIDs, []int64{80_004}) {
		t.Errorf("result skips %v, want [80004]", result.SkippedFileIDs)
	}
	if zr := downloadArchive(t, storageClient(t, f.server), result); len(zr.File) != 4 || zr.File[3].Name != manifest.Name {
		t.Errorf("archive has %d entries, want 3 files and the manifest", len(zr.File))
	}
	if strings.Contains(stderr.String(), f.server.SecretKey) {
		t.Errorf("stderr leaks the secret key:\n%s", &stderr)
	}
}

func TestCommandAbortsUploadOnSIGTERM(t *testing.T) {
	f := newCommandFixture(t, map[int64][]byte{90_001: randomBytes(1, 8<<20)})
	client := storageClient(t, f.server)
	args, err := json.Marshal(f.args("--max-bytes-per-second=2097152", fmt.Sprintf("--part-size=%d", worker.MinPartSize)))
	if err != nil {
		t.Fatal(err)
	}
	// The worker runs as its own process, as in the container, so the signal is real.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+helperCommand, helperArgsEnv+"="+string(args))
	for name, value := range f.env() {
		cmd.Env = append(cmd.Env, name+"="+value)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting worker: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	poll.Until(t, 15*time.Second, "the worker to upload", func() bool {
		var progress jobreport.Progress
		found, _ := jobreport.Decode(jobAnnotations(t, kube(t), f.namespace, f.job), jobreport.ProgressAnnotation, &progress)
		return found && progress.BytesDone > 0 && len(incompleteUploads(t, client, f.dst, archiveKey)) == 1
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signalling worker: %v", err)
	}
	signalled := time.Now()
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker still running 10s after SIGTERM; stderr:\n%s", &stderr)
	}

	if took := time.Since(signalled); took > 5*time.Second {
		t.Errorf("worker took %s to exit after SIGTERM, want at most 5s", took)
	}
	if exitErr, ok := errors.AsType[*exec.ExitError](err); !ok || exitErr.ExitCode() != jobreport.ExitRetryable {
		t.Errorf("worker exited with %v, want exit code %d; stderr:\n%s", err, jobreport.ExitRetryable, &stderr)
	}
	var failure jobreport.Failure
	found, err := jobreport.Decode(jobAnnotations(t, kube(t), f.namespace, f.job), jobreport.FailureAnnotation, &failure)
	if !found || err != nil || failure.Reason != downloadv1alpha1.ReasonStorageError || !strings.HasPrefix(failure.Message, "interrupted") {
		t.Errorf("failure annotation = %+v (found %v, error %v), want %s saying interrupted", failure, found, err,
			downloadv1alpha1.ReasonStorageError)
	}
	assertNothingStored(t, client, f.dst, archiveKey)
	if strings.Contains(stderr.String(), f.server.SecretKey) {
		t.Errorf("stderr leaks the secret key:\n%s", &stderr)
	}
}
