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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/test/stack"
)

// answer is one initiate of a burst: its status code, error code and jobId.
type answer struct {
	code         int
	errCode, job string
}

// burst sends one initiate per body, all at once, as the caller, and returns the answers. It
// reports problems with Errorf, since it runs the requests outside the test's goroutine.
func burst(t *testing.T, c *caller, bodies []string, headers ...string) []answer {
	t.Helper()
	ctx := testContext(t)
	answers := make([]answer, len(bodies))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, body := range bodies {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/download/initiate", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", c.ip)
		for j := 0; j+1 < len(headers); j += 2 {
			req.Header.Set(headers[j], headers[j+1])
		}
		wg.Go(func() {
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("initiate %d: %v", i, err)
				return
			}
			defer func() { _ = resp.Body.Close() }()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Errorf("reading initiate %d: %v", i, err)
				return
			}
			answers[i].code = resp.StatusCode
			if resp.StatusCode == http.StatusAccepted {
				var accepted facade.InitiateResponse
				if err := json.Unmarshal(raw, &accepted); err != nil {
					t.Errorf("initiate %d answered %s: %v", i, raw, err)
				}
				answers[i].job = accepted.JobID
				return
			}
			answers[i].errCode = (&response{body: raw}).errorCode()
		})
	}
	close(start)
	wg.Wait()
	return answers
}

