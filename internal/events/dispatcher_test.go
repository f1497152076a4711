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

package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/events"
	"github.com/download-operator/download-operator/test/eventsink"
	"github.com/download-operator/download-operator/test/poll"
)

const (
	key = "test-hmac-key-0123456789"
	// publicBase is the facade's public URL, which makes the archive link absolute.
	publicBase = "https://downloads.example.test"
)

var served = sets.New("shop", "tenant-a")

// sinkSpec is one sink of a test: a fresh name (metrics are process-wide), where it posts and
// which namespaces it wants.
type sinkSpec struct {
	url        string
	namespaces []string
}

// loadSinks writes a sinks file and a key file as the chart mounts them, and loads them.
func loadSinks(t *testing.T, specs ...sinkSpec) ([]events.Sink, []string) {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hmacKey")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	var file strings.Builder
	file.WriteString("sinks:\n")
	var names []string
	for _, s := range specs {
		name := "t" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
		names = append(names, name)
		fmt.Fprintf(&file, "- name: %s\n  namespaces: [%s]\n  url: %s\n  hmacKeyFile: %s\n",
			name, `"`+strings.Join(s.namespaces, `", "`)+`"`, s.url, keyFile)
	}
	path := filepath.Join(dir, "sinks.yaml")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	sinks, err := events.Load(path, served)
	if err != nil {
		t.Fatal(err)
	}
	return sinks, names
}

// startReceiver starts an event receiver on loopback that answers the nth request respond(n).
func startReceiver(t *testing.T, respond func(n int) int) *eventsink.Receiver {
	t.Helper()
	r, err := eventsink.Start("127.0.0.1:0", []byte(key), respond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// run starts the dispatcher as the manager would, until the test ends.
func run(t *testing.T, d *events.Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the dispatcher stopped with %v", err)
		}
	})
}

func counter(metric, sink, eventType string) float64 {
	families, err := metrics.Registry.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range families {
		if f.GetName() != metric {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["sink"] == sink && labels["type"] == eventType {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

var completion = metav1.NewTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))

// completed is a Download in namespace that completed with an archive and skipped one id. Its
// status holds what must never reach a sink: the bucket, the key and a presigned URL.
func completed(namespace string) *downloadv1alpha1.Download {
	name := uuid.NewString()
	return &downloadv1alpha1.Download{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, UID: types.UID(uuid.NewString())},
		Spec:       downloadv1alpha1.DownloadSpec{FileIDs: []int64{70000, 99999, 70007}},
		Status: downloadv1alpha1.DownloadStatus{
			Phase: downloadv1alpha1.PhaseCompleted, JobName: name,
			Progress: 100, BytesDone: 2048, BytesTotal: 2048,
			Archive: &downloadv1alpha1.ArchiveStatus{
				Bucket: "secret-archive-bucket", Key: namespace + "/" + name + ".zip", Size: 2100, SHA256: strings.Repeat("ab", 32),
			},
			SkippedFileIDs: []int64{99999},
			DownloadURL:    "http://minio.internal:9000/secret-archive-bucket/x.zip?X-Amz-Signature=deadbeef",
			CompletionTime: &completion,
		},
	}
}

// failedWith is a Download in namespace that failed for reason, with an operator's message
// naming storage.
func failedWith(namespace, reason string) *downloadv1alpha1.Download {
	d := completed(namespace)
	d.Status.Phase, d.Status.Archive, d.Status.DownloadURL, d.Status.SkippedFileIDs = downloadv1alpha1.PhaseFailed, nil, "", nil
	meta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{
		Type: downloadv1alpha1.ConditionFailed, Status: metav1.ConditionTrue, Reason: reason,
		Message: "source secret-source-bucket/99999 not found at minio.internal:9000",
	})
	return d
}

