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
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/download-operator/download-operator/internal/jobreport"
)

// progressLog records progress writes; failNext makes the next one fail.
type progressLog struct {
	mu       sync.Mutex
	written  []jobreport.Progress
	failNext bool
}

func (l *progressLog) Progress(_ context.Context, p jobreport.Progress) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failNext {
		l.failNext = false
		return errors.New("apiserver unavailable")
	}
	l.written = append(l.written, p)
	return nil
}

func (l *progressLog) Result(context.Context, jobreport.Result) error   { return nil }
func (l *progressLog) Failure(context.Context, jobreport.Failure) error { return nil }

func (l *progressLog) writes() []jobreport.Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.written)
}

// newTestThrottle is a throttle on a fake clock, writing to a progressLog.
func newTestThrottle(interval time.Duration, log *progressLog) (*progressThrottle, *clocktesting.FakeClock) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return newProgressThrottle(log, clk, interval, slog.New(slog.DiscardHandler)), clk
}

func done(n int64) jobreport.Progress { return jobreport.Progress{BytesDone: n, BytesTotal: 100} }

func TestProgressThrottleWritesAtMostOncePerIntervalAndOnlyChanges(t *testing.T) {
	const interval = 3 * time.Second
	ctx := context.Background()
	log := &progressLog{}
	throttle, clk := newTestThrottle(interval, log)

	throttle.offer(ctx, done(0)) // the first value goes out at once
	throttle.offer(ctx, done(10))
	clk.Step(interval / 2)
	throttle.offer(ctx, done(20))
	if got := log.writes(); !slices.Equal(got, []jobreport.Progress{done(0)}) {
		t.Fatalf("writes within the first interval = %+v, want only the first", got)
	}

	clk.Step(interval / 2)
	throttle.offer(ctx, done(30))
	throttle.offer(ctx, done(40))
	if got := log.writes(); !slices.Equal(got, []jobreport.Progress{done(0), done(30)}) {
		t.Fatalf("writes after one interval = %+v, want one more", got)
	}

	clk.Step(interval)
	throttle.offer(ctx, done(30))
	if got := log.writes(); len(got) != 2 {
		t.Fatalf("an unchanged value was written again: %+v", got)
	}

}

func TestProgressThrottleTakesATickThatFollowsALateOne(t *testing.T) {
	const interval = 3 * time.Second
	ctx := context.Background()
	log := &progressLog{}
	throttle, clk := newTestThrottle(interval, log)

	throttle.offer(ctx, done(0))
	// The next tick is due at 3 s but runs at 3.5 s on a busy node; the one after at 6 s.
	clk.Step(interval + 500*time.Millisecond)
	throttle.offer(ctx, done(10))
	clk.Step(interval - 500*time.Millisecond)
	throttle.offer(ctx, done(20))
	if got := log.writes(); !slices.Equal(got, []jobreport.Progress{done(0), done(10), done(20)}) {
		t.Fatalf("writes = %+v, want one per tick although one tick ran late", got)
	}
}

func TestProgressThrottleRetriesAFailedWriteNextInterval(t *testing.T) {
	const interval = time.Second
	ctx := context.Background()
	log := &progressLog{failNext: true}
	throttle, clk := newTestThrottle(interval, log)

	throttle.offer(ctx, done(5)) // fails
	throttle.offer(ctx, done(5)) // too soon after the failed attempt
	clk.Step(interval)
	throttle.offer(ctx, done(5)) // same value, but it never reached the Job
	if got := log.writes(); !slices.Equal(got, []jobreport.Progress{done(5)}) {
		t.Fatalf("writes = %+v, want the failed value once, one interval later", got)
	}
}

func TestProgressFollowSamplesOnEveryTick(t *testing.T) {
	const interval = 3 * time.Second
	ctx := context.Background()
	log := &progressLog{}
	throttle, clk := newTestThrottle(interval, log)
	var counter byteCounter

	stop := throttle.follow(ctx, clk, &counter, 100)
	_, _ = counter.Write(make([]byte, 42))
	if got := log.writes(); len(got) != 0 {
		t.Fatalf("writes at start = %+v, want none before the first tick: a short run reports only its result", got)
	}
	clk.Step(interval)
	waitFor(t, func() bool { return len(log.writes()) == 1 })
	_, _ = counter.Write(make([]byte, 8))
	clk.Step(interval)
	waitFor(t, func() bool { return len(log.writes()) == 2 })
	stop()
	if got := log.writes(); !slices.Equal(got, []jobreport.Progress{done(42), done(50)}) {
		t.Fatalf("writes = %+v, want the count sampled at each tick", got)
	}
	// stop waited for the loop to exit, so nothing can write after it, whatever the clock does.
	_, _ = counter.Write(make([]byte, 8))
	clk.Step(interval)
	if got := log.writes(); len(got) != 2 {
		t.Fatalf("writes after stop = %+v", got)
	}
}

// waitFor polls cond, for effects of the progress goroutine.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