// distinctBodies are n initiate bodies, each for another file id from first on.
func distinctBodies(n int, first int64) []string {
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"file_ids":[%d]}`, first+int64(i))
	}
	return bodies
}

// tally checks that a burst got exactly accepted 202s and TooManyActiveDownloads for the rest.
func tally(t *testing.T, answers []answer, accepted int) {
	t.Helper()
	got := 0
	for _, a := range answers {
		switch {
		case a.code == http.StatusAccepted:
			got++
		case a.code != http.StatusTooManyRequests || a.errCode != facade.CodeTooManyActive:
			t.Errorf("an initiate answered %d %s, want 202 or 429 %s", a.code, a.errCode, facade.CodeTooManyActive)
		}
	}
	if got != accepted {
		t.Errorf("%d of %d initiates accepted, want exactly %d", got, len(answers), accepted)
	}
}

// One client's initiates no longer wait for each other, so a burst counts and creates at once;
// its reservations must still keep the count exact. Each round is a fresh client, so a race
// between one initiate's Create and another's count has several chances to show.
func TestABurstOfInitiatesNeverPassesTheActiveCap(t *testing.T) {
	const limit, size, rounds = 5, 3 * 5, 4
	f := newFacade(t, func(cfg *facade.Config) { cfg.MaxActivePerClient = limit })
	for round := range rounds {
		c := newCaller(t, f)
		tally(t, burst(t, c, distinctBodies(size, 76000)), limit)
		if n := countDownloads(t, c); n != limit {
			t.Fatalf("round %d: the client has %d Downloads, want %d", round, n, limit)
		}
		// Now the cache counts them, and their reservations are gone: nothing more passes.
		tally(t, burst(t, c, distinctBodies(size, 76100)), 0)
		if n := countDownloads(t, c); n != limit {
			t.Fatalf("round %d: a second burst took the client to %d Downloads", round, n)
		}
	}
}

func TestABurstAfterCachedDownloadsFillsOnlyTheRestOfTheCap(t *testing.T) {
	const limit, size, existing = 5, 3 * 5, 2
	f := newFacade(t, func(cfg *facade.Config) { cfg.MaxActivePerClient = limit })
	for round := range 3 {
		c := newCaller(t, f)
		for i := range existing {
			c.initiate([]int64{76200 + int64(i)}) // initiate answers once its cache holds the Download
		}
		tally(t, burst(t, c, distinctBodies(size, 76300)), limit-existing)
		if n := countDownloads(t, c); n != limit {
			t.Fatalf("round %d: the client has %d Downloads, want %d", round, n, limit)
		}
	}
}

// Concurrent requests with one Idempotency-Key make one Download, take one place, and all
// answer its jobId, also while it is being created.
func TestConcurrentRequestsWithOneIdempotencyKeyTakeOnePlace(t *testing.T) {
	f := newFacade(t, func(cfg *facade.Config) { cfg.MaxActivePerClient = 2 })
	c := newCaller(t, f)
	bodies := slices.Repeat([]string{`{"file_ids":[76400]}`}, 10)
	answers := burst(t, c, bodies, "Idempotency-Key", "burst-key-1")
	tally(t, answers, len(bodies))
	for _, a := range answers {
		if a.job != answers[0].job {
			t.Fatalf("one key answered jobIds %s and %s", answers[0].job, a.job)
		}
	}
	if n := countDownloads(t, c); n != 1 {
		t.Fatalf("one key made %d Downloads", n)
	}
	c.initiate([]int64{76401})
	if resp := c.postJSON("/v1/download/initiate", `{"file_ids":[76402]}`); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a third Download with a cap of 2: %d %s", resp.StatusCode, resp.body)
	}
}

// A Create the apiserver refuses must give its place back at once. The refusal is the
// apiserver's own, from an admission policy the facade's validation knows nothing of, for this
// client's Downloads only.
func TestARefusedCreateGivesItsPlaceBack(t *testing.T) {
	s := sharedStack(t)
	ctx := testContext(t)
	f := newFacade(t, func(cfg *facade.Config) { cfg.MaxActivePerClient = 1 })
	c := newCaller(t, f)
	refuse(t, s, c)

	for range 3 {
		resp := c.postJSON("/v1/download/initiate", `{"file_ids":[76500]}`)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("a refused Create answered %d %s, want 400 (429 means its place was kept)", resp.StatusCode, resp.body)
		}
	}
	if n := countDownloads(t, c); n != 0 {
		t.Fatalf("%d Downloads despite the refusal", n)
	}

	allow(t, s, c)
	accepted := c.initiate([]int64{76501})
	if resp := c.postJSON("/v1/download/initiate", `{"file_ids":[76502]}`); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the cap of 1 no longer holds after refusals: %d %s", resp.StatusCode, resp.body)
	}
	if _, err := s.Download(ctx, accepted.JobID); err != nil {
		t.Error(err)
	}
}

// refuse makes the apiserver refuse to create the caller's Downloads, and waits until it does.
func refuse(t *testing.T, s *stack.Stack, c *caller) {
	t.Helper()
	ctx := testContext(t)
	name := "refuse-" + c.label()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule: admissionregistrationv1.Rule{
							APIGroups:   []string{downloadv1alpha1.GroupVersion.Group},
							APIVersions: []string{downloadv1alpha1.GroupVersion.Version},
							Resources:   []string{"downloads"},
						},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf(`!has(object.metadata.labels) || !(%q in object.metadata.labels) || object.metadata.labels[%q] != %q`,
					facade.ClientLabel, facade.ClientLabel, c.label()),
				Message: "this test refuses the client's Downloads",
				// Invalid, as the CRD's own validation would answer; a 403 would count as a grant
				// the chart lacks (stack.Stop reports those).
				Reason: ptr.To(metav1.StatusReasonInvalid),
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	for _, obj := range []ctrlclient.Object{policy, binding} {
		if err := s.Admin.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { allow(t, s, c) })
	// The apiserver loads policies from its own informer: wait until a dry run is refused.
	waitForCreate(t, s, c, apierrors.IsInvalid)
}

// allow removes what refuse made, and waits until the caller's Downloads are created again.
func allow(t *testing.T, s *stack.Stack, c *caller) {
	t.Helper()
	ctx := testContext(t)
	name := "refuse-" + c.label()
	for _, obj := range []ctrlclient.Object{
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name}},
		&admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}},
	} {
		if err := ctrlclient.IgnoreNotFound(s.Admin.Delete(ctx, obj)); err != nil {
			t.Fatal(err)
		}
	}
	waitForCreate(t, s, c, func(err error) bool { return err == nil })
}

// waitForCreate dry-runs creating a Download of the caller until the answer satisfies done.
func waitForCreate(t *testing.T, s *stack.Stack, c *caller, done func(error) bool) {
	t.Helper()
	ctx := testContext(t)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		probe := &downloadv1alpha1.Download{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: stack.Namespace,
				Labels: map[string]string{facade.ClientLabel: c.label()}},
			Spec: downloadv1alpha1.DownloadSpec{FileIDs: []int64{76599}},
		}
		err := s.Admin.Create(ctx, probe, ctrlclient.DryRunAll)
		if done(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admission policy did not take effect: the dry run answered %v", err)
		}
	}
}

// The facade creates each Download with the controller's cleanup finalizer, so the controller
// never writes the Download itself before it makes the Job: only its status.
func TestInitiatedDownloadsCarryTheCleanupFinalizer(t *testing.T) {
	s, ctx, c := onSharedStack(t)
	accepted := c.initiate([]int64{76600})
	if _, err := s.WaitForJob(ctx, accepted.JobID); err != nil {
		t.Fatal(err)
	}
	download, err := s.Download(ctx, accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(download.Finalizers, downloadv1alpha1.CleanupFinalizer) {
		t.Errorf("finalizers %v, want %s", download.Finalizers, downloadv1alpha1.CleanupFinalizer)
	}
	var writers []string
	for _, entry := range download.ManagedFields {
		if entry.Subresource == "" {
			writers = append(writers, fmt.Sprintf("%s %s", entry.Manager, entry.Operation))
		}
	}
	if len(writers) != 1 {
		t.Errorf("the Download itself was written by %v; want only the facade's create", writers)
	}
}
