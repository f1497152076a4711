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
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"
	"k8s.io/client-go/kubernetes"

	"github.com/download-operator/download-operator/test/cluster"
)

const (
	// r4PollRate is the status polling rate through FACADE_URL during the restart.
	r4PollRate = 100
	// r4Lead is how long polling runs before the restart, as a baseline.
	r4Lead = 5 * time.Second
	// r4Settled is how long /readyz must have been 200 (apiserver and every facade Pod) after
	// the restart before the window closes.
	r4Settled = 10 * time.Second
	// r4ReadyWithin bounds the facade's return to ready after the apiserver is back.
	r4ReadyWithin = 60 * time.Second
	// probeInterval is how often the readiness probes sample.
	probeInterval = 200 * time.Millisecond
)

var _ = Describe("R4: apiserver restart", Label(drillLabel, "R4"), Serial, func() {
	It("keeps answering status polls while kube-apiserver restarts", func(ctx SpecContext) {
		By("preparing a completed job to poll")
		jobID := cluster.CompletedJob(ctx, cluster.File1MiB)

		facadePods, facadeRestarts := componentRestarts(ctx, cluster.FacadeComponent)
		_, controllerRestarts := componentRestarts(ctx, cluster.ControllerComponent)
		cfg, err := cluster.NewRESTConfig()
		Expect(err).NotTo(HaveOccurred())
		clientset, err := kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())

		By(fmt.Sprintf("polling the status at %d/s and sampling every /readyz", r4PollRate))
		windowCtx, endWindow := context.WithCancel(ctx)
		defer endWindow()
		polls := &timeline{}
		apiserverReady, facadeReady := &timeline{}, &timeline{}
		var wg sync.WaitGroup
		wg.Go(func() { pollAtRate(windowCtx, cluster.Env.FacadeURL+"/v1/download/status/"+jobID, r4PollRate, polls) })
		wg.Go(func() {
			probeEvery(windowCtx, apiserverReady, func(ctx context.Context) (int, error) {
				var code int
				err := clientset.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&code).Error()
				return code, err
			})
		})
		for _, p := range facadePods {
			wg.Go(func() {
				u := "http://" + p.Status.PodIP + ":8081/readyz" // the probe port
				probeEvery(windowCtx, facadeReady, func(ctx context.Context) (int, error) {
					return cluster.GetStatusCode(ctx, http.DefaultClient, u)
				})
			})
		}
		time.Sleep(r4Lead)

		By("restarting kube-apiserver with hack/local-cluster/up --restart kube-apiserver")
		restartStart := time.Now()
		Expect(cluster.RunRepoScript(ctx, "hack/local-cluster/up", "--restart", "kube-apiserver")).To(Succeed())
		restartTook := time.Since(restartStart)

		By(fmt.Sprintf("waiting until every /readyz has said 200 for %s", r4Settled))
		Eventually(ctx, func(g Gomega) {
			g.Expect(apiserverReady.okSince(restartStart)).To(BeNumerically(">=", r4Settled), "apiserver ready for")
			g.Expect(facadeReady.okSince(restartStart)).To(BeNumerically(">=", r4Settled), "facades ready for")
		}).WithTimeout(r4ReadyWithin + r4Settled).WithPolling(time.Second).Should(Succeed())
		endWindow()
		wg.Wait()

		By("checking the answers")
		codes := polls.codes()
		down, back := apiserverReady.outage(restartStart)
		streak, streakTook := polls.longestFailureStreak()
		figure("R4.restart", "hack/local-cluster/up --restart kube-apiserver took %s; apiserver /readyz non-200 for %s",
			restartTook.Round(100*time.Millisecond), back.Sub(down).Round(100*time.Millisecond))
		figure("R4.polls", "%d polls in %s: %v; longest non-200 streak %d polls (%s)", polls.len(),
			polls.span().Round(time.Second), codes, streak, streakTook.Round(time.Millisecond))
		lastUnready := facadeReady.lastFailure()
		if lastUnready.IsZero() {
			figure("R4.facadeReadyz", "every facade /readyz sample was 200 (%d samples)", facadeReady.len())
		} else {
			figure("R4.facadeReadyz", "last non-200 facade /readyz %s after the apiserver was back",
				lastUnready.Sub(back).Round(100*time.Millisecond))
			Expect(lastUnready.Sub(back)).To(BeNumerically("<", r4ReadyWithin), "facade ready again after")
		}
		Expect(codes).To(HaveKey("200"))
		for code, n := range codes {
			Expect(code).To(BeElementOf("200", "503"), "%d answers %s (all: %v)", n, code, codes)
		}
		for _, at := range polls.times("503") {
			Expect(facadeReady.failedNear(at, time.Second)).To(BeTrue(),
				"a 503 at %s while every facade said ready", at.Format(time.RFC3339Nano))
		}

		By("checking no facade Pod restarted")
		cluster.WaitForDeploymentReady(ctx, cluster.FacadeDeployment, time.Minute)
		// The controller restarts when its leader election cannot reach the apiserver: the
		// manager exits rather than risk two leaders. Counted, not judged; wait for it to be back.
		cluster.WaitForDeploymentReady(ctx, cluster.ControllerDeployment, 2*time.Minute)
		// The Deployment's status comes from the Deployment controller and can lag the kubelet:
		// a restarting controller container may still wait for its Secret, which the kubelet
		// could not fetch during the outage. The drill ends once every Pod runs again.
		Eventually(ctx, func() ([]string, error) { return cluster.NamespacePodProblems(ctx, false) }).
			WithTimeout(2*time.Minute).WithPolling(time.Second).Should(BeEmpty(), "Pods that did not recover from the outage")
		_, facadeRestartsAfter := componentRestarts(ctx, cluster.FacadeComponent)
		Expect(facadeRestartsAfter).To(Equal(facadeRestarts))
		_, controllerRestartsAfter := componentRestarts(ctx, cluster.ControllerComponent)
		figure("R4.restarts", "facade restarts %v -> %v; controller restarts %v -> %v", facadeRestarts,
			facadeRestartsAfter, controllerRestarts, controllerRestartsAfter)
	}, SpecTimeout(6*time.Minute))
})

