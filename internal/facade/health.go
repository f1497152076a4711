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

package facade

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// probeTimeout bounds one health probe; a hung dependency must not hang /health.
const probeTimeout = 3 * time.Second

// HealthResponse is the answer of GET /health, as the service the facade replaces gave it.
type HealthResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// cachedProbe runs a check at most once per ttl, however many callers ask, and shares one
// run between concurrent callers.
type cachedProbe struct {
	ttl   time.Duration
	check func(context.Context) error
	group singleflight.Group

	mu  sync.Mutex
	at  time.Time
	err error
}

func newCachedProbe(ttl time.Duration, check func(context.Context) error) *cachedProbe {
	return &cachedProbe{ttl: ttl, check: check}
}

func (p *cachedProbe) result(ctx context.Context) error {
	p.mu.Lock()
	if !p.at.IsZero() && time.Since(p.at) < p.ttl {
		err := p.err
		p.mu.Unlock()
		return err
	}
	p.mu.Unlock()
	ch := p.group.DoChan("probe", func() (any, error) {
		// Detached from the first caller, whose cancellation must not fail everyone else's answer.
		probeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		defer cancel()
		err := p.check(probeCtx)
		p.mu.Lock()
		p.at, p.err = time.Now(), err
		p.mu.Unlock()
		return nil, err
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// health reports storage (through the controller) and Kubernetes (cache synced and the
// apiserver answering), for clients of the service the facade replaces.
func (f *Facade) health(w http.ResponseWriter, r *http.Request) {
	var storageErr, apiErr error
	var wg sync.WaitGroup
	wg.Go(func() { storageErr = f.storageProbe.result(r.Context()) })
	wg.Go(func() { apiErr = f.apiProbe.result(r.Context()) })
	wg.Wait()
	resp := HealthResponse{Status: "healthy", Checks: map[string]string{"storage": "ok", "kubernetes": "ok"}}
	if storageErr != nil {
		resp.Checks["storage"] = "error"
		f.log.Warn("storage health check failed", "error", storageErr)
	}
	if apiErr != nil || !f.synced.Load() {
		resp.Checks["kubernetes"] = "error"
		f.log.Warn("kubernetes health check failed", "error", apiErr, "cacheSynced", f.synced.Load())
	}
	code := http.StatusOK
	if storageErr != nil || apiErr != nil || !f.synced.Load() {
		resp.Status, code = "unhealthy", http.StatusServiceUnavailable
	}
	writeJSON(w, code, resp)
}

// healthz is liveness: the process answers. It depends on nothing, so a dependency outage
// never gets replicas restarted.
func (f *Facade) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is readiness: only a synced cache can answer polls.
func (f *Facade) readyz(w http.ResponseWriter, _ *http.Request) {
	if !f.synced.Load() {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the informer cache has not synced yet")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
