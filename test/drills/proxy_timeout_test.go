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
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	dlclient "github.com/download-operator/download-operator/pkg/client"
	"github.com/download-operator/download-operator/test/cluster"
)

const (
	// proxyTimeout is the snippet's proxy_read_timeout: the drill outlasts it by half.
	proxyTimeout = 60 * time.Second
	// slowWork is how long the drill's work takes: the Download's processing, and the
	// synchronous endpoint's answer.
	slowWork = 90 * time.Second
	// proxyPollInterval is how often the polling client asks, as the web UI does.
	proxyPollInterval = 3 * time.Second
)

// proxyDrillFiles is every seeded file: 737 MiB at the demo facade's 8 MiB/s, about 92 s.
var proxyDrillFiles = []int64{cluster.File1MiB, cluster.File32MiB, cluster.File64MiB, cluster.File128MiB, cluster.File512MiB}

var _ = Describe("Proxy timeout proof", Label(drillLabel, "proxy"), Serial, func() {
	It("completes a 90-second download through nginx (polling and SSE) where a synchronous 90-second request gets 504",
		func(ctx SpecContext) {
			By("starting a synchronous endpoint that answers after 90 s, as a bundling endpoint would")
			backend, err := startSlowBackend(slowWork)
			Expect(err).NotTo(HaveOccurred())

			By("starting nginx configured from " + nginxSnippetPath + ", with /sync/ proxied like `location /`")
			proxy, err := startNginx(ctx, map[string]string{"/sync/": backend.addr})
			Expect(err).NotTo(HaveOccurred())

			polls, streams := &trafficStats{}, &trafficStats{}
			pollClient, err := dlclient.New(proxy.URL(), dlclient.WithUserAgent("e2e-proxy-drill-poll"),
				dlclient.WithHTTPClient(&http.Client{Transport: &countingTransport{stats: polls}}))
			Expect(err).NotTo(HaveOccurred())
			sseClient, err := dlclient.New(proxy.URL(), dlclient.WithUserAgent("e2e-proxy-drill-sse"),
				dlclient.WithHTTPClient(&http.Client{Transport: &countingTransport{stats: streams}}))
			Expect(err).NotTo(HaveOccurred())

			By("initiating a download of every seeded file (737 MiB) through nginx")
			started := time.Now()
			jobID := cluster.InitiateWith(ctx, pollClient, proxyDrillFiles)

			// The three clients run side by side, so the drill takes as long as the slowest.
			var (
				wg                sync.WaitGroup
				polled, streamed  *dlclient.Status
				pollErr, sseErr   error
				pollCount, events int
				reconnects        int
				pollDone, sseDone time.Duration
				syncResult        syncOutcome
			)
			wg.Go(func() {
				defer GinkgoRecover()
				polled, pollCount, pollErr = pollThroughProxy(ctx, pollClient, jobID)
				pollDone = time.Since(started)
			})
			wg.Go(func() {
				defer GinkgoRecover()
				streamed, events, reconnects, sseErr = followThroughProxy(ctx, sseClient, jobID)
				sseDone = time.Since(started)
			})
			wg.Go(func() {
				defer GinkgoRecover()
				syncResult = callSync(ctx, proxy.URL()+"/sync/bundle")
			})
			wg.Wait()

			By("checking the synchronous request: 504 from nginx after its 60 s timeout")
			figure("proxy.sync.status", "%d after %s (backend gave up after %s: nginx closed the request)",
				syncResult.status, syncResult.took.Round(100*time.Millisecond), backend.cancelledAfter().Round(100*time.Millisecond))
			Expect(syncResult.err).NotTo(HaveOccurred())
			Expect(syncResult.status).To(Equal(http.StatusGatewayTimeout))
			Expect(syncResult.took).To(BeNumerically("~", proxyTimeout, 5*time.Second))

			By("checking the polling client: completed, and nginx never failed a poll")
			figure("proxy.poll", "%d polls every %s, answers %v, completed after %s", pollCount, proxyPollInterval,
				polls.codes(), pollDone.Round(100*time.Millisecond))
			Expect(pollErr).NotTo(HaveOccurred())
			Expect(polled.Status).To(Equal(dlclient.StateCompleted))
			Expect(polls.transportErrors()).To(BeZero(), "polls that failed on the network")
			Expect(polls.codes()).To(HaveKey(http.StatusOK))
			for code := range polls.codes() {
				Expect(code).To(BeElementOf(http.StatusOK, http.StatusAccepted), "poll answers %v", polls.codes())
			}

			By("checking the SSE client: one stream, held open by heartbeats until the terminal event")
			figure("proxy.sse", "%d events on %d connection(s), %d reconnects, %d heartbeats, longest silence %s, completed after %s",
				events, streams.streamCount(), reconnects, streams.heartbeatCount(),
				streams.longestSilence().Round(100*time.Millisecond), sseDone.Round(100*time.Millisecond))
			Expect(sseErr).NotTo(HaveOccurred())
			Expect(streamed.Status).To(Equal(dlclient.StateCompleted))
			Expect(reconnects).To(BeZero(), "the stream was cut before the terminal event")
			Expect(streams.streamCount()).To(Equal(1))
			Expect(streams.longestSilence()).To(BeNumerically("<", proxyTimeout), "silence on the stream")
			Expect(streams.heartbeatCount()).To(BeNumerically(">=", int(slowWork/(15*time.Second))-1),
				"the facade's heartbeats every 15 s")
			sse, err := proxy.findAccess("/v1/download/events/")
			Expect(err).NotTo(HaveOccurred())
			figure("proxy.nginx.sse", "nginx logged the stream: %d after %s (upstream %s)",
				sse.Status, sse.Duration.Round(100*time.Millisecond), sse.Upstream)
			Expect(sse.Duration).To(BeNumerically(">=", slowWork), "one request held past proxy_read_timeout")

			By("checking the Download really took at least 90 s")
			dl, err := cluster.GetDownload(ctx, jobID)
			Expect(err).NotTo(HaveOccurred())
			Expect(dl.Status.StartTime).NotTo(BeNil())
			Expect(dl.Status.CompletionTime).NotTo(BeNil())
			processing := dl.Status.CompletionTime.Sub(dl.Status.StartTime.Time)
			figure("proxy.processing", "%s from status.startTime to completionTime (%d bytes)",
				processing, dl.Status.Archive.Size)
			Expect(processing).To(BeNumerically(">=", slowWork))

			By("downloading the archive through its presigned URL and checking every entry")
			Expect(polled.DownloadURL).To(Equal(streamed.DownloadURL), "both clients were handed the same URL")
			got, err := cluster.VerifyArchive(ctx, streamed.DownloadURL, proxyDrillFiles)
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(Equal(cluster.Digest{Size: streamed.Size, SHA256: streamed.SHA256}))
			GinkgoWriter.Printf("nginx error log:\n%s\n", lastLines(proxy.errorLog(), 20))
		}, SpecTimeout(6*time.Minute))
})

