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
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/localproc"
	"github.com/download-operator/download-operator/test/miniotest"
	"github.com/download-operator/download-operator/test/promscrape"
	"github.com/download-operator/download-operator/test/testenv"
)

// coldStartNamespace is served by the controller under test. Its Downloads are settled: completed,
// with a URL far from expiry and a TTL far from its end, so each reconcile finds nothing to do.
const coldStartNamespace = "bench-coldstart"

// measureColdStart is P7, opts.runs times: a fresh envtest each run, opts.coldStartDownloads
// settled Downloads stored while no controller runs, then `download-operator controller` started
// as a process of its own. The figure is the time until the controller's own counter
// (controller_runtime_reconcile_total) shows every Download reconciled once, and the apiserver
// requests the controller made meanwhile (rest_client_requests_total), which should be only its
// start-up (lists, watches), none per Download. The reference is a list of the same Downloads in
// pages of 500, as an informer's first list reads them: the least a cold start must do.
func measureColdStart(ctx context.Context, opts options, results *Results) error {
	dir, removeDir, err := workDir("download-bench-coldstart-", opts.keep)
	if err != nil {
		return err
	}
	defer removeDir()
	logf("building download-operator from ./cmd")
	binary, err := localproc.BuildOperator(ctx, dir)
	if err != nil {
		return err
	}
	for run := range opts.runs {
		logf("P7 run %d of %d", run+1, opts.runs)
		if err := coldStartOnce(ctx, opts, binary, filepath.Join(dir, fmt.Sprintf("run-%d", run+1)), results.sample(run)); err != nil {
			return err
		}
	}
	results.Notes["P7"] = fmt.Sprintf("%d settled Downloads (completed, URL and TTL far from due) in a served namespace "+
		"of envtest; reconciled = the controller's reconcile counter; the controller runs with its defaults",
		opts.coldStartDownloads)
	for _, s := range results.Samples {
		if s["P7.extrapolated"] > 0 {
			results.Notes["P7"] += fmt.Sprintf("; not all were reconciled within --coldstart-timeout %s (%.0f were), so the "+
				"time is extrapolated at the measured rate, and the peak RSS is that of the part reconciled",
				opts.coldStartTimeout, s["P7.reconciled"])
			break
		}
	}
	return nil
}

func coldStartOnce(ctx context.Context, opts options, binary, dir string, sample map[string]float64) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The clients here log nothing worth reading; without a logger controller-runtime complains.
	ctrllog.SetLogger(logr.Discard())
	logf("P7: starting envtest")
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.Stop()) }()
	// Every new Job gets a worker credential minted by STS, so the controller needs real storage
	// and its own MinIO user: that call is part of what a cold start costs.
	logf("P7: starting MinIO")
	storage, err := miniotest.Start(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, storage.Stop()) }()
	operatorKey, operatorSecret, err := storage.OperatorUser(ctx, "files", "downloads")
	if err != nil {
		return err
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS = -1
	admin, err := client.NewWithWatch(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		return err
	}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: coldStartNamespace}}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", coldStartNamespace, err)
	}
	n := opts.coldStartDownloads
	began := time.Now()
	if err := createSettled(ctx, admin, n); err != nil {
		return err
	}
	logf("P7: stored %d settled Downloads in %.1f s", n, time.Since(began).Seconds())

	listStart := time.Now()
	var list downloadv1alpha1.DownloadList
	for cont := ""; ; {
		page := downloadv1alpha1.DownloadList{}
		if err := admin.List(ctx, &page, client.InNamespace(coldStartNamespace), client.Limit(500), client.Continue(cont)); err != nil {
			return fmt.Errorf("listing Downloads: %w", err)
		}
		list.Items = append(list.Items, page.Items...)
		list.ResourceVersion = page.ResourceVersion
		if cont = page.Continue; cont == "" {
			break
		}
	}
	sample["P7.list_s"] = time.Since(listStart).Seconds()

	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := env.WriteAdminKubeconfig("bench-controller", kubeconfig); err != nil {
		return err
	}
	addrs, err := localproc.FreeAddrs(2)
	if err != nil {
		return err
	}
	metricsAddr, probeAddr := addrs[0], addrs[1]
	metricsURL := "http://" + metricsAddr + "/metrics"
	args := []string{"controller", "--namespaces", coldStartNamespace, "--worker-image", "download-operator:bench",
		"--storage-endpoint", storage.Endpoint, "--file-check-bind-address", "0",
		"--health-probe-bind-address", probeAddr,
		"--metrics-bind-address", metricsAddr, "--metrics-secure=false"}
	logFile := filepath.Join(dir, "controller.log")
	start := time.Now()
	p, err := startProcess("controller", binary, args,
		[]string{"KUBECONFIG=" + kubeconfig, "STORAGE_ACCESS_KEY=" + operatorKey, "STORAGE_SECRET_KEY=" + operatorSecret}, logFile)
	if err != nil {
		return err
	}
	defer p.stop()
	mem := startMemSampler(p.Pid())
	// The controller's own counters say when it reconciled each Download and what it asked the
	// apiserver; a settled Download leaves no other trace.
	var reconciled float64
	var elapsed time.Duration
	var scrape promscrape.Scrape
	timeout := time.After(opts.coldStartTimeout)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	lastLog := time.Now()
