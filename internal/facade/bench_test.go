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

package facade_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/test/stack"
)

// BenchmarkStatusPoll measures status polls against the real facade handler over loopback HTTP
// with keep-alive connections, as a fleet of browsers behind a proxy would poll it: first at
// increasing parallelism as fast as it answers, then paced at 2,000 polls/s, the target load
// (p99 should stay within 5 ms there). Each reports p50 and p99 latency and polls per second.
//
//	go test -run xxx -bench StatusPoll ./internal/facade/
func BenchmarkStatusPoll(b *testing.B) {
	f := newFacade(b, func(cfg *facade.Config) { cfg.RateLimit, cfg.RateBurst = 1e9, 1e9 })
	c := newCaller(b, f)
	url := f.URL + "/v1/download/status/" + c.initiate([]int64{81000, 81001}).JobID
	transport := &http.Transport{MaxIdleConnsPerHost: 512, MaxIdleConns: 512}
	defer transport.CloseIdleConnections()
	httpClient := &http.Client{Transport: transport}

	run := func(b *testing.B, parallelism int, pace *rate.Limiter) {
		var (
			mu        sync.Mutex
			latencies []time.Duration
		)
		b.SetParallelism(parallelism)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			own := make([]time.Duration, 0, 1024)
			for pb.Next() {
				if pace != nil {
					if err := pace.Wait(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
				sent := time.Now()
				resp, err := httpClient.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("poll answered %d", resp.StatusCode)
					return
				}
				own = append(own, time.Since(sent))
			}
			mu.Lock()
			latencies = append(latencies, own...)
			mu.Unlock()
		})
		elapsed := time.Since(start)
		b.StopTimer()
		if len(latencies) == 0 {
			return
		}
		slices.Sort(latencies)
		quantile := func(q float64) float64 {
			return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(quantile(0.50), "p50-ms")
		b.ReportMetric(quantile(0.99), "p99-ms")
		b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "polls/s")
	}

	// RunParallel starts parallelism × GOMAXPROCS goroutines.
	for _, parallelism := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("parallel=%d", parallelism), func(b *testing.B) { run(b, parallelism, nil) })
	}
	b.Run("paced=2000/s", func(b *testing.B) { run(b, 16, rate.NewLimiter(2000, 1)) })
}

// BenchmarkStatusHandler measures one status poll inside the process, without the network:
// the facade's whole handler chain (request id, security and CORS headers, metrics, rate limit,
// routing, the stored status document and its answer) against a bare handler that writes the
// same bytes. Their difference is what the facade adds to each poll on top of net/http's own work;
// with -cpuprofile it shows where that goes.
//
//	go test -run xxx -bench StatusHandler -benchmem -cpuprofile cpu.out ./internal/facade/
//	go tool pprof -top -cum facade.test cpu.out
func BenchmarkStatusHandler(b *testing.B) {
	f := newFacade(b, func(cfg *facade.Config) { cfg.RateLimit, cfg.RateBurst = 1e9, 1e9 })
	c := newCaller(b, f)
	path := "/v1/download/status/" + c.initiate([]int64{81000, 81001}).JobID
	probe := httptest.NewRecorder()
	f.Handler().ServeHTTP(probe, httptest.NewRequest(http.MethodGet, path, nil))
	if probe.Code != http.StatusOK {
		b.Fatalf("status answered %d: %s", probe.Code, probe.Body)
	}
	body := probe.Body.Bytes()
	bare := stack.BareHandler(body)
	for _, tc := range []struct {
		name    string
		handler http.Handler
	}{{"facade", f.Handler()}, {"bare", bare}} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.RemoteAddr = "192.0.2.10:40000"
			var w sinkWriter
			b.ReportAllocs()
			for b.Loop() {
				// net/http gives every response a fresh header map; so does this.
				w.header, w.code, w.written = http.Header{}, 0, 0
				tc.handler.ServeHTTP(&w, req)
			}
			if w.code != http.StatusOK || w.written != len(body) {
				b.Fatalf("%s answered %d with %d bytes", tc.name, w.code, w.written)
			}
		})
	}
}

// sinkWriter is a ResponseWriter that keeps the status and counts the body.
type sinkWriter struct {
	header  http.Header
	code    int
	written int
}

func (w *sinkWriter) Header() http.Header { return w.header }
func (w *sinkWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *sinkWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.written += len(p)
	return len(p), nil
}

