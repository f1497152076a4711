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

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/controller"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/test/demoenv"
	"github.com/download-operator/download-operator/test/promscrape"
	"github.com/download-operator/download-operator/test/testenv"
)

// demoBytesPerSecond is the cap the demo facade puts on every Download (hack/demo/lib.sh); the
// Downloads the bench creates directly get the same, so they behave like the facade's.
const demoBytesPerSecond = 8 << 20

// benchRunLabel marks the Downloads one measurement creates directly, so that its watches and
// clean-up see only them.
const benchRunLabel = "bench.download.operator.dev/run"

// demoCluster is the real local cluster of hack/demo, as .demo/env describes it.
type demoCluster struct {
	namespace string
	facadeURL string
	client    client.WithWatch
	clientset kubernetes.Interface
	// config is the cluster admin's, for clients of other identities.
	config *rest.Config
	// storage is the demo's MinIO as its root user, for the sources P8 and P9 store.
	storage      *minio.Client
	sourceBucket string
}

// startDemo runs hack/demo/up, which only starts or updates what is not already running, and
// connects to the cluster it describes in .demo/env.
func startDemo(ctx context.Context, logDir string) (*demoCluster, error) {
	// The clients here log nothing worth reading; without a logger controller-runtime complains.
	ctrllog.SetLogger(logr.Discard())
	logFile := filepath.Join(logDir, "demo-up.log")
	logf("bringing up the demo stack (hack/demo/up, idempotent; log %s)", logFile)
	out, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	err = demoenv.RunScript(ctx, out, "hack/demo/up")
	_ = out.Close()
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tailLog(logFile, 20))
	}
	env, err := demoenv.Load(demoenv.Path())
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading the demo kubeconfig: %w", err)
	}
	// The bench's own requests must not queue behind a client-side limiter: the latencies it
	// takes are the cluster's.
	cfg.QPS = -1
	scheme, err := testenv.NewScheme()
	if err != nil {
		return nil, err
	}
	c := &demoCluster{namespace: env.Namespace, facadeURL: env.FacadeURL, sourceBucket: env.SourceBucket}
	minioURL, err := url.Parse(env.MinioURL)
	if err != nil {
		return nil, fmt.Errorf("MINIO_URL in .demo/env: %w", err)
	}
	c.storage, err = minio.New(minioURL.Host, &minio.Options{
		Creds: credentials.NewStaticV4(env.MinioAccessKey, env.MinioSecretKey, ""), Secure: minioURL.Scheme == "https",
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to the demo's MinIO: %w", err)
	}
	if c.client, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme}); err != nil {
		return nil, fmt.Errorf("connecting to the demo cluster: %w", err)
	}
	c.config = cfg
	if c.clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("connecting to the demo cluster: %w", err)
	}
	return c, nil
}

// lifecycle is what the watches saw of one Download and its Job and worker Pod: the local time
// each watch event arrived, which has millisecond resolution where the objects' own timestamps
// have seconds.
type lifecycle struct {
	added       time.Time // the Download's ADDED event
	jobAdded    time.Time
	progress    time.Time // first Job event with the worker's progress annotation
	result      time.Time // first Job event with the worker's result annotation
	jobComplete time.Time // first Job event with condition Complete=True
	podAdded    time.Time
	podBound    time.Time // first Pod event with spec.nodeName
	podStarted  time.Time // first Pod event whose worker container is running or has run
	completed   time.Time // first Download event in phase Completed with a downloadURL
	failed      time.Time
	gone        time.Time // the Download's DELETED event
	podGone     time.Time
	// The last object of each kind seen, for their server-side timestamps.
	download *downloadv1alpha1.Download
	job      *batchv1.Job
	pod      *corev1.Pod
}

// tracker follows Downloads, worker Jobs and worker Pods in a namespace with one watch each,
// started before anything is created, and files every event under the Download's name.
type tracker struct {
	mu     sync.Mutex
	byName map[string]*lifecycle
	// onDownload, when set, sees every Download event after it was filed (P5's reference).
	onDownload func(at time.Time, d *downloadv1alpha1.Download)
	cancel     context.CancelFunc
	done       sync.WaitGroup
	errs       chan error
}

