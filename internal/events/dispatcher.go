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

package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// Defaults of Options.
const (
	DefaultQueueSize    = 1000
	DefaultRetryFor     = time.Hour
	DefaultBaseDelay    = time.Second
	DefaultMaxDelay     = 5 * time.Minute
	DefaultTimeout      = 10 * time.Second
	DefaultReplayWindow = 15 * time.Minute
	DefaultWorkers      = 2
)

// Options tune delivery; zero values take the defaults above.
type Options struct {
	// PublicBaseURL makes the archive link absolute (see ParseBaseURL).
	PublicBaseURL string
	// Reader lists Downloads for the replay at start (the manager's cache); nil replays nothing.
	Reader client.Reader
	// Clock stamps started events and places the replay window.
	Clock clock.PassiveClock
	// QueueSize bounds the events a sink holds, queued or waiting for a retry.
	QueueSize int
	// RetryFor bounds how long one event is retried, counted from when it was queued.
	RetryFor time.Duration
	// BaseDelay is the wait before the first retry, doubled at each failure up to MaxDelay.
	BaseDelay, MaxDelay time.Duration
	// Timeout bounds each delivery attempt.
	Timeout time.Duration
	// ReplayWindow: at start, the events of Downloads that finished within it (or, still in
	// flight, were created within it) are sent again.
	ReplayWindow time.Duration
	// Workers deliver each sink's events, so that one slow event does not hold up the rest.
	Workers int
	// Transport sends the requests; nil means a clone of http.DefaultTransport.
	Transport http.RoundTripper
}

func (o Options) withDefaults() Options {
	o.QueueSize = positiveOr(o.QueueSize, DefaultQueueSize)
	o.RetryFor = positiveOr(o.RetryFor, DefaultRetryFor)
	o.BaseDelay = positiveOr(o.BaseDelay, DefaultBaseDelay)
	o.MaxDelay = positiveOr(o.MaxDelay, DefaultMaxDelay)
	o.Timeout = positiveOr(o.Timeout, DefaultTimeout)
	o.ReplayWindow = positiveOr(o.ReplayWindow, DefaultReplayWindow)
	o.Workers = positiveOr(o.Workers, DefaultWorkers)
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return o
}

// positiveOr is v when it is positive, else def: a negative setting takes the default too.
func positiveOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

var log = logf.Log.WithName("events")

// Dispatcher sends the events of Downloads to the sinks that want them. Emit only queues, so
// it never blocks a reconcile; Start (a manager Runnable, on the leader only, like reconciles)
// delivers. The queues live in memory: events still queued when the process stops are lost,
// and the replay at the next start sends the recent ones again.
type Dispatcher struct {
	opts   Options
	client *http.Client
	queues []*sinkQueue
}

// sinkQueue holds one sink's events. held counts those queued or waiting for a retry, which
// the workqueue alone cannot tell, so that QueueSize bounds both.
type sinkQueue struct {
	sink    Sink
	limiter workqueue.TypedRateLimiter[*delivery]
	items   workqueue.TypedDelayingInterface[*delivery]
	held    atomic.Int64
	// unlogged counts the drops since the last log line about them, and lastDropLog is when
	// that was (unix nanoseconds): a full queue drops events by the thousand, but logs once per
	// dropLogInterval.
	unlogged    atomic.Int64
	lastDropLog atomic.Int64
}

// dropLogInterval is the shortest time between two log lines about dropped events of a sink.
const dropLogInterval = 10 * time.Second

// delivery is one event for one sink. Items are pointers, so two deliveries of the same event
// (a replay meeting a retry) stay apart, and each is delivered.
type delivery struct {
	eventType, id string
	namespace     string
	jobID         string
	body          []byte
	queued        time.Time
}

// New builds a Dispatcher for validated sinks (Load).
func New(sinks []Sink, opts Options) *Dispatcher {
	opts = opts.withDefaults()
	d := &Dispatcher{
		opts: opts,
		client: &http.Client{
			Transport: opts.Transport,
			// A sink that redirects is misconfigured; following it would send the signed event
			// to an address the operator never chose.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, sink := range sinks {
		exportAtZero(sink.Name)
		d.queues = append(d.queues, &sinkQueue{
			sink:    sink,
			limiter: workqueue.NewTypedItemExponentialFailureRateLimiter[*delivery](opts.BaseDelay, opts.MaxDelay),
			// The name exports the queue's depth, adds and latency as workqueue_* metrics.
			items: workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[*delivery]{
				Name: "events-" + sink.Name,
			}),
		})
	}
	return d
}

// Emit queues the event eventType of download for every sink that wants its namespace. It
// never blocks: when a sink's queue is full the event is dropped for that sink, counted and
// logged.
func (d *Dispatcher) Emit(download *downloadv1alpha1.Download, eventType string) {
	var wanting []*sinkQueue
	for _, q := range d.queues {
		if q.sink.Wants(download.Namespace) {
			wanting = append(wanting, q)
		}
	}
	if len(wanting) == 0 {
		return
	}
	body, err := encode(download, eventType, d.opts.Clock.Now(), d.opts.PublicBaseURL)
	if err != nil {
		for _, q := range wanting {
			failed.WithLabelValues(q.sink.Name, eventType).Inc()
		}
		log.Error(err, "cannot build an event", "type", eventType, "download", download.Namespace+"/"+download.Name)
		return
	}
	for _, q := range wanting {
		q.offer(&delivery{
			eventType: eventType, id: ID(download.UID, eventType), namespace: download.Namespace, jobID: download.Name,
			body: body, queued: time.Now(),
		}, d.opts.QueueSize)
	}
}

// errQueueFull is what the log says when an event is dropped.
var errQueueFull = errors.New("the sink's event queue is full")

