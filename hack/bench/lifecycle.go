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
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/test/promscrape"
)

// Demo source files (hack/demo/lib.sh): 14000 is 1 MiB; 70000 and 70007 together are 96 MiB,
// about 12 s at the demo's 8 MiB/s.
var (
	smallFile  = []int64{14000}
	twelveSecs = []int64{70000, 70007}
)

// createPaced creates n Downloads of fileIDs, rate per second (all at once when rate is 0).
func (c *demoCluster) createPaced(ctx context.Context, run string, fileIDs []int64, n int, rate float64) ([]string, error) {
	names := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	began := time.Now()
	for i := range n {
		if rate > 0 {
			time.Sleep(time.Until(began.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		}
		d := c.benchDownload(run, fileIDs)
		names[i] = d.Name
		wg.Go(func() {
			if err := c.client.Create(ctx, d); err != nil {
				errs <- fmt.Errorf("creating Download %s: %w", d.Name, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	return names, <-errs
}

// measureCompletion is P5: how long after its Job shows Complete a Download shows Completed with
// its URL, both as the bench's watches see them. The reference is one apiserver write and its
// watch event: a merge patch of an annotation on each Download, timed from sending it to its
// event arriving, which is the least the controller's reaction (its own watch event, a status
// patch, the bench's watch event) can cost.
func (c *demoCluster) measureCompletion(ctx context.Context, opts options, sample map[string]float64) error {
	t, err := c.startTracker(ctx)
	if err != nil {
		return err
	}
	defer t.stop()
	logf("P5: creating %d Downloads of file %d at %.0f/s", opts.p5Downloads, smallFile[0], opts.p5Rate)
	window := startCPUWindow()
	names, err := c.createPaced(ctx, uuid.NewString(), smallFile, opts.p5Downloads, opts.p5Rate)
	if err != nil {
		return err
	}
	if err := t.waitAll(ctx, "finished", names, 10*time.Minute, finished); err != nil {
		return err
	}
	sample["P5.machine_cores"] = window.stop().machineCores
	ls := t.snapshot(names)
	if err := checkCompleted(ls); err != nil {
		return err
	}
	lat := between(ls, func(l *lifecycle) time.Time { return l.jobComplete }, func(l *lifecycle) time.Time { return l.completed })
	ref, err := c.patchToWatch(ctx, t, names)
	if err != nil {
		return err
	}
	for key, ds := range map[string][]time.Duration{"P5.complete_to_url": lat, "P5.patch_to_watch": ref} {
		sample[key+".p50_ms"] = percentile(ds, 50)
		sample[key+".p99_ms"] = percentile(ds, 99)
		sample[key+".max_ms"] = percentile(ds, 100)
	}
	logf("P5 Job Complete → Download Completed with URL (%d): p50 %.0f ms, p99 %.0f ms, max %.0f ms; "+
		"reference patch → watch event p50 %.1f ms, p99 %.1f ms", len(lat), sample["P5.complete_to_url.p50_ms"],
		sample["P5.complete_to_url.p99_ms"], sample["P5.complete_to_url.max_ms"], sample["P5.patch_to_watch.p50_ms"],
		sample["P5.patch_to_watch.p99_ms"])
	return c.deleteAll(ctx, t, names)
}

// pingAnnotation is what P5's reference patches.
const pingAnnotation = "bench.download.operator.dev/ping"

// patchToWatch patches each Download once, one after another, and returns how long each took
// from sending the patch to its watch event arriving.
func (c *demoCluster) patchToWatch(ctx context.Context, t *tracker, names []string) ([]time.Duration, error) {
	arrived := make(chan time.Time, 1)
	var want string
	var mu sync.Mutex
	t.onDownload = func(at time.Time, d *downloadv1alpha1.Download) {
		mu.Lock()
		defer mu.Unlock()
		if want != "" && d.Annotations[pingAnnotation] == want {
			want = ""
			arrived <- at
		}
	}
	defer func() { t.onDownload = nil }()
	var ds []time.Duration
	for i, name := range names {
		token := strconv.Itoa(i) + "-" + uuid.NewString()[:8]
		mu.Lock()
		want = token
		mu.Unlock()
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{pingAnnotation: token}}})
		d := &downloadv1alpha1.Download{}
		d.Name, d.Namespace = name, c.namespace
		sent := time.Now()
		if err := c.client.Patch(ctx, d, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return nil, fmt.Errorf("patching Download %s: %w", name, err)
		}
		select {
		case at := <-arrived:
			ds = append(ds, at.Sub(sent))
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("the watch never showed the patch of Download %s", name)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return ds, nil
}

// writeVerbs are the verbs of apiserver_request_total that change state.
var writeVerbs = []string{"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"}

// countedResources are the resources whose writes P6 counts: the operator's own objects first
// (Downloads, Jobs, the workers' credential Secrets), then what Kubernetes writes for each worker
// (Pods, Events).
var countedResources = []string{"downloads", "jobs", "secrets", "pods", "events"}

// operatorWrites are the writes the goal counts, those of the facade, the controller and the
// worker: the Download's create, finalizer and delete, its status, the Job's create, patches
// (progress and result by the worker, followers' owner references by the controller) and delete,
// and the credential Secret. The rest on these resources is Kubernetes's: the Job controller's
// status writes and the garbage collector's delete of each credential Secret with its Job.
var operatorWrites = []string{"downloads.-.POST", "downloads.-.PATCH", "downloads.-.DELETE", "downloads.status.PATCH",
	"jobs.-.POST", "jobs.-.PATCH", "jobs.-.DELETE", "secrets.-.POST"}

// writeCounts are apiserver writes by resource/subresource/verb.
type writeCounts map[string]float64

func (c *demoCluster) writeCounts(ctx context.Context) (writeCounts, error) {
	scrape, err := c.apiserverMetrics(ctx)
	if err != nil {
		return nil, err
	}
	counts := writeCounts{}
	scrape.Each("apiserver_request_total", func(m *dto.Metric) {
		verb, resource := promscrape.Label(m, "verb"), promscrape.Label(m, "resource")
		if !slices.Contains(writeVerbs, verb) || !slices.Contains(countedResources, resource) {
			return
		}
		sub := cmp.Or(promscrape.Label(m, "subresource"), "-")
		counts[resource+"."+sub+"."+verb] += m.GetCounter().GetValue()
	})
	return counts, nil
}

// measureWrites is P6: every apiserver write over the whole life of a set of Downloads (create,
// the controller's and the worker's writes, the Job controller's, the kubelet's and the
// scheduler's, deletion and the finalizer), from the apiserver's own request counters taken
// before the set is created and after it is gone, while nothing else runs. Two sets: short
// Downloads (1 MiB) and Downloads of about 12 s of processing.
func (c *demoCluster) measureWrites(ctx context.Context, opts options, sample map[string]float64) error {
	sets := []struct {
		name  string
		files []int64
	}{{"short", smallFile}, {"long", twelveSecs}}
	for _, set := range sets {
		t, err := c.startTracker(ctx)
		if err != nil {
			return err
		}
		before, err := c.writeCounts(ctx)
		if err != nil {
			t.stop()
			return err
		}
		logf("P6 %s: %d Downloads of files %v", set.name, opts.p6Downloads, set.files)
		names, err := c.createPaced(ctx, uuid.NewString(), set.files, opts.p6Downloads, 0)
		if err == nil {
			err = t.waitAll(ctx, "finished", names, 10*time.Minute, finished)
		}
		ls := t.snapshot(names)
		if err == nil {
			err = checkCompleted(ls)
		}
		if err == nil {
			err = c.deleteAll(ctx, t, names)
		}
		t.stop()
		if err != nil {
			return err
		}
		// Event recorders send in the background; give them time to land.
		time.Sleep(3 * time.Second)
		after, err := c.writeCounts(ctx)
		if err != nil {
			return err
		}
		n := float64(len(names))
		key := "P6." + set.name + "."
		perResource := map[string]float64{}
		var parts []string
		for k, v := range after {
			if d := (v - before[k]) / n; d > 0 {
				sample[key+"writes."+k] = d
				perResource[strings.SplitN(k, ".", 2)[0]] += d
				parts = append(parts, fmt.Sprintf("%s %.1f", k, d))
			}
		}
		slices.Sort(parts)
		// The worker's time: from its container starting to its result. (A worker that finishes
		// within one progress interval reports no progress before its result.)
		processing := between(ls, func(l *lifecycle) time.Time { return l.podStarted }, func(l *lifecycle) time.Time { return l.result })
		seconds := percentile(processing, 50) / 1000
		sample[key+"processing_s"] = seconds
		sample[key+"goal_writes"] = 6 + seconds/3
		sample[key+"writes_per_download"] = perResource["downloads"] + perResource["jobs"] + perResource["secrets"]
		for _, r := range countedResources {
			sample[key+r+"_writes_per_download"] = perResource[r]
		}
		sample[key+"kube_writes_per_download"] = perResource["pods"] + perResource["events"]
		operator := 0.0
		for _, k := range operatorWrites {
			operator += sample[key+"writes."+k]
		}
		sample[key+"operator_writes_per_download"] = operator
		sample[key+"job_controller_writes_per_download"] = sample[key+"writes_per_download"] - operator
		logf("P6 %s: %.1f writes per Download on Downloads and Jobs (goal for %.1f s of processing: %.1f), "+
			"%.1f on Pods, %.1f Events; per Download: %s", set.name, sample[key+"writes_per_download"], seconds,
			sample[key+"goal_writes"], perResource["pods"], perResource["events"], strings.Join(parts, ", "))
	}
	return nil
}

// p8FirstFile is the first of the 1 MiB sources P8 and P9 store for themselves: P8's Downloads
// must each ask for other files, or they would share one Job.
const p8FirstFile = 14100

// measureEndToEnd is P8: n small Downloads initiated at once through the facade, as browsers
// would, followed to Completed by watches on Downloads, Jobs and worker Pods, then deleted. The
// time of each step comes from when its watch event arrived. It runs twice: n Downloads of n
// distinct files, then n whose second half repeats the first half's files, which share Jobs.
func (c *demoCluster) measureEndToEnd(ctx context.Context, opts options, sample map[string]float64) error {
	n := opts.p8Downloads
	if err := c.storeSources(ctx, p8FirstFile, n, 1<<20); err != nil {
		return err
	}
	distinct := make([]int64, n)
	repeated := make([]int64, n)
	for i := range n {
		distinct[i] = int64(p8FirstFile + i)
		repeated[i] = int64(p8FirstFile + i%max(1, n/2))
	}
	if err := c.bareBurst(ctx, n, sample); err != nil {
		return err
	}
	if err := c.measureBurst(ctx, distinct, "P8.", sample); err != nil {
		return err
	}
	return c.measureBurst(ctx, repeated, "P8.repeated.", sample)
}

// bareBurstNamespace is where P8's reference creates its Downloads: a namespace no controller
// serves, so each costs the controller one status write and starts nothing.
const bareBurstNamespace = "bench-bare-burst"

// bareBurst is P8's reference for the initiate latency: n Creates of a Download sent at once, as
// a ServiceAccount allowed only that, timed from sending to the answer as the facade's initiates
// are. A ServiceAccount, like the facade's, so that the apiserver's priority and fairness queue
// its requests as they queue the facade's (the admin's are exempt). The Downloads are deleted
// afterwards.
func (c *demoCluster) bareBurst(ctx context.Context, n int, sample map[string]float64) error {
	creator, err := c.burstClient(ctx)
	if err != nil {
		return err
	}
	took := make([]time.Duration, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		d := &downloadv1alpha1.Download{
			ObjectMeta: metav1.ObjectMeta{Name: uuid.NewString(), Namespace: bareBurstNamespace},
			Spec:       downloadv1alpha1.DownloadSpec{FileIDs: []int64{int64(p8FirstFile + i)}},
		}
		wg.Go(func() {
			sent := time.Now()
			if err := creator.Create(ctx, d); err != nil {
				errs <- fmt.Errorf("creating Download %s: %w", d.Name, err)
				return
			}
			took[i] = time.Since(sent)
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	sample["P8.bare_create.p50_ms"] = percentile(took, 50)
	sample["P8.bare_create.p99_ms"] = percentile(took, 99)
	logf("P8: a bare burst of %d Creates: p50 %.0f ms, p99 %.0f ms", n, sample["P8.bare_create.p50_ms"], sample["P8.bare_create.p99_ms"])
	return c.client.DeleteAllOf(ctx, &downloadv1alpha1.Download{}, client.InNamespace(bareBurstNamespace))
}

// burstClient is a client of a ServiceAccount in bareBurstNamespace that may create Downloads
// there and nothing else, without a client-side rate limit.
func (c *demoCluster) burstClient(ctx context.Context) (client.Client, error) {
	const name = "bench-burst"
	objects := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: bareBurstNamespace}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bareBurstNamespace}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bareBurstNamespace}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{downloadv1alpha1.GroupVersion.Group}, Resources: []string{"downloads"}, Verbs: []string{"create"},
		}}},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bareBurstNamespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: bareBurstNamespace}},
		},
	}
	for _, obj := range objects {
		if err := c.client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	token, err := c.clientset.CoreV1().ServiceAccounts(bareBurstNamespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}},
		metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("minting a token for %s: %w", name, err)
	}
	cfg := rest.AnonymousClientConfig(c.config)
	cfg.BearerToken = token.Status.Token
	cfg.QPS = -1
	return client.New(cfg, client.Options{Scheme: c.client.Scheme()})
}