func (c *demoCluster) startTracker(ctx context.Context) (*tracker, error) {
	t := &tracker{byName: map[string]*lifecycle{}, errs: make(chan error, 3)}
	ctx, t.cancel = context.WithCancel(ctx)
	workers := client.MatchingLabels{controller.ComponentLabel: controller.WorkerComponent}
	lists := []struct {
		list   client.ObjectList
		labels client.MatchingLabels
	}{{&downloadv1alpha1.DownloadList{}, nil}, {&batchv1.JobList{}, workers}, {&corev1.PodList{}, workers}}
	for _, l := range lists {
		// Start from the current state's resourceVersion, so that no event of the measurement is
		// missed and none from before it is replayed.
		opts := []client.ListOption{client.InNamespace(c.namespace)}
		if l.labels != nil {
			opts = append(opts, l.labels)
		}
		if err := c.client.List(ctx, l.list, opts...); err != nil {
			t.cancel()
			return nil, fmt.Errorf("listing %T: %w", l.list, err)
		}
		rv := l.list.(metav1.ListInterface).GetResourceVersion()
		t.done.Go(func() {
			t.follow(ctx, c, l.list, append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}}))
		})
	}
	return t, nil
}

// follow runs one watch, resuming it from the last resourceVersion if the apiserver closes it.
func (t *tracker) follow(ctx context.Context, c *demoCluster, list client.ObjectList, opts []client.ListOption) {
	for ctx.Err() == nil {
		w, err := c.client.Watch(ctx, list, opts...)
		if err != nil {
			if ctx.Err() == nil {
				t.errs <- fmt.Errorf("watching %T: %w", list, err)
			}
			return
		}
		for ev := range w.ResultChan() {
			at := time.Now()
			if ev.Type == watch.Error {
				continue
			}
			obj, ok := ev.Object.(client.Object)
			if !ok {
				continue
			}
			opts[len(opts)-1] = &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: obj.GetResourceVersion()}}
			t.observe(at, ev.Type, obj)
		}
		w.Stop()
	}
}

func (t *tracker) stop() {
	t.cancel()
	t.done.Wait()
}

func (t *tracker) lifecycleOf(name string) *lifecycle {
	l := t.byName[name]
	if l == nil {
		l = &lifecycle{}
		t.byName[name] = l
	}
	return l
}

func setOnce(field *time.Time, at time.Time, cond bool) {
	if cond && field.IsZero() {
		*field = at
	}
}

func (t *tracker) observe(at time.Time, typ watch.EventType, obj client.Object) {
	var hook func()
	t.mu.Lock()
	switch o := obj.(type) {
	case *downloadv1alpha1.Download:
		l := t.lifecycleOf(o.Name)
		l.download = o
		setOnce(&l.added, at, true)
		setOnce(&l.completed, at, o.Status.Phase == downloadv1alpha1.PhaseCompleted && o.Status.DownloadURL != "")
		setOnce(&l.failed, at, o.Status.Phase == downloadv1alpha1.PhaseFailed)
		setOnce(&l.gone, at, typ == watch.Deleted)
		if t.onDownload != nil {
			hook = func() { t.onDownload(at, o) }
		}
	case *batchv1.Job:
		l := t.lifecycleOf(o.Labels[controller.DownloadNameLabel])
		l.job = o
		setOnce(&l.jobAdded, at, true)
		_, hasProgress := o.Annotations[jobreport.ProgressAnnotation]
		_, hasResult := o.Annotations[jobreport.ResultAnnotation]
		setOnce(&l.progress, at, hasProgress)
		setOnce(&l.result, at, hasResult)
		complete := slices.ContainsFunc(o.Status.Conditions, func(c batchv1.JobCondition) bool {
			return c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue
		})
		setOnce(&l.jobComplete, at, complete)
	case *corev1.Pod:
		l := t.lifecycleOf(o.Labels[controller.DownloadNameLabel])
		l.pod = o
		setOnce(&l.podAdded, at, true)
		setOnce(&l.podBound, at, o.Spec.NodeName != "")
		started := slices.ContainsFunc(o.Status.ContainerStatuses, func(s corev1.ContainerStatus) bool {
			return s.State.Running != nil || s.State.Terminated != nil
		})
		setOnce(&l.podStarted, at, started)
		setOnce(&l.podGone, at, typ == watch.Deleted)
	}
	t.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// snapshot copies the lifecycles of names.
func (t *tracker) snapshot(names []string) []lifecycle {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]lifecycle, 0, len(names))
	for _, n := range names {
		out = append(out, *t.lifecycleOf(n))
	}
	return out
}

