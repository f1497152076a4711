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
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/download-operator/download-operator/internal/facade"
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