// timeline records timestamped outcomes: an HTTP status code, or "error" for no answer.
type timeline struct {
	mu      sync.Mutex
	samples []sample
}

type sample struct {
	at   time.Time
	code string
}

func (t *timeline) add(at time.Time, code int, err error) {
	s := sample{at: at, code: fmt.Sprint(code)}
	if err != nil && code == 0 {
		s.code = "error"
	}
	t.mu.Lock()
	t.samples = append(t.samples, s)
	t.mu.Unlock()
}

// sorted returns the samples in time order; concurrent recorders append slightly out of order.
func (t *timeline) sorted() []sample {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]sample(nil), t.samples...)
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

func (t *timeline) len() int { return len(t.sorted()) }

func (t *timeline) span() time.Duration {
	s := t.sorted()
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1].at.Sub(s[0].at)
}

func (t *timeline) codes() map[string]int {
	counts := map[string]int{}
	for _, s := range t.sorted() {
		counts[s.code]++
	}
	return counts
}

func (t *timeline) times(code string) []time.Time {
	var out []time.Time
	for _, s := range t.sorted() {
		if s.code == code {
			out = append(out, s.at)
		}
	}
	return out
}

// okSince is how long the samples after from have been 200 without a break, up to the last one.
func (t *timeline) okSince(from time.Time) time.Duration {
	s := t.sorted()
	var firstOK time.Time
	for _, x := range s {
		switch {
		case x.at.Before(from):
		case x.code != "200":
			firstOK = time.Time{}
		case firstOK.IsZero():
			firstOK = x.at
		}
	}
	if firstOK.IsZero() {
		return 0
	}
	return s[len(s)-1].at.Sub(firstOK)
}

// outage is when the samples after from first failed and when they were 200 again.
func (t *timeline) outage(from time.Time) (down, back time.Time) {
	for _, x := range t.sorted() {
		switch {
		case x.at.Before(from):
		case x.code != "200" && down.IsZero():
			down = x.at
		case x.code == "200" && !down.IsZero() && back.IsZero():
			back = x.at
		}
	}
	return down, back
}

func (t *timeline) lastFailure() time.Time {
	var last time.Time
	for _, x := range t.sorted() {
		if x.code != "200" {
			last = x.at
		}
	}
	return last
}

// failedNear reports whether a sample within slack of at failed.
func (t *timeline) failedNear(at time.Time, slack time.Duration) bool {
	for _, x := range t.sorted() {
		if x.code != "200" && x.at.After(at.Add(-slack)) && x.at.Before(at.Add(slack)) {
			return true
		}
	}
	return false
}

// longestFailureStreak is the longest run of consecutive non-200 samples, and its duration.
func (t *timeline) longestFailureStreak() (int, time.Duration) {
	var (
		best, run int
		bestTook  time.Duration
		runStart  time.Time
		samples   = t.sorted()
	)
	for _, x := range samples {
		if x.code == "200" {
			run = 0
			continue
		}
		if run == 0 {
			runStart = x.at
		}
		run++
		if run > best {
			best, bestTook = run, x.at.Sub(runStart)
		}
	}
	return best, bestTook
}

// pollAtRate GETs u at perSecond until ctx ends, from enough goroutines that a slow answer does
// not lower the rate, and records every outcome.
func pollAtRate(ctx context.Context, u string, perSecond int, into *timeline) {
	limiter := rate.NewLimiter(rate.Limit(perSecond), 1)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for limiter.Wait(ctx) == nil {
				at := time.Now()
				code, err := cluster.GetStatusCode(ctx, c, u)
				if ctx.Err() != nil {
					return
				}
				into.add(at, code, err)
			}
		})
	}
	wg.Wait()
}

// probeEvery records probe's outcome every probeInterval until ctx ends.
func probeEvery(ctx context.Context, into *timeline, probe func(context.Context) (int, error)) {
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		probeCtx, cancel := context.WithTimeout(ctx, time.Second)
		at := time.Now()
		code, err := probe(probeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		into.add(at, code, err)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
