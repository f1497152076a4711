//go:build e2e

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

package drills

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/cluster"
)

const (
	r5Requests    = 100_000
	r5Concurrency = 32
	// r5DirectRequests of the requests go straight to one facade Pod from r5DirectWorkers of the
	// goroutines; the rest go through FACADE_URL.
	r5DirectRequests = 30_000
	r5DirectWorkers  = 8
	// The paces keep the storm just under the facade's per-client limit (1000/s and Pod in the
	// demo). Every request from this host is one client to the facade (the forwarder and the
	// bridge share an address), so a faster storm would mostly measure 429s: the limiter
	// answering before any hostile byte is parsed, and the well-behaved poller throttled with
	// the storm. FACADE_URL spreads over both Pods; the direct share adds to one of them:
	// 450 + 1000/2 + the poller's 20/2 stays below 1000 there.
	r5ForwardedRate = 1000
	r5DirectRate    = 450
	// r5ForwarderLoss bounds the requests the host's forwarder to the NodePort (socat, one
	// process per connection) may drop under the storm's connection churn: those never reach
	// the facade. The direct path has no such allowance.
	r5ForwarderLoss = 0.001
	// r5SlowConns slowloris connections, half trickling headers and half a body.
	r5SlowConns = 40
	// r5SlowLimit bounds how long a slowloris connection may live: the facade's read
	// timeouts are 5 s for headers and 15 s for the whole request, and the storm slows
	// everything on two cores.
	r5SlowLimit = 40 * time.Second
	// r5MemoryLimit is half the facade container's 256Mi limit.
	r5MemoryLimit = 128 * cluster.MiB
	// r5LegitRate is how often a well-behaved client polls during the storm.
	r5LegitRate = 20
)

