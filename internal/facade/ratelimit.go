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
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateLimiter keeps one token bucket per client. A bucket left alone long enough to be full
// again is indistinguishable from a new one, so such buckets are evicted; memory is bounded by
// the number of clients active within that refill time.
type rateLimiter struct {
	limit rate.Limit
	burst int
	// burstHeader is the RateLimit-Limit header value, the same in every answer.
	burstHeader []string
	// idle is how long a bucket needs to refill completely.
	idle time.Duration

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	limiter  *rate.Limiter
	lastSeen time.Time
}

func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	idle := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &rateLimiter{
		limit: rate.Limit(perSecond), burst: burst, burstHeader: []string{strconv.Itoa(burst)},
		idle: max(idle, time.Second), buckets: map[string]*bucket{}, lastSweep: time.Now(),
	}
}

// take spends a token (or, with spend false, only looks) and reports whether the request may
// proceed, the tokens left and how long until one more token is available.
func (l *rateLimiter) take(client string, spend bool, now time.Time) (ok bool, remaining float64, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > l.idle {
		for id, b := range l.buckets {
			if now.Sub(b.lastSeen) > l.idle {
				delete(l.buckets, id)
			}
		}
		l.lastSweep = now
	}
	b := l.buckets[client]
	if b == nil {
		if !spend {
			return true, float64(l.burst), 0
		}
		b = &bucket{limiter: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[client] = b
	}
	b.lastSeen = now
	ok = !spend || b.limiter.AllowN(now, 1)
	remaining = b.limiter.TokensAt(now)
	if remaining < 1 {
		wait = time.Duration((1 - remaining) / float64(l.limit) * float64(time.Second))
	}
	return ok, remaining, wait
}

func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// rateLimit spends one token per request and sets the RateLimit-* headers on every answer.
// Probes and metrics have a listener of their own (ProbeHandler), so kubelets and scrapers are
// never throttled with clients.
func (f *Facade) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoFrom(r.Context())
		ok, remaining, wait := f.limiter.take(info.client, true, time.Now())
		h := w.Header()
		refill := (float64(f.limiter.burst) - remaining) / float64(f.limiter.limit)
		// One array for both varying values, each slice capped (see the header values in respond.go).
		values := [...]string{
			strconv.Itoa(int(math.Max(0, math.Floor(remaining)))),
			strconv.Itoa(int(math.Ceil(math.Max(0, refill)))),
		}
		h[headerRateLimitLimit] = f.limiter.burstHeader
		h[headerRateLimitRemains] = values[0:1:1]
		h[headerRateLimitReset] = values[1:2:2]
		if !ok {
			retryAfter(w, wait)
			writeError(w, http.StatusTooManyRequests, CodeRateLimited, "too many requests; retry after the Retry-After header's seconds")
			return
		}
		next.ServeHTTP(w, r)
	})
}