wait:
	for {
		select {
		case <-poll.C:
			fresh, err := promscrape.Fetch(ctx, http.DefaultClient, metricsURL)
			if err != nil {
				continue // not serving yet
			}
			scrape = fresh
			reconciled = scrape.Value("controller_runtime_reconcile_total", map[string]string{"controller": "download"})
			elapsed = time.Since(start)
			if reconciled >= float64(n) {
				break wait
			}
			if time.Since(lastLog) > 10*time.Second {
				logf("P7: %.0f of %d reconciled after %.0f s", reconciled, n, elapsed.Seconds())
				lastLog = time.Now()
			}
		case <-timeout:
			break wait
		case <-p.Done():
			return fmt.Errorf("%s\n%s", p.Exited(), tailLog(logFile, 20))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	anon, _ := mem.stop()
	sample["P7.reconciled"] = reconciled
	sample["P7.all_reconciled_s"] = elapsed.Seconds()
	sample["P7.downloads_per_s"] = reconciled / elapsed.Seconds()
	if reconciled < float64(n) {
		// Past the timeout: the rest would go at the same rate.
		sample["P7.all_reconciled_s"] = float64(n) / sample["P7.downloads_per_s"]
		sample["P7.extrapolated"] = 1
	}
	if hwm, _, err := rssMiB(p.Pid()); err == nil {
		sample["P7.peak_rss_mib"] = hwm
	}
	sample["P7.peak_rss_anon_mib"] = anon
	if cpu, err := cpuTime(p.Pid()); err == nil {
		sample["P7.cpu_s"] = cpu.Seconds()
	}
	sample["P7.reconciles"] = reconciled
	sample["P7.reconcile_errors"] = scrape.Value("controller_runtime_reconcile_errors_total",
		map[string]string{"controller": "download"})
	sample["P7.queue_depth"] = scrape.Value("workqueue_depth", map[string]string{"name": "download"})
	const requests = "rest_client_requests_total"
	sample["P7.apiserver_requests"] = scrape.Value(requests, nil)
	sample["P7.apiserver_requests_per_download"] = sample["P7.apiserver_requests"] / float64(n)
	for _, method := range []string{"GET", "POST", "PATCH", "PUT", "DELETE"} {
		sample["P7.apiserver_requests."+method] = scrape.Value(requests, map[string]string{"method": method})
	}
	logf("P7: %.0f of %d reconciled in %.1f s (%.0f Downloads/s; %.0f apiserver requests in all, %.0f errors, %.0f still "+
		"queued); peak RSS %.0f MiB (anonymous %.0f MiB), CPU %.1f s; reference list %.2f s",
		reconciled, n, sample["P7.all_reconciled_s"], sample["P7.downloads_per_s"], sample["P7.apiserver_requests"],
		sample["P7.reconcile_errors"], sample["P7.queue_depth"], sample["P7.peak_rss_mib"], anon, sample["P7.cpu_s"],
		sample["P7.list_s"])
	return nil
}

// createSettled stores n settled Downloads in coldStartNamespace from several goroutines (the
// store must fill in seconds, not minutes): each created with the controller's finalizer, then
// given the status of a Download that completed a minute ago, as the controller writes it.
func createSettled(ctx context.Context, c client.Client, n int) error {
	var wg sync.WaitGroup
	var failed atomic.Value
	next := atomic.Int64{}
	completed := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	urlExpires := metav1.NewTime(completed.Add(15 * time.Minute))
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && ctx.Err() == nil; i = next.Add(1) {
				d := &downloadv1alpha1.Download{
					ObjectMeta: metav1.ObjectMeta{
						Name: uuid.NewString(), Namespace: coldStartNamespace,
						Finalizers: []string{downloadv1alpha1.CleanupFinalizer},
					},
					Spec: downloadv1alpha1.DownloadSpec{FileIDs: sampleFileIDs},
				}
				if err := c.Create(ctx, d); err != nil {
					failed.Store(fmt.Errorf("creating Download: %w", err))
					return
				}
				d.Status = downloadv1alpha1.DownloadStatus{
					ObservedGeneration: d.Generation, Phase: downloadv1alpha1.PhaseCompleted,
					FileCount: int32(len(sampleFileIDs)), Progress: 100, BytesDone: 1 << 20, BytesTotal: 1 << 20,
					EtaSeconds: new(int64), JobName: d.Name, Attempts: 1, StartTime: &completed, CompletionTime: &completed,
					DownloadURL:  "http://downloads.bench.test/downloads/" + d.Name + ".zip",
					URLExpiresAt: &urlExpires,
					Archive: &downloadv1alpha1.ArchiveStatus{Bucket: "downloads", Key: coldStartNamespace + "/" + d.Name + ".zip",
						Size: 1 << 20, SHA256: strings.Repeat("0", 64)},
					Conditions: settledConditions(d.Generation, completed),
				}
				if err := c.Status().Update(ctx, d); err != nil {
					failed.Store(fmt.Errorf("settling Download %s: %w", d.Name, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return err
	}
	return ctx.Err()
}

// settledConditions are the conditions the controller writes on a Download it completed, so
// that the store holds what a real cold start finds, kstatus conditions included.
func settledConditions(generation int64, at metav1.Time) []metav1.Condition {
	const done = "the archive is stored and its URL is signed"
	var conditions []metav1.Condition
	for _, c := range []struct {
		conditionType string
		status        metav1.ConditionStatus
		message       string
	}{
		{downloadv1alpha1.ConditionComplete, metav1.ConditionTrue, done},
		{downloadv1alpha1.ConditionProgressing, metav1.ConditionFalse, "done"},
		{downloadv1alpha1.ConditionReady, metav1.ConditionTrue, done},
		{downloadv1alpha1.ConditionReconciling, metav1.ConditionFalse, done},
		{downloadv1alpha1.ConditionStalled, metav1.ConditionFalse, done},
	} {
		conditions = append(conditions, metav1.Condition{
			Type: c.conditionType, Status: c.status, Reason: downloadv1alpha1.ReasonArchiveReady,
			Message: c.message, ObservedGeneration: generation, LastTransitionTime: at,
		})
	}
	return conditions
}
