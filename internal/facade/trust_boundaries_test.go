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
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/api/meta"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/internal/jobreport"
)

// A forged first X-Forwarded-For hop must not move a caller into another client's limits: the
// stack's facade trusts only the loopback proxy, so the hop it appended (c.ip) is the client.
func TestForgedForwardedForDoesNotChangeTheClient(t *testing.T) {
	f := newFacade(t, func(cfg *facade.Config) { cfg.MaxActivePerClient = 1 })
	c := newCaller(t, f)
	accepted := c.initiate([]int64{79100}, "X-Forwarded-For", "203.0.113.66, "+c.ip)
	download, err := sharedStack(t).Download(testContext(t), accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got := download.Labels[facade.ClientLabel]; got != c.label() {
		t.Errorf("ClientLabel %q, want the label of %s, the hop the trusted proxy appended", got, c.ip)
	}
	resp := c.postJSON("/v1/download/initiate", `{"file_ids":[79101]}`, "X-Forwarded-For", "203.0.113.67, "+c.ip)
	if resp.StatusCode != http.StatusTooManyRequests || resp.errorCode() != facade.CodeTooManyActive {
		t.Errorf("another forged first hop escaped the active cap: %d %s", resp.StatusCode, resp.body)
	}
}

// Without trusted proxies X-Forwarded-For is ignored: every caller here is the loopback peer.
func TestWithoutTrustedProxiesThePeerIsTheClient(t *testing.T) {
	f := newFacade(t, func(cfg *facade.Config) { cfg.TrustedProxies, cfg.MaxActivePerClient = nil, 1 })
	a, b := newCaller(t, f), newCaller(t, f)
	accepted := a.initiate([]int64{79200})
	download, err := sharedStack(t).Download(testContext(t), accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := download.Labels[facade.ClientLabel], f.ClientLabelValue("127.0.0.1"); got != want {
		t.Errorf("ClientLabel %q, want %q, the label of the peer 127.0.0.1", got, want)
	}
	if resp := b.postJSON("/v1/download/initiate", `{"file_ids":[79201]}`); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("another X-Forwarded-For from the same peer is another client: %d %s", resp.StatusCode, resp.body)
	}
}

func TestIdempotencyKeysAreScopedPerClient(t *testing.T) {
	s := sharedStack(t)
	owner, other := newCaller(t, s.Facade), newCaller(t, s.Facade)
	key := uuid.NewString()
	first := owner.initiate([]int64{79300}, "Idempotency-Key", key)
	second := other.initiate([]int64{79300}, "Idempotency-Key", key)
	if second.JobID == first.JobID {
		t.Fatalf("another client's request with the same key and body got the first client's job %s", first.JobID)
	}
	if second.JobID != facade.IdempotentJobID("default", other.label(), key) {
		t.Errorf("jobId %s is not derived from the other client and the key", second.JobID)
	}
	if replay := owner.initiate([]int64{79300}, "Idempotency-Key", key); replay.JobID != first.JobID {
		t.Errorf("the owner's replay got %s, want %s", replay.JobID, first.JobID)
	}
	if n := countDownloads(t, owner); n != 1 {
		t.Errorf("the owner has %d Downloads, want 1", n)
	}
}

// The worker's failure message names the bucket, the key and the storage endpoint: it reaches the
// Download's condition, and neither polls nor the event stream.
func TestFailureDetailsStayInTheCondition(t *testing.T) {
	s, ctx, c := onSharedStack(t)
	accepted := c.initiate([]int64{79400})
	events := c.openEvents(accepted.JobID)
	job, err := s.WaitForStartedJob(ctx, accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	const detail = `PUT archives/default/x.zip: bucket/key host:9000: connection refused`
	failure := &jobreport.Failure{Reason: downloadv1alpha1.ReasonStorageError, Message: detail}
	if err := s.FailJob(ctx, job, failure, "BackoffLimitExceeded", 4); err != nil {
		t.Fatal(err)
	}
	failed := c.eventually(accepted.JobID, hasStatus(facade.StatusFailed))
	if failed.Error == nil || failed.Error.Code != downloadv1alpha1.ReasonStorageError {
		t.Fatalf("failed status %+v (error %+v)", failed, failed.Error)
	}
	download, err := s.Download(ctx, accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(download.Status.Conditions, downloadv1alpha1.ConditionFailed); c == nil ||
		!strings.Contains(c.Message, "host:9000") {
		t.Errorf("the detail must stay in the Failed condition for operators: %+v", c)
	}
	raw := string(c.do(http.MethodGet, "/v1/download/status/"+accepted.JobID, nil).body)
	for {
		ev, ok := events.next(t, 10*time.Second, false)
		if !ok {
			break
		}
		raw += ev.Data
	}
	for _, leak := range []string{"bucket/key", "host:9000", "archives/"} {
		if strings.Contains(raw, leak) {
			t.Errorf("the status document or an event reveals %q: %s", leak, raw)
		}
	}
	if !strings.Contains(raw, `"code":"StorageError"`) {
		t.Errorf("no failed event or status: %s", raw)
	}
}