// BenchmarkStatusLookup prices the ways a poll can find its answer, on a cache built as the
// facade builds its own (Downloads of one namespace, managed fields stripped) over the stack's
// apiserver. Each way ends with the bytes of the status document:
//
//   - cache-get: what the facade did per poll before it kept rendered documents, kept as the
//     reference: controller-runtime's cache Get without deep copy. With DefaultNamespaces the
//     cache is a multi-namespace cache, whose Get first asks the RESTMapper whether Downloads
//     are namespaced; then the status document is built and encoded to JSON;
//
//   - handler-map: the Download from a map that an informer event handler keeps, then the
//     same document and encoding;
//
//   - prerendered: the document's bytes from a map that the event handler keeps, encoded once
//     per change of the Download instead of once per poll, which is what the facade does now
//     (StatusHandler/facade measures it inside the real handler chain).
//
//     go test -run xxx -bench StatusLookup -benchmem ./internal/facade/
func BenchmarkStatusLookup(b *testing.B) {
	s := sharedStack(b)
	ctx := testContext(b)
	scheme := runtime.NewScheme()
	if err := downloadv1alpha1.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(s.Env.Config, cache.Options{
		Scheme:                      scheme,
		DefaultNamespaces:           map[string]cache.Config{stack.Namespace: {}},
		ReaderFailOnMissingInformer: true,
		DefaultTransform:            cache.TransformStripManagedFields(),
	})
	if err != nil {
		b.Fatal(err)
	}
	informer, err := c.GetInformer(ctx, &downloadv1alpha1.Download{})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.RWMutex
	objects := map[string]*downloadv1alpha1.Download{}
	documents := map[string][]byte{}
	keep := func(obj any) {
		d, ok := obj.(*downloadv1alpha1.Download)
		if !ok {
			return
		}
		raw, err := json.Marshal(documentOf(d))
		if err != nil {
			b.Error(err)
			return
		}
		mu.Lock()
		objects[d.Name], documents[d.Name] = d, append(raw, '\n')
		mu.Unlock()
	}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: keep, UpdateFunc: func(_, obj any) { keep(obj) },
	}); err != nil {
		b.Fatal(err)
	}
	cacheCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = c.Start(cacheCtx) }()
	if !c.WaitForCacheSync(ctx) {
		b.Fatal("cache did not sync")
	}
	f := sharedStack(b).Facade
	jobID := newCaller(b, f).initiate([]int64{81000, 81001}).JobID
	key := ctrlclient.ObjectKey{Namespace: stack.Namespace, Name: jobID}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.RLock()
		_, ok := documents[jobID]
		mu.RUnlock()
		if ok && c.Get(ctx, key, &downloadv1alpha1.Download{}) == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the job never reached the benchmark's cache")
		}
	}

	// Each way looks the job up and yields its document's bytes, as a status handler could.
	ways := []struct {
		name     string
		document func(b *testing.B) []byte
	}{
		{"cache-get", func(b *testing.B) []byte {
			var d downloadv1alpha1.Download
			if err := c.Get(ctx, key, &d, ctrlclient.UnsafeDisableDeepCopy); err != nil {
				b.Fatal(err)
			}
			raw, _ := json.Marshal(documentOf(&d))
			return raw
		}},
		{"handler-map", func(*testing.B) []byte {
			mu.RLock()
			d := objects[jobID]
			mu.RUnlock()
			raw, _ := json.Marshal(documentOf(d))
			return raw
		}},
		{"prerendered", func(*testing.B) []byte {
			mu.RLock()
			raw := documents[jobID]
			mu.RUnlock()
			return raw
		}},
	}
	var sink int
	for _, way := range ways {
		b.Run(way.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink += len(way.document(b))
			}
		})
	}
	if sink == 0 {
		b.Fatal("no documents")
	}
}

// documentOf is the status document of a Download that has not finished, as the facade's
// statusdoc.Of builds it (pending or processing), for pricing its encoding.
func documentOf(d *downloadv1alpha1.Download) *facade.Status {
	st := &d.Status
	s := &facade.Status{JobID: d.Name, Status: facade.StatusPending}
	if st.Phase == downloadv1alpha1.PhaseProcessing {
		s.Status = facade.StatusProcessing
		s.Progress, s.BytesDone, s.BytesTotal, s.EtaSeconds = &st.Progress, &st.BytesDone, &st.BytesTotal, st.EtaSeconds
	}
	return s
}