// TestDeliversSignedCloudEvents sends a completed and a failed event and reads them as a
// receiver does: with the CloudEvents SDK, checking the signature under the sink's key.
func TestDeliversSignedCloudEvents(t *testing.T) {
	receiver := startReceiver(t, nil)
	sinks, names := loadSinks(t, sinkSpec{receiver.URL("127.0.0.1"), []string{"*"}})
	d := events.New(sinks, events.Options{PublicBaseURL: publicBase})
	run(t, d)

	done, broken := completed("shop"), failedWith("tenant-a", downloadv1alpha1.ReasonSourceNotFound)
	d.Emit(done, events.TypeCompleted)
	d.Emit(broken, events.TypeFailed)
	poll.Until(t, 10*time.Second, "two deliveries", func() bool { return len(receiver.Deliveries()) == 2 })

	for _, c := range []struct {
		download  *downloadv1alpha1.Download
		eventType string
		status    string
	}{
		{done, events.TypeCompleted, `{"jobId":"` + done.Name + `","status":"completed","archiveUrl":"` + publicBase + `/v1/download/` + done.Name +
			`/archive","archiveExpiresAt":"2026-03-01T13:00:00Z","skippedFileIds":[99999],"size":2100,"sha256":"` + strings.Repeat("ab", 32) + `"}`},
		// The condition names 99999 only inside a key, so the text names no id.
		{broken, events.TypeFailed, `{"jobId":"` + broken.Name + `","status":"failed","error":{"code":"SourceNotFound","message":"some of the requested files do not exist"}}`},
	} {
		got := receiver.Of(c.download.Name)
		if len(got) != 1 {
			t.Fatalf("%s: %d deliveries, want 1", c.eventType, len(got))
		}
		delivery := got[0]
		if delivery.ParseErr != nil || delivery.SignatureErr != nil {
			t.Fatalf("%s: parse %v, signature %v", c.eventType, delivery.ParseErr, delivery.SignatureErr)
		}
		if ct := delivery.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cloudevents+json") {
			t.Errorf("Content-Type = %q, want the structured mode", ct)
		}
		e := delivery.Event
		want := map[string]string{
			"specversion": "1.0", "id": string(c.download.UID) + "/" + strings.TrimPrefix(c.eventType, "dev.operator.download."),
			"type": c.eventType, "subject": c.download.Name, "datacontenttype": "application/json",
			"source": "/apis/download.operator.dev/v1alpha1/namespaces/" + c.download.Namespace + "/downloads/" + c.download.Name,
			"time":   completion.UTC().Format(time.RFC3339),
		}
		gotAttrs := map[string]string{
			"specversion": e.SpecVersion(), "id": e.ID(), "type": e.Type(), "subject": e.Subject(),
			"datacontenttype": e.DataContentType(), "source": e.Source(), "time": e.Time().UTC().Format(time.RFC3339),
		}
		for k, v := range want {
			if gotAttrs[k] != v {
				t.Errorf("%s: %s = %q, want %q", c.eventType, k, gotAttrs[k], v)
			}
		}
		data, err := delivery.Data()
		if err != nil {
			t.Fatal(err)
		}
		if data.JobID != c.download.Name || data.Namespace != c.download.Namespace ||
			data.ArchiveURL != publicBase+"/v1/download/"+c.download.Name+"/archive" {
			t.Errorf("%s: data = %+v", c.eventType, data)
		}
		if status := string(mustJSON(t, e.Data(), "status")); status != c.status {
			t.Errorf("%s: data.status = %s\nwant %s", c.eventType, status, c.status)
		}
		for _, secret := range []string{"secret-archive-bucket", "secret-source-bucket", "minio.internal", "X-Amz-Signature"} {
			if strings.Contains(string(delivery.Body), secret) {
				t.Errorf("%s: the event shows %q: %s", c.eventType, secret, delivery.Body)
			}
		}
	}
	if got := counter("download_operator_events_delivered_total", names[0], events.TypeCompleted); got != 1 {
		t.Errorf("delivered{completed} = %v, want 1", got)
	}
	if got := counter("download_operator_events_failed_total", names[0], events.TypeStarted); got != 0 {
		t.Errorf("failed{started} = %v, want 0: every series is exported from the start", got)
	}
}

