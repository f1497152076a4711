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
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/worker"
	"github.com/download-operator/download-operator/test/miniotest"
	"github.com/download-operator/download-operator/test/testenv"
)

// helperEnv selects a child-process mode of the test binary (see runHelper).
const helperEnv = "WORKER_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	code := m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// The shared servers start on first use, so a run of one test pays only for what it needs.
var (
	minioOnce   sync.Once
	sharedMinIO *miniotest.Server
	minioErr    error
	kubeOnce    sync.Once
	sharedKube  *testenv.Env
	kubeErr     error
)

func stopShared() error {
	var errs []error
	if sharedMinIO != nil {
		errs = append(errs, sharedMinIO.Stop())
	}
	if sharedKube != nil {
		errs = append(errs, sharedKube.Stop())
	}
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("stopping shared test servers: %w", err)
		}
	}
	return nil
}

// minioServer is the MinIO shared by the tests that do not stop it.
func minioServer(tb testing.TB) *miniotest.Server {
	tb.Helper()
	minioOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sharedMinIO, minioErr = miniotest.Start(ctx)
	})
	if minioErr != nil {
		tb.Fatalf("starting MinIO: %v", minioErr)
	}
	return sharedMinIO
}

func kube(tb testing.TB) *testenv.Env {
	tb.Helper()
	kubeOnce.Do(func() { sharedKube, kubeErr = testenv.Start() })
	if kubeErr != nil {
		tb.Fatalf("starting envtest: %v", kubeErr)
	}
	return sharedKube
}

func storageClient(tb testing.TB, server *miniotest.Server) *minio.Client {
	tb.Helper()
	client, err := server.Client()
	if err != nil {
		tb.Fatal(err)
	}
	return client
}

var bucketSeq atomic.Int64

// newBucket creates a bucket no other test uses.
func newBucket(tb testing.TB, client *minio.Client) string {
	tb.Helper()
	name := fmt.Sprintf("bucket-%03d", bucketSeq.Add(1))
	if err := client.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		tb.Fatalf("creating bucket %s: %v", name, err)
	}
	return name
}

const (
	sourceKeyTemplate = "src/{id}.dat"
	archiveKey        = "archives/bundle.zip"
)

// testConfig bundles ids from srcBucket into archiveBucket, with the smallest parts S3 allows and
// a progress interval short enough for tests to watch progress happen.
func testConfig(srcBucket, archiveBucket string, ids ...int64) worker.Config {
	return worker.Config{
		FileIDs:           ids,
		SourceBucket:      srcBucket,
		SourceKeyTemplate: sourceKeyTemplate,
		ArchiveBucket:     archiveBucket,
		ArchiveKey:        archiveKey,
		PartSize:          worker.MinPartSize,
		ProgressInterval:  50 * time.Millisecond,
	}
}

func sourceKey(id int64) string {
	return strings.ReplaceAll(sourceKeyTemplate, "{id}", fmt.Sprint(id))
}