var _ = Describe("R5: hostile traffic", Label(drillLabel, "R5"), Serial, func() {
	It("answers 100,000 malformed or hostile requests without a 5xx, a panic or unbounded memory", func(ctx SpecContext) {
		By("preparing a completed job for a well-behaved client to poll")
		jobID := cluster.CompletedJob(ctx, cluster.File1MiB)

		pods, restarts := componentRestarts(ctx, cluster.FacadeComponent)
		direct := "http://" + pods[0].Status.PodIP + ":8080"
		GinkgoWriter.Printf("storm targets: %s and Pod %s at %s\n", cluster.Env.FacadeURL, pods[0].Name, direct)

		samplingCtx, stopSampling := context.WithCancel(ctx)
		defer stopSampling()
		memory := &memorySamples{}
		var sampling sync.WaitGroup
		sampling.Go(func() { memory.sample(samplingCtx, pods) })
		// A baseline before the storm.
		time.Sleep(2 * time.Second)

		By(fmt.Sprintf("sending %d hostile requests, %d at a time, through FACADE_URL and straight to Pod %s",
			r5Requests, r5Concurrency, pods[0].Name))
		stormStart := time.Now()
		stormCtx, stopStorm := context.WithCancel(ctx)
		defer stopStorm()
		legit := &latencies{}
		var background sync.WaitGroup
		background.Go(func() {
			pollLegit(stormCtx, cluster.Env.FacadeURL+"/v1/download/status/"+jobID, legit)
		})
		slow := make([]slowOutcome, r5SlowConns)
		for i := range slow {
			addr := strings.TrimPrefix(cluster.Env.FacadeURL, "http://")
			if i%4 >= 2 {
				addr = strings.TrimPrefix(direct, "http://")
			}
			background.Go(func() { slow[i] = slowloris(ctx, addr, i%2 == 1, r5SlowLimit) })
		}
		var storms [2]*stormStats
		var stormWG sync.WaitGroup
		stormWG.Go(func() {
			storms[0] = runStorm(stormCtx, cluster.Env.FacadeURL, r5Requests-r5DirectRequests, r5Concurrency-r5DirectWorkers,
				r5ForwardedRate)
		})
		stormWG.Go(func() { storms[1] = runStorm(stormCtx, direct, r5DirectRequests, r5DirectWorkers, r5DirectRate) })
		stormWG.Wait()
		stormTook := time.Since(stormStart)
		stopStorm()
		background.Wait()
		// Memory after the storm, once the garbage collector had a moment.
		time.Sleep(3 * time.Second)
		stopSampling()
		sampling.Wait()

		// Every figure first, so that a broken promise still leaves the whole picture.
		sent := storms[0].sent.Load() + storms[1].sent.Load()
		figure("R5.storm", "%d requests in %s (%.0f/s): via FACADE_URL %v; direct to the Pod %v", sent,
			stormTook.Round(100*time.Millisecond), float64(sent)/stormTook.Seconds(), storms[0].totals(), storms[1].totals())
		for i, s := range storms {
			for kind, byOutcome := range s.byKind {
				GinkgoWriter.Printf("storm %d %-20s %v\n", i, kind, byOutcome)
			}
		}
		figure("R5.unanswered", "through FACADE_URL %d (%v); direct to the Pod %d", storms[0].transportErrorCount(),
			storms[0].transportErrors(), storms[1].transportErrorCount())
		byKind := map[string][]time.Duration{}
		for _, s := range slow {
			byKind[s.kind] = append(byKind[s.kind], s.after)
		}
		for kind, d := range byKind {
			figure("R5.slowloris."+kind, "%d connections ended by the server after %s..%s (e.g. %q)", len(d),
				percentile(d, 0).Round(100*time.Millisecond), percentile(d, 100).Round(100*time.Millisecond),
				firstAnswer(slow, kind))
		}
		figure("R5.legit", "%d status polls during the storm: %v; p50 %s, p99 %s, max %s", legit.count(), legit.codes(),
			legit.percentile(50), legit.percentile(99), legit.percentile(100))
		for _, p := range pods {
			before, peak, after := memory.summary(p.Name)
			figure("R5.memory."+p.Name, "RSS before %.1f MiB, peak %.1f MiB, after %.1f MiB (%d samples, limit %d MiB)",
				before/cluster.MiB, peak/cluster.MiB, after/cluster.MiB, memory.count(p.Name), r5MemoryLimit/cluster.MiB)
		}

		By("checking every request got an answer its kind allows")
		Expect(sent).To(BeEquivalentTo(r5Requests))
		Expect(storms[1].transportErrors()).To(BeEmpty(), "requests to the Pod that got no answer")
		for _, s := range storms {
			Expect(s.unexpected("body-over-64KiB", "413", "closed")).To(BeEmpty())
			Expect(s.unexpected("body-10MiB", "413", "closed")).To(BeEmpty())
			Expect(s.unexpected("header-1MiB", "431", "closed")).To(BeEmpty())
		}
		Expect(storms[0].transportErrorCount()).To(BeNumerically("<=", int(r5ForwarderLoss*float64(r5Requests-r5DirectRequests))),
			"requests through FACADE_URL that got no answer: %v", storms[0].transportErrors())

		By("checking the slowloris connections were cut by the server")
		for _, s := range slow {
			Expect(s.answer).NotTo(HavePrefix("dial"), "slowloris connection: %s", s.answer)
			Expect(s.answer).NotTo(Equal("still open"), "a %s connection outlived %s", s.kind, r5SlowLimit)
			Expect(s.answer).NotTo(MatchRegexp(`^HTTP/1\.[01] 5`), "a %s connection got %s", s.kind, s.answer)
		}

		By("checking the well-behaved client was served throughout")
		for code := range legit.codes() {
			Expect(code).To(Or(Equal("200"), Equal("429")), "legit poll answers %v", legit.codes())
		}
		Expect(legit.share("200")).To(BeNumerically(">=", 0.99), "share of legit polls answered 200")

		By("checking memory stayed bounded")
		for _, p := range pods {
			_, peak, _ := memory.summary(p.Name)
			Expect(memory.count(p.Name)).To(BeNumerically(">", int(stormTook/time.Second)/2), "memory samples of %s", p.Name)
			Expect(peak).To(BeNumerically("<", r5MemoryLimit), "peak RSS of %s", p.Name)
		}

		By("checking no facade panicked or restarted")
		after, restartsAfter := componentRestarts(ctx, cluster.FacadeComponent)
		Expect(restartsAfter).To(Equal(restarts))
		for _, p := range after {
			logs, err := cluster.Kubectl(ctx, "", "logs", p.Name, "--all-containers")
			Expect(err).NotTo(HaveOccurred())
			Expect(strings.ToLower(logs)).NotTo(ContainSubstring("panic"), "logs of %s", p.Name)
		}

		By("checking the storm created no Download")
		created, err := downloadsCreatedSince(ctx, stormStart)
		Expect(err).NotTo(HaveOccurred())
		for _, dl := range created {
			for _, id := range dl.Spec.FileIDs {
				_, seeded := cluster.SeededSizes[id]
				Expect(seeded || id == cluster.FileMissing).To(BeTrue(),
					"Download %s, created during the storm, asks for file %d: a hostile body got through", dl.Name, id)
			}
		}
		figure("R5.created", "%d Downloads created during the storm (other clients'), none from a hostile body", len(created))

		// Last, so that every other promise is checked too when this one breaks.
		By("checking no request got a 5xx")
		Expect(append(storms[0].serverErrors(), storms[1].serverErrors()...)).To(BeEmpty(), "5xx answers")
	}, SpecTimeout(10*time.Minute))
})