// TestRetriesWithBackoffUntilTheSinkAccepts: the sink fails twice, then accepts. The event is
// delivered once accepted (at least once), each retry waits longer than the one before, and
// every attempt carries the same event, signed anew.
func TestRetriesWithBackoffUntilTheSinkAccepts(t *testing.T) {
	receiver := startReceiver(t, func(n int) int {
		switch n {
		case 1:
			return http.StatusInternalServerError
		case 2:
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	sinks, names := loadSinks(t, sinkSpec{receiver.URL("127.0.0.1"), []string{"shop"}})
	const base = 100 * time.Millisecond
	d := events.New(sinks, events.Options{BaseDelay: base, MaxDelay: time.Second})
	run(t, d)

	download := completed("shop")
	d.Emit(download, events.TypeCompleted)
	poll.Until(t, 10*time.Second, "a delivered event", func() bool {
		return counter("download_operator_events_delivered_total", names[0], events.TypeCompleted) == 1
	})
	got := receiver.Deliveries()
	if len(got) != 3 || got[0].Status != 500 || got[1].Status != 503 || got[2].Status != 204 {
		t.Fatalf("want 500, 503, then 204; got %d deliveries: %v", len(got), statuses(got))
	}
	for i, delivery := range got {
		if delivery.SignatureErr != nil || string(delivery.Body) != string(got[0].Body) || delivery.Event.ID() != got[0].Event.ID() {
			t.Errorf("attempt %d differs from the first or is badly signed (%v): %s", i+1, delivery.SignatureErr, delivery.Body)
		}
	}
	first, second := got[1].At.Sub(got[0].At), got[2].At.Sub(got[1].At)
	if first < base || second < 2*base {
		t.Errorf("retries after %s then %s, want at least %s then %s (exponential backoff)", first, second, base, 2*base)
	}
	if f := counter("download_operator_events_failed_total", names[0], events.TypeCompleted); f != 0 {
		t.Errorf("failed = %v, want 0", f)
	}
}

func statuses(ds []eventsink.Delivery) []int {
	out := make([]int, len(ds))
	for i, d := range ds {
		out[i] = d.Status
	}
	return out
}

// TestGivesUpAfterTheRetryBound: a sink that always fails gets retries only until RetryFor
// has passed; then the event counts as failed and no more attempts come.
func TestGivesUpAfterTheRetryBound(t *testing.T) {
	receiver := startReceiver(t, func(int) int { return http.StatusBadGateway })
	sinks, names := loadSinks(t, sinkSpec{receiver.URL("127.0.0.1"), []string{"shop"}})
	const retryFor = 600 * time.Millisecond
	d := events.New(sinks, events.Options{BaseDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond, RetryFor: retryFor})
	run(t, d)

	emitted := time.Now()
	d.Emit(completed("shop"), events.TypeCompleted)
	poll.Until(t, 10*time.Second, "the event to count as failed", func() bool {
		return counter("download_operator_events_failed_total", names[0], events.TypeCompleted) == 1
	})
	attempts := receiver.Deliveries()
	if len(attempts) < 4 {
		t.Errorf("only %d attempts before giving up; want retries", len(attempts))
	}
	if last := attempts[len(attempts)-1].At.Sub(emitted); last > retryFor {
		t.Errorf("an attempt came %s after the event was queued, past the bound of %s", last, retryFor)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(receiver.Deliveries()); n != len(attempts) {
		t.Errorf("%d more attempts after giving up", n-len(attempts))
	}
	if got := counter("download_operator_events_delivered_total", names[0], events.TypeCompleted); got != 0 {
		t.Errorf("delivered = %v, want 0", got)
	}
}

// TestARefusalIsNotRetried: a 4xx other than 408, 425 and 429 cannot get better by itself.
func TestARefusalIsNotRetried(t *testing.T) {
	receiver := startReceiver(t, func(int) int { return http.StatusUnauthorized })
	sinks, names := loadSinks(t, sinkSpec{receiver.URL("127.0.0.1"), []string{"shop"}})
	d := events.New(sinks, events.Options{BaseDelay: 10 * time.Millisecond})
	run(t, d)
	d.Emit(completed("shop"), events.TypeCompleted)
	poll.Until(t, 10*time.Second, "the event to count as failed", func() bool {
		return counter("download_operator_events_failed_total", names[0], events.TypeCompleted) == 1
	})
	time.Sleep(100 * time.Millisecond)
	if n := len(receiver.Deliveries()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

// TestEmitNeverBlocks: with a sink that hangs, Emit still returns at once; past the bounded
// queue, events are dropped and counted, and those queued are delivered once the sink answers.
func TestEmitNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	receiver := startReceiver(t, func(int) int { <-release; return http.StatusOK })
	sinks, names := loadSinks(t, sinkSpec{receiver.URL("127.0.0.1"), []string{"shop"}})
	const size = 3
	d := events.New(sinks, events.Options{QueueSize: size, Workers: 1, Timeout: 30 * time.Second})
	run(t, d)

	d.Emit(completed("shop"), events.TypeCompleted)
	poll.Until(t, 10*time.Second, "the first event to reach the hanging sink", func() bool { return len(receiver.Deliveries()) == 1 })
	start := time.Now()
	for range 9 {
		d.Emit(completed("shop"), events.TypeCompleted)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("9 Emits took %s with the sink hanging", took)
	}
	if got := counter("download_operator_events_dropped_total", names[0], events.TypeCompleted); got != 10-size {
		t.Errorf("dropped = %v, want %d (10 events, %d held: one in flight, the rest queued)", got, 10-size, size)
	}
	close(release)
	poll.Until(t, 10*time.Second, "the held events to be delivered", func() bool {
		return counter("download_operator_events_delivered_total", names[0], events.TypeCompleted) == size
	})
}

// TestSinksGetOnlyTheirNamespaces: a sink for one namespace and one for all served namespaces;
// a Download in a namespace the operator does not serve goes to neither.
func TestSinksGetOnlyTheirNamespaces(t *testing.T) {
	shop, all := startReceiver(t, nil), startReceiver(t, nil)
	sinks, _ := loadSinks(t, sinkSpec{shop.URL("127.0.0.1"), []string{"shop"}}, sinkSpec{all.URL("127.0.0.1"), []string{"*"}})
	d := events.New(sinks, events.Options{})
	run(t, d)
	inShop, inTenant, unserved := completed("shop"), completed("tenant-a"), completed("kube-system")
	for _, dl := range []*downloadv1alpha1.Download{inShop, inTenant, unserved} {
		d.Emit(dl, events.TypeCompleted)
	}
	poll.Until(t, 10*time.Second, "the deliveries", func() bool { return len(shop.Deliveries()) == 1 && len(all.Deliveries()) == 2 })
	time.Sleep(100 * time.Millisecond)
	if len(shop.Of(inShop.Name)) != 1 || len(all.Of(inShop.Name)) != 1 || len(all.Of(inTenant.Name)) != 1 ||
		len(shop.Deliveries()) != 1 || len(all.Deliveries()) != 2 {
		t.Errorf("shop got %d, all got %d deliveries; want the shop Download in both and the tenant's in all only",
			len(shop.Deliveries()), len(all.Deliveries()))
	}
}

// TestStartSendsRecentTransitionsAgain: a new leader re-sends, with the same ids, the events of
// Downloads that finished (or, in flight, were created) within the replay window, and nothing
// older.
func TestStartSendsRecentTransitionsAgain(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	receiver := startReceiver(t, nil)
	sinks, _ := loadSinks(t, sinkSpec{receiver.URL("127.0.0.1"), []string{"*"}})

	recent := completed("shop")
	recent.Status.CompletionTime = &metav1.Time{Time: now.Add(-5 * time.Minute)}
	old := completed("shop")
	old.Status.CompletionTime = &metav1.Time{Time: now.Add(-2 * time.Hour)}
	inFlight := completed("tenant-a")
	inFlight.Status = downloadv1alpha1.DownloadStatus{Phase: downloadv1alpha1.PhaseProcessing, JobName: inFlight.Name, Progress: 40}
	inFlight.CreationTimestamp = metav1.NewTime(now.Add(-time.Minute))
	noJobYet := completed("tenant-a")
	noJobYet.Status = downloadv1alpha1.DownloadStatus{}
	noJobYet.CreationTimestamp = metav1.NewTime(now.Add(-time.Minute))
	deleting := completed("shop")
	deleting.DeletionTimestamp, deleting.Finalizers = &metav1.Time{Time: now}, []string{"download.operator.dev/cleanup"}

	scheme := runtime.NewScheme()
	if err := downloadv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(recent, old, inFlight, noJobYet, deleting).Build()
	d := events.New(sinks, events.Options{Reader: reader, Clock: clocktesting.NewFakeClock(now)})
	run(t, d)

	want := sets.New(
		events.ID(recent.UID, events.TypeStarted), events.ID(recent.UID, events.TypeCompleted),
		events.ID(inFlight.UID, events.TypeStarted),
	)
	poll.Until(t, 10*time.Second, "three replayed events", func() bool { return len(receiver.Deliveries()) >= want.Len() })
	time.Sleep(200 * time.Millisecond)
	got := sets.New[string]()
	for _, delivery := range receiver.Deliveries() {
		got.Insert(delivery.Event.ID())
	}
	if !got.Equal(want) || len(receiver.Deliveries()) != want.Len() {
		t.Errorf("replayed %v (%d deliveries), want %v", sets.List(got), len(receiver.Deliveries()), sets.List(want))
	}
}

// mustJSON returns the raw JSON of one field of a JSON object.
func mustJSON(t *testing.T, raw []byte, field string) []byte {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	return fields[field]
}
