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
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/statusdoc"
)

func TestMedianCompletionUsesTheLatestCompletions(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	completed := func(took time.Duration, doneAt time.Duration) downloadv1alpha1.Download {
		return downloadv1alpha1.Download{
			ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(base.Add(doneAt - took))},
			Status: downloadv1alpha1.DownloadStatus{Phase: downloadv1alpha1.PhaseCompleted,
				CompletionTime: ptr.To(metav1.NewTime(base.Add(doneAt)))},
		}
	}
	pending := downloadv1alpha1.Download{Status: downloadv1alpha1.DownloadStatus{Phase: downloadv1alpha1.PhasePending}}
	failed := completed(time.Hour, time.Hour)
	failed.Status.Phase = downloadv1alpha1.PhaseFailed

	if got := medianCompletion(nil, 5, DefaultETA); got != DefaultETA {
		t.Errorf("no history: %s, want the default %s", got, DefaultETA)
	}
	if got := medianCompletion([]downloadv1alpha1.Download{pending, failed}, 5, DefaultETA); got != DefaultETA {
		t.Errorf("nothing completed: %s, want the default %s", got, DefaultETA)
	}
	history := []downloadv1alpha1.Download{
		completed(100*time.Second, 1*time.Minute), // oldest: outside the last three
		completed(4*time.Second, 2*time.Minute),
		completed(10*time.Second, 3*time.Minute),
		completed(6*time.Second, 4*time.Minute),
		pending, failed,
	}
	if got := medianCompletion(history, 3, DefaultETA); got != 6*time.Second {
		t.Errorf("median of the last three = %s, want 6s", got)
	}
	if got := medianCompletion(history, 4, DefaultETA); got != 8*time.Second {
		t.Errorf("median of the last four = %s, want 8s (mean of the middle two)", got)
	}
	if got := medianCompletion([]downloadv1alpha1.Download{completed(0, time.Minute)}, 3, DefaultETA); got != time.Second {
		t.Errorf("an archive ready within its creation second: %s, want the 1s floor", got)
	}
}

func TestWritesAClientCannotSeeDoNotMakeAPendingEventNew(t *testing.T) {
	created := &downloadv1alpha1.Download{}
	created.ResourceVersion = "5"
	// The controller adds its finalizer and writes the first Pending status: still "pending".
	reconciled := created.DeepCopy()
	reconciled.ResourceVersion = "9"
	reconciled.Status.Phase = downloadv1alpha1.PhasePending
	first, later := eventID(created, statusdoc.Of(created)), eventID(reconciled, statusdoc.Of(reconciled))
	if newerThan(later, first) {
		t.Errorf("pending event %s counts as news after %s, though the client would see the same document", later, first)
	}
}

func TestEventIDsFollowTheLifecycle(t *testing.T) {
	d := &downloadv1alpha1.Download{}
	var ids []string
	version := 100
	step := func(mutate func(*downloadv1alpha1.DownloadStatus)) {
		mutate(&d.Status)
		version++
		d.ResourceVersion = fmt.Sprint(version)
		ids = append(ids, eventID(d, statusdoc.Of(d)))
	}
	step(func(s *downloadv1alpha1.DownloadStatus) { s.Phase = downloadv1alpha1.PhasePending })
	step(func(s *downloadv1alpha1.DownloadStatus) { s.Phase, s.Attempts = downloadv1alpha1.PhaseProcessing, 1 })
	// The controller's ETA moves while the bytes do not.
	step(func(s *downloadv1alpha1.DownloadStatus) { s.EtaSeconds = ptr.To[int64](30) })
	step(func(s *downloadv1alpha1.DownloadStatus) { s.BytesDone = 1 << 20 })
	// A retry starts over at zero bytes, and must still count as news.
	step(func(s *downloadv1alpha1.DownloadStatus) { s.Attempts, s.BytesDone = 2, 0 })
	step(func(s *downloadv1alpha1.DownloadStatus) {
		s.Phase, s.URLExpiresAt = downloadv1alpha1.PhaseCompleted, ptr.To(metav1.NewTime(time.Unix(1000, 0)))
	})
	// The controller re-signs the URL before it expires.
	step(func(s *downloadv1alpha1.DownloadStatus) { s.URLExpiresAt = ptr.To(metav1.NewTime(time.Unix(2000, 0))) })
	for i := 1; i < len(ids); i++ {
		if !newerThan(ids[i], ids[i-1]) || newerThan(ids[i-1], ids[i]) {
			t.Errorf("event %d (%s) does not follow %s", i, ids[i], ids[i-1])
		}
	}
	if newerThan(ids[2], ids[2]) {
		t.Error("an id is newer than itself")
	}
	if !newerThan(goneEventID, ids[len(ids)-1]) {
		t.Error("the end of a deleted Download must follow its last state")
	}
	for _, garbage := range []string{"", "x", "1.2.3.4", "1.2.3.4.x"} {
		if !newerThan(ids[0], garbage) {
			t.Errorf("an unreadable Last-Event-ID %q must count as nothing seen", garbage)
		}
	}
}

func TestIdempotentJobIDIsAStableVersion4UUID(t *testing.T) {
	a, b := IdempotentJobID("default", "client", "key-1"), IdempotentJobID("default", "client", "key-1")
	if a != b {
		t.Fatalf("not deterministic: %s != %s", a, b)
	}
	id, err := uuid.Parse(a)
	if err != nil || id.Version() != 4 || id.Variant() != uuid.RFC4122 {
		t.Fatalf("%s: version %d variant %s err %v", a, id.Version(), id.Variant(), err)
	}
	if IdempotentJobID("default", "client", "key-2") == a || IdempotentJobID("other", "client", "key-1") == a ||
		IdempotentJobID("default", "other-client", "key-1") == a {
		t.Error("the key, the client and the namespace must all change the jobId")
	}
}

func TestRateLimiterEvictsRefilledBuckets(t *testing.T) {
	l := newRateLimiter(10, 5) // refills completely in half a second
	start := time.Now()
	for i := range 1000 {
		if ok, _, _ := l.take(fmt.Sprint("client-", i), true, start); !ok {
			t.Fatal("a first request must pass")
		}
	}
	if l.size() != 1000 {
		t.Fatalf("%d buckets, want 1000", l.size())
	}
	for range 4 {
		l.take("busy", true, start)
	}
	ok, remaining, _ := l.take("busy", true, start)
	if !ok || remaining >= 1 {
		t.Fatalf("fifth request of a burst of 5: ok=%v remaining=%v", ok, remaining)
	}
	if ok, _, wait := l.take("busy", true, start); ok || wait <= 0 || wait > 100*time.Millisecond {
		t.Fatalf("sixth request: ok=%v wait=%s, want refused with about 100ms to wait", ok, wait)
	}
	l.take("busy", true, start.Add(2*time.Second))
	if l.size() != 1 {
		t.Errorf("%d buckets after every other client idled past the refill time, want 1", l.size())
	}
	if ok, remaining, _ := l.take("new", false, start.Add(2*time.Second)); !ok || remaining != 5 || l.size() != 1 {
		t.Errorf("looking must not create a bucket: ok=%v remaining=%v size=%d", ok, remaining, l.size())
	}
}