func firstAnswer(outcomes []slowOutcome, kind string) string {
	for _, o := range outcomes {
		if o.kind == kind {
			return o.answer
		}
	}
	return ""
}

// downloadsCreatedSince lists the namespace's Downloads created at or after t (which the
// apiserver records to the second).
func downloadsCreatedSince(ctx context.Context, t time.Time) ([]downloadv1alpha1.Download, error) {
	var list downloadv1alpha1.DownloadList
	if err := cluster.K8s.List(ctx, &list, client.InNamespace(cluster.Env.Namespace)); err != nil {
		return nil, fmt.Errorf("listing Downloads: %w", err)
	}
	var out []downloadv1alpha1.Download
	for _, dl := range list.Items {
		if !dl.CreationTimestamp.Time.Before(t.Truncate(time.Second)) {
			out = append(out, dl)
		}
	}
	return out, nil
}

// memorySamples holds each Pod's process_resident_memory_bytes, sampled once a second.
type memorySamples struct {
	mu     sync.Mutex
	values map[string][]float64
}

// sample scrapes each Pod's /metrics every second until ctx ends.
func (m *memorySamples) sample(ctx context.Context, pods []corev1.Pod) {
	c := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for _, p := range pods {
			if v, err := residentMemory(ctx, c, "http://"+p.Status.PodIP+":8081/metrics"); err == nil {
				m.mu.Lock()
				if m.values == nil {
					m.values = map[string][]float64{}
				}
				m.values[p.Name] = append(m.values[p.Name], v)
				m.mu.Unlock()
			} else if ctx.Err() == nil {
				GinkgoWriter.Printf("sampling memory of %s: %v\n", p.Name, err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (m *memorySamples) count(pod string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.values[pod])
}

// summary is the first, highest and last sample of pod.
func (m *memorySamples) summary(pod string) (before, peak, after float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.values[pod]
	if len(v) == 0 {
		return 0, 0, 0
	}
	for _, x := range v {
		peak = max(peak, x)
	}
	return v[0], peak, v[len(v)-1]
}

// residentMemory reads process_resident_memory_bytes from a Prometheus text exposition.
func residentMemory(ctx context.Context, c *http.Client, u string) (float64, error) {
	resp, err := cluster.Get(ctx, c, u)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), "process_resident_memory_bytes "); ok {
			return strconv.ParseFloat(strings.TrimSpace(value), 64)
		}
	}
	if err := scanner.Err(); err != nil {
		return 0, fmt.Errorf("reading %s: %w", u, err)
	}
	return 0, fmt.Errorf("%s has no process_resident_memory_bytes", u)
}

// latencies records a client's answers: codes and how long each took.
type latencies struct {
	mu    sync.Mutex
	took  []time.Duration
	byKey map[string]int
}

func (l *latencies) add(code string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byKey == nil {
		l.byKey = map[string]int{}
	}
	l.byKey[code]++
	l.took = append(l.took, d)
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.took)
}

func (l *latencies) codes() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.byKey {
		out[k] = v
	}
	return out
}

func (l *latencies) share(code string) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.took) == 0 {
		return 0
	}
	return float64(l.byKey[code]) / float64(len(l.took))
}

func (l *latencies) percentile(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return percentile(l.took, p).Round(100 * time.Microsecond)
}

// pollLegit polls u at r5LegitRate until ctx ends, as a well-behaved client would.
func pollLegit(ctx context.Context, u string, into *latencies) {
	limiter := rate.NewLimiter(r5LegitRate, 1)
	c := &http.Client{Timeout: 10 * time.Second}
	for limiter.Wait(ctx) == nil {
		start := time.Now()
		code, err := cluster.GetStatusCode(ctx, c, u)
		if ctx.Err() != nil {
			return
		}
		key := strconv.Itoa(code)
		if err != nil {
			key = "error: " + err.Error()
		}
		into.add(key, time.Since(start))
	}
}
