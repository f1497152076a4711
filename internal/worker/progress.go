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

package worker

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/download-operator/download-operator/internal/jobreport"
)

// byteCounter is a Writer that only counts, for io.TeeReader and io.MultiWriter. It is safe for
// concurrent use because the progress loop reads it while the archive writer counts.
type byteCounter struct{ n atomic.Int64 }

func (c *byteCounter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// Load is the number of bytes counted so far.
func (c *byteCounter) Load() int64 { return c.n.Load() }

// progressThrottle keeps progress writes cheap for the apiserver: at most one per interval, and
// none that would repeat the last value written. Each write is a patch of the Job, which every
// informer on Jobs then receives.
type progressThrottle struct {
	reporter Reporter
	clock    clock.PassiveClock
	interval time.Duration
	log      *slog.Logger

	mu sync.Mutex
	// written tells whether last holds a value the reporter accepted.
	written bool
	last    jobreport.Progress
	// lastAttempt is when a write was last tried, successful or not.
	lastAttempt time.Time
}

func newProgressThrottle(reporter Reporter, clk clock.PassiveClock, interval time.Duration, log *slog.Logger) *progressThrottle {
	return &progressThrottle{reporter: reporter, clock: clk, interval: interval, log: log}
}

// offer writes p unless it equals the last write or the last attempt is younger than interval
// (less a quarter of it, for ticks that follow a late one).
// The first offer is always written.
func (t *progressThrottle) offer(ctx context.Context, p jobreport.Progress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.written && p == t.last {
		return
	}
	now := t.clock.Now()
	// The ticker fires every interval, but a busy node may run the previous tick's write late,
	// which makes the next tick look early. Without the slack that tick would be dropped, and
	// reports would come every two intervals exactly when the worker is slow.
	slack := t.interval / 4
	if !t.lastAttempt.IsZero() && now.Sub(t.lastAttempt) < t.interval-slack {
		return
	}
	// A failed attempt still counts against the interval, so a struggling apiserver is not
	// hammered; the next tick tries again.
	t.lastAttempt = now
	if err := t.reporter.Progress(ctx, p); err != nil {
		t.log.WarnContext(ctx, "could not report progress", "bytesDone", p.BytesDone, "bytesTotal", p.BytesTotal, "error", err)
		return
	}
	t.written, t.last = true, p
}

// follow offers the count of done on every tick of clk, until the returned stop is called. Not
// at once: a worker that finishes within one interval reports only its result, which carries
// the total, and so costs one write instead of three. Progress is sampled by a ticker rather than
// pushed from the read path so that a
// slow apiserver never stalls the data stream.
func (t *progressThrottle) follow(ctx context.Context, clk clock.WithTicker, done *byteCounter, total int64) (stop func()) {
	sample := func() jobreport.Progress { return jobreport.Progress{BytesDone: done.Load(), BytesTotal: total} }
	ticker := clk.NewTicker(t.interval)
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-ticker.C():
				t.offer(ctx, sample())
			}
		}
	}()
	return func() {
		ticker.Stop()
		close(quit)
		<-finished
	}
}
