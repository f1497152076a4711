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
	"github.com/download-operator/download-operator/test/poll"
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

// newTestThrottle is a throttle on a fake clock, writing to the progressLog it returns.
func newTestThrottle(interval time.Duration) (*progressThrottle, *clocktesting.FakeClock, *progressLog) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	log := &progressLog{}
	return newProgressThrottle(log, clk, interval, slog.New(slog.DiscardHandler)), clk, log
}

// expectWrites fails the test unless the log holds exactly want, in order.
func expectWrites(t *testing.T, log *progressLog, when string, want ...jobreport.Progress) {
	t.Helper()
	if got := log.writes(); !slices.Equal(got, want) {
		t.Fatalf("writes %s = %+v, want %+v", when, got, want)
	}
}

func done(n int64) jobreport.Progress { return jobreport.Progress{BytesDone: n, BytesTotal: 100} }

func TestProgressThrottleWritesAtMostOncePerIntervalAndOnlyChanges(t *testing.T) {
	const interval = 3 * time.Second
	ctx := context.Background()
	throttle, clk, log := newTestThrottle(interval)

	throttle.offer(ctx, done(0)) // the first value goes out at once
	throttle.offer(ctx, done(10))
	clk.Step(interval / 2)
	throttle.offer(ctx, done(20))
	expectWrites(t, log, "within the first interval (only the first)", done(0))

	clk.Step(interval / 2)
	throttle.offer(ctx, done(30))
	throttle.offer(ctx, done(40))
	expectWrites(t, log, "after one interval (one more)", done(0), done(30))

	clk.Step(interval)
	throttle.offer(ctx, done(30))
	expectWrites(t, log, "after an unchanged value (none more)", done(0), done(30))
}

func TestProgressThrottleTakesATickThatFollowsALateOne(t *testing.T) {
	const interval = 3 * time.Second
	ctx := context.Background()
	throttle, clk, log := newTestThrottle(interval)

	throttle.offer(ctx, done(0))
	// The next tick is due at 3 s but runs at 3.5 s on a busy node; the one after at 6 s.
	clk.Step(interval + 500*time.Millisecond)
	throttle.offer(ctx, done(10))
	clk.Step(interval - 500*time.Millisecond)
	throttle.offer(ctx, done(20))
	expectWrites(t, log, "(one per tick although one tick ran late)", done(0), done(10), done(20))
}

func TestProgressThrottleRetriesAFailedWriteNextInterval(t *testing.T) {
	const interval = time.Second
	ctx := context.Background()
	throttle, clk, log := newTestThrottle(interval)
	log.failNext = true

	throttle.offer(ctx, done(5)) // fails
	throttle.offer(ctx, done(5)) // too soon after the failed attempt
	clk.Step(interval)
	throttle.offer(ctx, done(5)) // same value, but it never reached the Job
	expectWrites(t, log, "(the failed value once, one interval later)", done(5))
}

func TestProgressFollowSamplesOnEveryTick(t *testing.T) {
	const interval = 3 * time.Second
	ctx := context.Background()
	throttle, clk, log := newTestThrottle(interval)
	var counter byteCounter

	stop := throttle.follow(ctx, clk, &counter, 100)
	_, _ = counter.Write(make([]byte, 42))
	expectWrites(t, log, "at start (none before the first tick: a short run reports only its result)")
	clk.Step(interval)
	poll.Until(t, 5*time.Second, "the first tick's write", func() bool { return len(log.writes()) == 1 })
	_, _ = counter.Write(make([]byte, 8))
	clk.Step(interval)
	poll.Until(t, 5*time.Second, "the second tick's write", func() bool { return len(log.writes()) == 2 })
	stop()
	expectWrites(t, log, "(the count sampled at each tick)", done(42), done(50))
	// stop waited for the loop to exit, so nothing can write after it, whatever the clock does.
	_, _ = counter.Write(make([]byte, 8))
	clk.Step(interval)
	expectWrites(t, log, "after stop (none more)", done(42), done(50))
}