// waitAll waits until done holds for the lifecycle of every name.
func (t *tracker) waitAll(ctx context.Context, what string, names []string, timeout time.Duration, done func(*lifecycle) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		t.mu.Lock()
		pending := 0
		for _, n := range names {
			if !done(t.lifecycleOf(n)) {
				pending++
			}
		}
		t.mu.Unlock()
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d Downloads not %s after %s", pending, len(names), what, timeout)
		}
		select {
		case err := <-t.errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func finished(l *lifecycle) bool { return !l.completed.IsZero() || !l.failed.IsZero() }

// checkCompleted fails when a Download failed instead: the figures would not be about the
// happy path.
func checkCompleted(ls []lifecycle) error {
	for _, l := range ls {
		if !l.failed.IsZero() {
			return fmt.Errorf("download %s failed: %s", l.download.Name, failureText(l.download))
		}
	}
	return nil
}

func failureText(d *downloadv1alpha1.Download) string {
	for _, c := range d.Status.Conditions {
		if c.Type == downloadv1alpha1.ConditionFailed {
			return c.Reason + ": " + c.Message
		}
	}
	return string(d.Status.Phase)
}

// benchDownload is a Download as the demo facade would create it for fileIDs, labelled with run.
func (c *demoCluster) benchDownload(run string, fileIDs []int64) *downloadv1alpha1.Download {
	return &downloadv1alpha1.Download{
		// Created as the facade creates them, with the cleanup finalizer already set.
		ObjectMeta: metav1.ObjectMeta{Name: uuid.NewString(), Namespace: c.namespace, Labels: map[string]string{benchRunLabel: run},
			Finalizers: []string{downloadv1alpha1.CleanupFinalizer}},
		// P5 and P6 measure what one Download costs through its own Job.
		Spec: downloadv1alpha1.DownloadSpec{FileIDs: fileIDs, MaxBytesPerSecond: ptr.To[int64](demoBytesPerSecond),
			ReusePolicy: downloadv1alpha1.ReuseNever},
	}
}

// storeSources stores n incompressible sources of size bytes, ids first, first+1, ..., as the
// demo's seed does: what they hold does not matter, only that each Download asks for its own.
func (c *demoCluster) storeSources(ctx context.Context, first, n int, size int64) error {
	for id := first; id < first+n; id++ {
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], uint64(id))
		content := io.LimitReader(rand.NewChaCha8(seed), size)
		if _, err := c.storage.PutObject(ctx, c.sourceBucket, strconv.Itoa(id), content, size, minio.PutObjectOptions{}); err != nil {
			return fmt.Errorf("storing source %d: %w", id, err)
		}
	}
	return nil
}

// deleteAll deletes the Downloads and waits until they and their worker Pods are gone: the
// finalizer removes the Job and the archive first.
func (c *demoCluster) deleteAll(ctx context.Context, t *tracker, names []string) error {
	for _, n := range names {
		d := &downloadv1alpha1.Download{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: c.namespace}}
		if err := c.client.Delete(ctx, d); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting Download %s: %w", n, err)
		}
	}
	return t.waitAll(ctx, "gone", names, 3*time.Minute, func(l *lifecycle) bool {
		return !l.gone.IsZero() && (l.podAdded.IsZero() || !l.podGone.IsZero())
	})
}

// cleanStale deletes Downloads an interrupted earlier bench run left behind, so that they add
// neither load nor writes to this one.
func (c *demoCluster) cleanStale(ctx context.Context) error {
	var list downloadv1alpha1.DownloadList
	if err := c.client.List(ctx, &list, client.InNamespace(c.namespace)); err != nil {
		return fmt.Errorf("listing Downloads: %w", err)
	}
	if len(list.Items) == 0 {
		return nil
	}
	logf("deleting %d Downloads left in %s before measuring", len(list.Items), c.namespace)
	t, err := c.startTracker(ctx)
	if err != nil {
		return err
	}
	defer t.stop()
	var names []string
	for _, d := range list.Items {
		names = append(names, d.Name)
		t.mu.Lock()
		t.lifecycleOf(d.Name).added = time.Now()
		t.mu.Unlock()
	}
	// Pods of these Downloads that exist already are not in the tracker; the finalizer waits
	// for them anyway, so a gone Download has no worker left.
	return c.deleteAll(ctx, t, names)
}

// apiserverMetrics reads the kube-apiserver's own /metrics.
func (c *demoCluster) apiserverMetrics(ctx context.Context) (promscrape.Scrape, error) {
	raw, err := c.clientset.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the apiserver's /metrics: %w", err)
	}
	return promscrape.Parse(bytes.NewReader(raw))
}

// percentile of sorted-or-not durations, nearest rank; NaN for none.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return ms(s[max(0, min(i, len(s)-1))])
}

// between collects b−a over the lifecycles where both are set.
func between(ls []lifecycle, a, b func(*lifecycle) time.Time) []time.Duration {
	var ds []time.Duration
	for i := range ls {
		ta, tb := a(&ls[i]), b(&ls[i])
		if !ta.IsZero() && !tb.IsZero() {
			ds = append(ds, tb.Sub(ta))
		}
	}
	return ds
}