// putSources uploads the given files, a few at a time.
func putSources(tb testing.TB, client *minio.Client, bucket string, files map[int64][]byte) {
	tb.Helper()
	g := new(errgroup.Group)
	g.SetLimit(8)
	for id, data := range files {
		g.Go(func() error {
			_, err := client.PutObject(context.Background(), bucket, sourceKey(id), bytes.NewReader(data),
				int64(len(data)), minio.PutObjectOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		tb.Fatalf("uploading sources: %v", err)
	}
}

// randomBytes is incompressible content, reproducible per seed.
func randomBytes(seed uint64, n int) []byte {
	data := make([]byte, n)
	_, _ = rand.NewChaCha8(seedOf(seed)).Read(data)
	return data
}

func seedOf(seed uint64) (s [32]byte) {
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

// csvBytes is compressible content of exactly n bytes, like the exports users download.
func csvBytes(seed uint64, n int) []byte {
	var b bytes.Buffer
	for row := 0; b.Len() < n; row++ {
		fmt.Fprintf(&b, "%d,customer-%d,2026-01-%02d,%d.%02d,EUR,shipped\n", row, seed*7+uint64(row)%97, row%28+1, row*13%1000, row%100)
	}
	return b.Bytes()[:n]
}

// recorder is a Reporter that keeps every report in order.
type recorder struct {
	mu       sync.Mutex
	events   []string
	progress []jobreport.Progress
	results  []jobreport.Result
	failures []jobreport.Failure
	// failureErr, when set, is returned by Failure, as by an apiserver that cannot be reached.
	failureErr error
}

func (r *recorder) Progress(_ context.Context, p jobreport.Progress) error {
	record(r, "progress", &r.progress, p)
	return nil
}

func (r *recorder) Result(_ context.Context, res jobreport.Result) error {
	record(r, "result", &r.results, res)
	return nil
}

func (r *recorder) Failure(_ context.Context, f jobreport.Failure) error {
	record(r, "failure", &r.failures, f)
	return r.failureErr
}

func record[T any](r *recorder, event string, reports *[]T, report T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event)
	*reports = append(*reports, report)
}

// bytesDone is the last progress reported, or -1 before the first report.
func (r *recorder) bytesDone() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.progress) == 0 {
		return -1
	}
	return r.progress[len(r.progress)-1].BytesDone
}

// incompleteUploads lists the multipart uploads left under key.
func incompleteUploads(tb testing.TB, client *minio.Client, bucket, key string) []string {
	tb.Helper()
	var ids []string
	for upload := range client.ListIncompleteUploads(context.Background(), bucket, key, true) {
		if upload.Err != nil {
			tb.Fatalf("listing incomplete uploads: %v", upload.Err)
		}
		ids = append(ids, upload.UploadID)
	}
	return ids
}

// assertNothingStored proves a failed run left neither an archive nor parts of one.
func assertNothingStored(tb testing.TB, client *minio.Client, bucket, key string) {
	tb.Helper()
	_, err := client.StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
	if code := minio.ToErrorResponse(err).Code; code != minio.NoSuchKey {
		tb.Errorf("stat archive after failure: got error %v (code %q), want %s", err, code, minio.NoSuchKey)
	}
	if uploads := incompleteUploads(tb, client, bucket, key); len(uploads) != 0 {
		tb.Errorf("incomplete uploads left behind: %v", uploads)
	}
}

// downloadArchive fetches the archive and checks it against the reported Result.
func downloadArchive(tb testing.TB, client *minio.Client, result jobreport.Result) *zip.Reader {
	tb.Helper()
	obj, err := client.GetObject(context.Background(), result.Bucket, result.Key, minio.GetObjectOptions{})
	if err != nil {
		tb.Fatalf("getting archive: %v", err)
	}
	defer func() { _ = obj.Close() }()
	data, err := io.ReadAll(obj)
	if err != nil {
		tb.Fatalf("reading archive: %v", err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != result.SHA256 {
		tb.Errorf("archive sha256 = %s, result says %s", got, result.SHA256)
	}
	if int64(len(data)) != result.Size {
		tb.Errorf("archive size = %d, result says %d", len(data), result.Size)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		tb.Fatalf("opening archive: %v", err)
	}
	return zr
}

// createJob creates a Job for a reporter to annotate. Its Pods never run: envtest has no
// controllers.
func createJob(tb testing.TB, env *testenv.Env, namespace, name string, annotations map[string]string) {
	tb.Helper()
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: annotations},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "worker", Image: "download-operator:test"}},
		}}},
	}
	if err := env.Client.Create(context.Background(), job); err != nil {
		tb.Fatalf("creating job %s/%s: %v", namespace, name, err)
	}
}

var nsSeq atomic.Int64

// workerNamespace creates a namespace with the worker's RBAC (patch on jobs, nothing else, as
// the chart grants) and returns it with a user bound to that role, so that reports are proven to need no more.
func workerNamespace(tb testing.TB, env *testenv.Env) (string, *envtest.AuthenticatedUser) {
	tb.Helper()
	ctx := context.Background()
	ns := fmt.Sprintf("worker-%d", nsSeq.Add(1))
	userName := "worker-" + ns
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"patch"}}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "worker"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: userName}},
		},
	}
	for _, obj := range objs {
		if err := env.Client.Create(ctx, obj); err != nil {
			tb.Fatalf("creating %T in %s: %v", obj, ns, err)
		}
	}
	user, err := env.AddUser(envtest.User{Name: userName}, nil)
	if err != nil {
		tb.Fatalf("adding user %s: %v", userName, err)
	}
	return ns, user
}

// jobAnnotations reads the Job's annotations as the controller would.
func jobAnnotations(tb testing.TB, env *testenv.Env, namespace, name string) map[string]string {
	tb.Helper()
	var job batchv1.Job
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &job); err != nil {
		tb.Fatalf("getting job: %v", err)
	}
	return job.Annotations
}