// pollThroughProxy polls the job's status every proxyPollInterval until it is terminal.
// pkg/client retries 429 and 503 on its own; the counting transport still sees every answer.
func pollThroughProxy(ctx context.Context, c *dlclient.Client, jobID string) (*dlclient.Status, int, error) {
	for n := 1; ; n++ {
		s, err := c.Status(ctx, jobID)
		if err != nil {
			return nil, n, fmt.Errorf("poll %d of job %s: %w", n, jobID, err)
		}
		if s.Terminal() {
			return s, n, nil
		}
		select {
		case <-ctx.Done():
			return nil, n, ctx.Err()
		case <-time.After(proxyPollInterval):
		}
	}
}

// followThroughProxy follows the job's events until the terminal one. A stream cut early is
// resumed with Last-Event-ID, as a browser's EventSource would, and counted as a reconnect.
func followThroughProxy(ctx context.Context, c *dlclient.Client, jobID string) (last *dlclient.Status, events, reconnects int, err error) {
	lastID := ""
	for {
		err = c.Events(ctx, jobID, lastID, func(s dlclient.Status) error {
			GinkgoWriter.Printf("event %s: %s %d%%\n", s.EventID, s.Status, s.Progress)
			events++
			lastID, last = s.EventID, &s
			return nil
		})
		if err == nil || ctx.Err() != nil || reconnects >= 5 {
			return last, events, reconnects, err
		}
		GinkgoWriter.Printf("event stream cut: %v; reconnecting after event %q\n", err, lastID)
		reconnects++
		time.Sleep(time.Second)
	}
}