func (q *sinkQueue) offer(item *delivery, size int) {
	if q.held.Add(1) > int64(size) {
		q.held.Add(-1)
		dropped.WithLabelValues(q.sink.Name, item.eventType).Inc()
		q.logDrop(item, size)
		return
	}
	q.items.Add(item)
}

// logDrop logs a dropped event, or counts it for the next log line when one was written less
// than dropLogInterval ago.
func (q *sinkQueue) logDrop(item *delivery, size int) {
	n := q.unlogged.Add(1)
	now, last := time.Now().UnixNano(), q.lastDropLog.Load()
	if now-last < int64(dropLogInterval) || !q.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	q.unlogged.Add(-n)
	log.Error(errQueueFull, "dropping events", "sink", q.sink.Name, "dropped", n, "queueSize", size,
		"type", item.eventType, "id", item.id, "download", item.namespace+"/"+item.jobID)
}

// NeedLeaderElection keeps delivery and the replay on the leader, where reconciles emit.
func (d *Dispatcher) NeedLeaderElection() bool { return true }

// Start delivers until ctx ends. It first sends again the events of recent transitions, which
// the previous leader may not have delivered before it stopped.
func (d *Dispatcher) Start(ctx context.Context) error {
	names := make([]string, len(d.queues))
	for i, q := range d.queues {
		names[i] = q.sink.Name
	}
	log.Info("sending Download events", "sinks", names)
	var workers sync.WaitGroup
	for _, q := range d.queues {
		for range d.opts.Workers {
			workers.Go(func() { d.work(ctx, q) })
		}
	}
	d.replay(ctx)
	<-ctx.Done()
	for _, q := range d.queues {
		q.items.ShutDown()
	}
	workers.Wait()
	return nil
}

func (d *Dispatcher) work(ctx context.Context, q *sinkQueue) {
	for {
		item, shutdown := q.items.Get()
		if shutdown {
			return
		}
		d.attempt(ctx, q, item)
		q.items.Done(item)
	}
}

// attempt delivers item once, and either finishes it or queues its retry.
func (d *Dispatcher) attempt(ctx context.Context, q *sinkQueue, item *delivery) {
	err := d.send(ctx, q.sink, item)
	if ctx.Err() != nil {
		// Stopping: the in-memory queue goes with the process, and the next leader's replay
		// sends recent events again.
		return
	}
	logValues := []any{"sink", q.sink.Name, "type", item.eventType, "id", item.id,
		"download", item.namespace + "/" + item.jobID, "attempts", q.limiter.NumRequeues(item) + 1}
	if err == nil {
		delivered.WithLabelValues(q.sink.Name, item.eventType).Inc()
		log.V(1).Info("event delivered", logValues...)
		q.finish(item)
		return
	}
	delay := q.limiter.When(item)
	var permanent *permanentError
	if errors.As(err, &permanent) || time.Since(item.queued)+delay > d.opts.RetryFor {
		failed.WithLabelValues(q.sink.Name, item.eventType).Inc()
		log.Error(err, "giving up on an event", logValues...)
		q.finish(item)
		return
	}
	log.V(1).Info("event delivery failed; retrying", append(logValues, "in", delay, "error", err.Error())...)
	q.items.AddAfter(item, delay)
}

func (q *sinkQueue) finish(item *delivery) {
	q.limiter.Forget(item)
	q.held.Add(-1)
}

// permanentError is a refusal that retrying cannot change.
type permanentError struct{ error }

func (e *permanentError) Unwrap() error { return e.error }

// send POSTs the event, freshly signed, in the structured content mode.
func (d *Dispatcher) send(ctx context.Context, sink Sink, item *delivery) error {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sink.URL, bytes.NewReader(item.body))
	if err != nil {
		return &permanentError{fmt.Errorf("building the request: %w", err)}
	}
	req.Header.Set("Content-Type", event.ApplicationCloudEventsJSON+"; charset=utf-8")
	req.Header.Set("User-Agent", "download-operator")
	req.Header.Set(SignatureHeader, Sign(sink.key, item.body, time.Now()))
	resp, err := d.client.Do(req)
	if err != nil {
		// The URL stays out of the error, and so of the logs: a sink's path may hold a token.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return fmt.Errorf("posting the event: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	// Read a little of the answer so that the connection can be reused; nothing more is needed.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("the sink answered %s", resp.Status)
	default:
		return &permanentError{fmt.Errorf("the sink answered %s, which a retry cannot change", resp.Status)}
	}
}

// replay sends again the events of Downloads whose last transition lies within the replay
// window: those finished within it, and those in flight created within it. The previous leader
// may have stopped before delivering them; receivers drop what they already have by id.
func (d *Dispatcher) replay(ctx context.Context) {
	if d.opts.Reader == nil {
		return
	}
	var downloads downloadv1alpha1.DownloadList
	if err := d.opts.Reader.List(ctx, &downloads); err != nil {
		log.Error(err, "listing Downloads to send the events of recent transitions again")
		return
	}
	since := d.opts.Clock.Now().Add(-d.opts.ReplayWindow)
	replayed := 0
	for i := range downloads.Items {
		download := &downloads.Items[i]
		at := download.CreationTimestamp.Time
		if download.Status.CompletionTime != nil {
			at = download.Status.CompletionTime.Time
		}
		if !download.DeletionTimestamp.IsZero() || at.Before(since) {
			continue
		}
		implied := Implied(download)
		for _, t := range implied {
			d.Emit(download, t)
		}
		replayed += min(1, len(implied))
	}
	log.Info("sent the events of recent transitions again", "downloads", replayed, "window", d.opts.ReplayWindow)
}