// completedAll waits, unless sendErr says the Downloads could not all be sent, until every one
// in names has finished, and returns their lifecycles once each completed. On failure it deletes
// those that were sent (names holds "" for the others) before returning, so that a failed
// measurement leaves no load behind for the next.
func (c *demoCluster) completedAll(ctx context.Context, t *tracker, names []string, timeout time.Duration, sendErr error) ([]lifecycle, error) {
	err := sendErr
	if err == nil {
		err = t.waitAll(ctx, "finished", names, timeout, finished)
	}
	var ls []lifecycle
	if err == nil {
		ls = t.snapshot(names)
		err = checkCompleted(ls)
	}
	if err != nil {
		_ = c.deleteAll(ctx, t, slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == "" }))
		return nil, err
	}
	return ls, nil
}

// measureBurst initiates one Download per file id at once, follows each to Completed, records
// its figures under prefix, and deletes them.
func (c *demoCluster) measureBurst(ctx context.Context, files []int64, prefix string, sample map[string]float64) error {
	t, err := c.startTracker(ctx)
	if err != nil {
		return err
	}
	defer t.stop()
	n := len(files)
	logf("%s initiating %d Downloads of 1 MiB files through the facade at %s", prefix, n, c.facadeURL)
	window := startCPUWindow()
	sent := make([]time.Time, n)
	answered := make([]time.Duration, n)
	names := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	var retries atomic.Int64
	for i := range n {
		body := fmt.Sprintf(`{"file_ids":[%d]}`, files[i])
		wg.Go(func() {
			sent[i] = time.Now()
			// The demo's one host forwarder (socat) now and then resets a connection when 100 open
			// at once; an Idempotency-Key makes the retry safe, as it would for a browser.
			key := uuid.NewString()
			for attempt := 1; ; attempt++ {
				jobID, err := c.initiate(ctx, body, key)
				if err == nil {
					names[i] = jobID
					answered[i] = time.Since(sent[i])
					return
				}
				var status statusError
				if errors.As(err, &status) || attempt == 5 || ctx.Err() != nil {
					errs <- err
					return
				}
				retries.Add(1)
				time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	sample[prefix+"initiate_retries"] = float64(retries.Load())
	sample[prefix+"initiate.p50_ms"] = percentile(answered, 50)
	sample[prefix+"initiate.p99_ms"] = percentile(answered, 99)
	ls, err := c.completedAll(ctx, t, names, 15*time.Minute, <-errs)
	if err != nil {
		return err
	}
	cores := window.stop().machineCores
	jobs := 0
	for _, l := range ls {
		if l.job != nil {
			jobs++
		}
	}
	sample[prefix+"jobs"] = float64(jobs)
	first, last := slices.MinFunc(sent, time.Time.Compare), time.Time{}
	for _, l := range ls {
		if l.completed.After(last) {
			last = l.completed
		}
	}
	sample[prefix+"downloads_per_min"] = float64(n) / last.Sub(first).Minutes()
	sample[prefix+"makespan_s"] = last.Sub(first).Seconds()
	logf("%s %d Downloads, %d Jobs, %.0f Downloads/min; initiate p50 %.0f ms, p99 %.0f ms", prefix, n, jobs,
		sample[prefix+"downloads_per_min"], sample[prefix+"initiate.p50_ms"], sample[prefix+"initiate.p99_ms"])
	if prefix != "P8." {
		// The repeated run is compared by throughput and Jobs; the time breakdown is P8's.
		return c.deleteAll(ctx, t, names)
	}
	sample["P8.machine_cores"] = cores

	sentAt := map[string]time.Time{}
	for i, name := range names {
		sentAt[name] = sent[i]
	}
	withSent := func(l *lifecycle) time.Time { return sentAt[l.download.Name] }
	steps := []struct {
		key  string
		a, b func(*lifecycle) time.Time
	}{
		{"total", withSent, func(l *lifecycle) time.Time { return l.completed }},
		{"initiate_to_job", withSent, func(l *lifecycle) time.Time { return l.jobAdded }},
		// The parts of initiate_to_job: the facade's answer (its create), the controller's reaction.
		{"initiate_to_download", withSent, func(l *lifecycle) time.Time { return l.added }},
		{"download_to_job", func(l *lifecycle) time.Time { return l.added }, func(l *lifecycle) time.Time { return l.jobAdded }},
		{"job_to_pod_started", func(l *lifecycle) time.Time { return l.jobAdded }, func(l *lifecycle) time.Time { return l.podStarted }},
		{"pod_started_to_job_complete", func(l *lifecycle) time.Time { return l.podStarted }, func(l *lifecycle) time.Time { return l.jobComplete }},
		{"job_complete_to_completed", func(l *lifecycle) time.Time { return l.jobComplete }, func(l *lifecycle) time.Time { return l.completed }},
		// The parts of job_to_pod_started: the Job controller creating the Pod, the scheduler
		// binding it (waiting for CPU requests to fit), the kubelet starting its container.
		{"job_to_pod_created", func(l *lifecycle) time.Time { return l.jobAdded }, func(l *lifecycle) time.Time { return l.podAdded }},
		{"pod_created_to_bound", func(l *lifecycle) time.Time { return l.podAdded }, func(l *lifecycle) time.Time { return l.podBound }},
		{"pod_bound_to_started", func(l *lifecycle) time.Time { return l.podBound }, func(l *lifecycle) time.Time { return l.podStarted }},
		// The worker's own time, between its first progress report and its result.
		{"worker_streaming", func(l *lifecycle) time.Time { return l.progress }, func(l *lifecycle) time.Time { return l.result }},
		{"result_to_job_complete", func(l *lifecycle) time.Time { return l.result }, func(l *lifecycle) time.Time { return l.jobComplete }},
	}
	var report []string
	for _, s := range steps {
		ds := between(ls, s.a, s.b)
		sample["P8."+s.key+".p50_s"] = percentile(ds, 50) / 1000
		sample["P8."+s.key+".p90_s"] = percentile(ds, 90) / 1000
		report = append(report, fmt.Sprintf("%s p50 %.2f s p90 %.2f s", s.key, sample["P8."+s.key+".p50_s"], sample["P8."+s.key+".p90_s"]))
	}
	// Cross-check from the objects' own (whole-second) timestamps: Job created to container started.
	var server []time.Duration
	for _, l := range ls {
		if l.job == nil || l.pod == nil {
			continue
		}
		for _, cs := range l.pod.Status.ContainerStatuses {
			if cs.State.Terminated != nil {
				server = append(server, cs.State.Terminated.StartedAt.Sub(l.job.CreationTimestamp.Time))
			}
		}
	}
	sample["P8.server.job_to_container_started.p50_s"] = percentile(server, 50) / 1000
	sample["P8.max_concurrent_workers"] = float64(maxOverlap(ls))
	logf("P8: %d Downloads in %.1f s = %.0f Downloads/min; at most %.0f workers at once; %s", n, sample["P8.makespan_s"],
		sample["P8.downloads_per_min"], sample["P8.max_concurrent_workers"], strings.Join(report, "; "))
	return c.deleteAll(ctx, t, names)
}

// statusError is an answer of the facade other than 202 Accepted: not retried.
type statusError struct {
	code int
	body string
}

func (e statusError) Error() string { return fmt.Sprintf("initiate answered %d: %s", e.code, e.body) }

// initiate posts one initiate to the demo facade and returns the jobId.
func (c *demoCluster) initiate(ctx context.Context, body, idempotencyKey string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.facadeURL+"/v1/download/initiate", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idempotencyKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("initiating: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("initiating: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", statusError{resp.StatusCode, string(raw)}
	}
	var accepted facade.InitiateResponse
	if err := json.Unmarshal(raw, &accepted); err != nil {
		return "", statusError{resp.StatusCode, string(raw)}
	}
	return accepted.JobID, nil
}

// maxOverlap is the most worker Pods that were running at once (bound to Job Complete).
func maxOverlap(ls []lifecycle) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, l := range ls {
		if !l.podBound.IsZero() && !l.jobComplete.IsZero() {
			edges = append(edges, edge{l.podBound, 1}, edge{l.jobComplete, -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	most, now := 0, 0
	for _, e := range edges {
		now += e.delta
		most = max(most, now)
	}
	return most
}

// measure runs the selected figures of the real cluster once.
func (c *demoCluster) measure(ctx context.Context, opts options, wants func(string) bool, sample map[string]float64) error {
	for _, figure := range []struct {
		id      string
		measure func(context.Context, options, map[string]float64) error
	}{{"P5", c.measureCompletion}, {"P6", c.measureWrites}, {"P8", c.measureEndToEnd}, {"P9", c.measureRepeat}} {
		if !wants(figure.id) {
			continue
		}
		if err := figure.measure(ctx, opts, sample); err != nil {
			return fmt.Errorf("%s: %w", figure.id, err)
		}
	}
	return nil
}

// measureRepeat is P9: one Download of a 1 MiB file run through its Job (the reference), then
// the same request repeated opts.p9Repeats times, four a second, while its archive is stored:
// initiate → Completed of each repeat, and how many Jobs the repeats created (goal 0).
func (c *demoCluster) measureRepeat(ctx context.Context, opts options, sample map[string]float64) error {
	file := p8FirstFile + opts.p8Downloads // a file no P8 Download asked for
	if err := c.storeSources(ctx, file, 1, 1<<20); err != nil {
		return err
	}
	t, err := c.startTracker(ctx)
	if err != nil {
		return err
	}
	defer t.stop()
	body := fmt.Sprintf(`{"file_ids":[%d]}`, file)
	n := opts.p9Repeats
	names := make([]string, 0, n+1)
	sent := make([]time.Time, 0, n+1)
	initiate := func() error {
		sent = append(sent, time.Now())
		name, err := c.initiate(ctx, body, uuid.NewString())
		if err == nil {
			names = append(names, name)
		}
		return err
	}
	logf("P9: one Download of file %d through its Job, then %d repeats", file, n)
	err = initiate()
	if err == nil {
		err = t.waitAll(ctx, "finished", names, 5*time.Minute, finished)
	}
	for i := 0; err == nil && i < n; i++ {
		time.Sleep(250 * time.Millisecond)
		err = initiate()
	}
	ls, err := c.completedAll(ctx, t, names, 5*time.Minute, err)
	if err != nil {
		return err
	}
	var repeats []time.Duration
	jobs := 0
	for i, l := range ls[1:] {
		repeats = append(repeats, l.completed.Sub(sent[i+1]))
		if l.job != nil {
			jobs++
		}
	}
	sample["P9.first_ms"] = float64(ls[0].completed.Sub(sent[0]).Milliseconds())
	sample["P9.repeat.p50_ms"] = percentile(repeats, 50)
	sample["P9.repeat.p99_ms"] = percentile(repeats, 99)
	sample["P9.jobs"] = float64(jobs)
	sample["P9.repeats"] = float64(n)
	logf("P9: the first took %.0f ms through its Job; %d repeats: p50 %.0f ms, p99 %.0f ms, %d Jobs created",
		sample["P9.first_ms"], n, sample["P9.repeat.p50_ms"], sample["P9.repeat.p99_ms"], jobs)
	return c.deleteAll(ctx, t, names)
}

// measureCluster brings up the demo stack and measures P5, P6 and P8 on it, opts.runs times.
func measureCluster(ctx context.Context, opts options, wants func(string) bool, results *Results) error {
	dir, removeDir, err := workDir("download-bench-cluster-", opts.keep)
	if err != nil {
		return err
	}
	defer removeDir()
	c, err := startDemo(ctx, dir)
	if err != nil {
		return err
	}
	if err := c.cleanStale(ctx); err != nil {
		return err
	}
	for run := range opts.runs {
		logf("real cluster, run %d of %d", run+1, opts.runs)
		if err := c.measure(ctx, opts, wants, results.sample(run)); err != nil {
			return err
		}
	}
	return nil
}