// syncOutcome is what the client of the synchronous endpoint saw.
type syncOutcome struct {
	status int
	took   time.Duration
	err    error
}

// callSync GETs the synchronous endpoint through the proxy and times the answer.
func callSync(ctx context.Context, u string) syncOutcome {
	start := time.Now()
	status, err := cluster.GetStatusCode(ctx, &http.Client{Timeout: 2 * slowWork}, u)
	return syncOutcome{status: status, took: time.Since(start), err: err}
}

// slowBackend is a synchronous endpoint: each request answers 200 only after delay, as an
// endpoint that bundles the files before answering would.
type slowBackend struct {
	addr string

	mu        sync.Mutex
	cancelled time.Duration
}

func (b *slowBackend) cancelledAfter() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cancelled
}

// startSlowBackend serves the endpoint on a free 127.0.0.1 port until the spec ends.
func startSlowBackend(delay time.Duration) (*slowBackend, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the synchronous endpoint: %w", err)
	}
	b := &slowBackend{addr: l.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		select {
		case <-time.After(delay):
			_, _ = io.Copy(w, bytes.NewReader([]byte("bundle ready\n")))
		case <-r.Context().Done():
			// The proxy gave up and closed the connection; the work would have been wasted.
			b.mu.Lock()
			b.cancelled = time.Since(start)
			b.mu.Unlock()
		}
	})}
	go func() { _ = srv.Serve(l) }()
	DeferCleanup(func() { _ = srv.Close() })
	return b, nil
}

// trafficStats is what a countingTransport saw: answers by status code, network errors, and on
// event streams the connections, heartbeats and the longest silence.
type trafficStats struct {
	mu         sync.Mutex
	byCode     map[int]int
	errors     int
	streams    int
	heartbeats int
	silence    time.Duration
}

func (s *trafficStats) codes() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.byCode))
	for k, v := range s.byCode {
		out[k] = v
	}
	return out
}

func (s *trafficStats) transportErrors() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errors
}

func (s *trafficStats) streamCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams
}

func (s *trafficStats) heartbeatCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heartbeats
}

func (s *trafficStats) longestSilence() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.silence
}

// countingTransport records every answer in stats before the client sees it, so retries inside
// pkg/client are counted too, and watches event-stream bodies as they arrive.
type countingTransport struct {
	stats *trafficStats
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	t.stats.mu.Lock()
	defer t.stats.mu.Unlock()
	if err != nil {
		t.stats.errors++
		return nil, err
	}
	if t.stats.byCode == nil {
		t.stats.byCode = map[int]int{}
	}
	t.stats.byCode[resp.StatusCode]++
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.stats.streams++
		resp.Body = &streamWatcher{ReadCloser: resp.Body, stats: t.stats, last: time.Now()}
	}
	return resp, nil
}

// heartbeatComment is what the facade sends on an idle stream (internal/facade/events.go).
var heartbeatComment = []byte(": heartbeat\n")

// streamWatcher counts heartbeat comments and the longest gap between two reads of an event
// stream. Bytes are kept across reads so a comment split between two reads still counts.
type streamWatcher struct {
	io.ReadCloser
	stats *trafficStats
	last  time.Time
	tail  []byte
}

func (w *streamWatcher) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	if n > 0 {
		now := time.Now()
		buf := append(w.tail, p[:n]...)
		w.stats.mu.Lock()
		w.stats.heartbeats += bytes.Count(buf, heartbeatComment)
		w.stats.silence = max(w.stats.silence, now.Sub(w.last))
		w.stats.mu.Unlock()
		w.last = now
		// Keep what could be the start of a comment that the next read completes.
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
		w.tail = append(w.tail[:0], buf[max(0, len(buf)-len(heartbeatComment)):]...)
	}
	return n, err
}
