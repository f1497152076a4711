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
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// initiateSegments is how many segments of each side P1 alternates.
const initiateSegments = 4

// measureInitiate is P1: POST /v1/download/initiate on a facade process, paced by vegeta, against
// a bare controller-runtime Create of the same object by the same user at the same pace. The
// segments alternate (bare, facade, bare, facade, ...) so that drift in the apiserver's state and
// bursts of other load on the machine hit both alike; one warm-up second of each comes first.
func (env *environment) measureInitiate(ctx context.Context, opts options, sample map[string]float64) error {
	scheme := runtime.NewScheme()
	if err := downloadv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg := rest.CopyConfig(env.user)
	// The facade's own client settings (internal/facade New).
	cfg.QPS, cfg.Burst = 50, 100
	bare, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	var clients atomic.Uint64
	nextClient := func() string {
		i := clients.Add(1)
		return fmt.Sprintf("10.2.%d.%d", (i/250)%250, i%250)
	}
	facadeRun := func(d time.Duration, m *vegeta.Metrics) error {
		// Each initiate comes from another client (X-Forwarded-For, --trusted-proxies), as from a
		// fleet of browsers: one client's initiates are serialised by the facade.
		targeter := func(t *vegeta.Target) error {
			t.Method, t.URL = "POST", env.initiator.url+"/v1/download/initiate"
			t.Body = []byte(`{"file_ids":[70000,70007]}`)
			t.Header = http.Header{"Content-Type": {"application/json"}, "X-Forwarded-For": {nextClient()}}
			return nil
		}
		attacker := vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true))
		stop := context.AfterFunc(ctx, func() { attacker.Stop() })
		defer stop()
		for res := range attacker.Attack(targeter, vegeta.ConstantPacer{Freq: int(opts.initiateRate), Per: time.Second}, d, "initiate") {
			res.Body = nil
			m.Add(res)
		}
		return ctx.Err()
	}
	bareRun := func(d time.Duration, m *vegeta.Metrics) error {
		pacer := vegeta.ConstantPacer{Freq: int(opts.initiateRate), Per: time.Second}
		var mu sync.Mutex
		var wg sync.WaitGroup
		began := time.Now()
		for count := uint64(0); ctx.Err() == nil; count++ {
			elapsed := time.Since(began)
			if elapsed > d {
				break
			}
			wait, stop := pacer.Pace(elapsed, count)
			if stop {
				break
			}
			time.Sleep(wait)
			wg.Go(func() {
				obj := sampleDownload(initiateNamespace, nextClient())
				start := time.Now()
				err := bare.Create(ctx, obj)
				res := &vegeta.Result{Timestamp: start, Latency: time.Since(start), Code: http.StatusCreated}
				if err != nil {
					res.Code, res.Error = 0, err.Error()
				}
				mu.Lock()
				m.Add(res)
				mu.Unlock()
			})
		}
		wg.Wait()
		return ctx.Err()
	}

	var warm vegeta.Metrics
	if err := bareRun(time.Second, &warm); err != nil {
		return err
	}
	if err := facadeRun(time.Second, &warm); err != nil {
		return err
	}
	var facadeM, bareM vegeta.Metrics
	for segment := range 2 * initiateSegments {
		var err error
		if segment%2 == 0 {
			err = bareRun(opts.initiateStep, &bareM)
		} else {
			err = facadeRun(opts.initiateStep, &facadeM)
		}
		if err != nil {
			return err
		}
	}
	facadeM.Close()
	bareM.Close()
	for name, m := range map[string]*vegeta.Metrics{"facade": &facadeM, "bare": &bareM} {
		key := "P1." + name + "."
		sample[key+"p50_ms"] = ms(m.Latencies.P50)
		sample[key+"p90_ms"] = ms(m.Latencies.P90)
		sample[key+"p99_ms"] = ms(m.Latencies.P99)
		sample[key+"max_ms"] = ms(m.Latencies.Max)
		sample[key+"requests"] = float64(m.Requests)
		sample[key+"success"] = m.Success
		logf("P1 %-6s %d at %.0f/s: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.1f ms, success %.4f",
			name, m.Requests, opts.initiateRate, ms(m.Latencies.P50), ms(m.Latencies.P90), ms(m.Latencies.P99),
			ms(m.Latencies.Max), m.Success)
		if m.Success < 1 {
			logf("P1 %s errors: %v", name, m.Errors)
		}
	}
	return nil
}
