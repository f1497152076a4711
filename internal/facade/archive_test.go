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
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/test/stack"
)

// archiveLink asks for the stable link without following the redirect; query may be "".
func (c *caller) archiveLink(jobID, query string) *response {
	c.tb.Helper()
	req, err := http.NewRequestWithContext(testContext(c.tb), http.MethodGet, c.base+facade.ArchivePath(jobID)+query, nil)
	if err != nil {
		c.tb.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", c.ip)
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirects.Do(req)
	if err != nil {
		c.tb.Fatalf("GET the archive link of %s: %v", jobID, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatal(err)
	}
	return &response{Response: resp, body: body}
}

// redirect expects a 302 from the stable link and returns where it points.
func (c *caller) redirect(jobID, query string) string {
	c.tb.Helper()
	resp := c.archiveLink(jobID, query)
	if resp.StatusCode != http.StatusFound {
		c.tb.Fatalf("archive link of %s%s: %d %s, want 302", jobID, query, resp.StatusCode, resp.body)
	}
	location := resp.Header.Get("Location")
	var link facade.ArchiveLink
	resp.json(&link)
	if location == "" || link.URL != location {
		c.tb.Fatalf("Location %q, body %s: want the same URL in both", location, resp.body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		c.tb.Errorf("Cache-Control %q: a signed URL must not be cached", cc)
	}
	expires, err := time.Parse(time.RFC3339, link.ExpiresAt)
	if err != nil || !expires.After(time.Now()) || expires.After(time.Now().Add(5*time.Minute+time.Second)) {
		c.tb.Errorf("expiresAt %q (%v): want within the next 5 minutes", link.ExpiresAt, err)
	}
	return location
}

// fetch GETs url with headers (name/value pairs), following redirects as browsers do.
func fetch(tb testing.TB, url string, headers ...string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(testContext(tb), http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, body
}

// completedJob runs a job of ids (each source filled with incompressible bytes) to completion
// and returns its id and the archive's bytes as the controller recorded them.
func completedJob(t *testing.T, s *stack.Stack, c *caller, ids ...int64) (string, []byte) {
	t.Helper()
	ctx := testContext(t)
	for _, id := range ids {
		content := make([]byte, 32<<10)
		_, _ = rand.NewChaCha8([32]byte{byte(id)}).Read(content)
		if err := s.PutSource(ctx, id, content); err != nil {
			t.Fatal(err)
		}
	}
	jobID := c.initiate(ids).JobID
	completed, err := s.RunToCompletion(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	done := c.eventually(jobID, hasStatus(facade.StatusCompleted))
	resp, body := fetch(t, done.DownloadURL)
	sum := sha256.Sum256(body)
	if resp.StatusCode != http.StatusOK || hex.EncodeToString(sum[:]) != completed.Status.Archive.SHA256 {
		t.Fatalf("the status' own URL: %d, sha256 %x, want %s", resp.StatusCode, sum, completed.Status.Archive.SHA256)
	}
	return jobID, body
}

func TestArchiveLinkRedirectsToAFreshURLOfTheSameArchive(t *testing.T) {
	s := sharedStack(t)
	c := newCaller(t, s.Facade)
	jobID, archive := completedJob(t, s, c, 77500, 77501)

	first := c.redirect(jobID, "")
	// Signatures are dated to the second: a second later the URL must differ.
	time.Sleep(1100 * time.Millisecond)
	second := c.redirect(jobID, "")
	if first == second {
		t.Fatalf("two links a second apart are the same URL %s; each must be signed anew", first)
	}

	var etags []string
	for _, u := range []string{first, second} {
		resp, body := fetch(t, u)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, archive) {
			t.Fatalf("GET the signed URL: %d with %d bytes, want 200 with the %d of the archive", resp.StatusCode, len(body), len(archive))
		}
		if want := `attachment; filename="download-` + jobID + `.zip"`; resp.Header.Get("Content-Disposition") != want {
			t.Errorf("Content-Disposition %q, want %q", resp.Header.Get("Content-Disposition"), want)
		}
		etags = append(etags, resp.Header.Get("ETag"))
	}
	if etags[0] == "" || etags[0] != etags[1] {
		t.Errorf("ETags %q: re-signing must not change the archive's ETag", etags)
	}

	// Range and If-Range go through the redirect, as a browser or curl -L sends them.
	resp, body := fetch(t, s.Facade.URL+facade.ArchivePath(jobID), "Range", "bytes=100-199", "If-Range", etags[0])
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, archive[100:200]) {
		t.Errorf("Range bytes=100-199 through the link: %d with %d bytes, want 206 with bytes 100..199", resp.StatusCode, len(body))
	}
	if want := "bytes 100-199/" + strconv.Itoa(len(archive)); resp.Header.Get("Content-Range") != want {
		t.Errorf("Content-Range %q, want %q", resp.Header.Get("Content-Range"), want)
	}
	// A client resuming compares the range's ETag with the one it started with (MinIO ignores
	// If-Range), so the range must carry the same one.
	if resp.Header.Get("ETag") != etags[0] {
		t.Errorf("the range has ETag %q, the whole archive %q", resp.Header.Get("ETag"), etags[0])
	}

	named := c.redirect(jobID, "?filename=Quarterly_report-2026.v2.zip")
	if resp, _ := fetch(t, named); resp.Header.Get("Content-Disposition") != `attachment; filename="Quarterly_report-2026.v2.zip"` {
		t.Errorf("Content-Disposition %q with a chosen filename", resp.Header.Get("Content-Disposition"))
	}
	for _, bad := range []string{"", "a.tar", "report.ZIP", "../x.zip", "a%20b.zip", "a%2Fb.zip", "%22x%22.zip", "r%C3%A9sum%C3%A9.zip",
		strings.Repeat("a", 125) + ".zip"} {
		resp := c.archiveLink(jobID, "?filename="+bad)
		if resp.StatusCode != http.StatusBadRequest || resp.errorCode() != facade.CodeBadRequest {
			t.Errorf("filename %q: %d %s, want 400", bad, resp.StatusCode, resp.body)
		}
	}
	if resp := c.archiveLink(jobID, "?filename=a.zip&filename=b.zip"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("two filenames: %d, want 400", resp.StatusCode)
	}

	// Without the controller nothing can be signed; the facade says so instead of hanging.
	dead := s.NewFileCheckServer()
	dead.Close()
	unreachable := newCaller(t, newFacade(t, func(cfg *facade.Config) { cfg.ControllerURL = dead.URL }))
	if resp := unreachable.archiveLink(jobID, ""); resp.StatusCode != http.StatusServiceUnavailable ||
		resp.errorCode() != facade.CodeUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("controller unreachable: %d %s %q, want 503 Unavailable with Retry-After",
			resp.StatusCode, resp.body, resp.Header.Get("Retry-After"))
	}

	// The controller's answers that the real one gives only in a race (its cache behind the
	// facade's, or the job expiring in between) or never, played by a fake in its place.
	for _, tc := range []struct {
		name, answer     string
		status           int
		wantStatus       int
		wantCode, absent string
	}{
		{"a controller that has not seen the job complete", `{"error":{"code":"JobProcessing","message":"x"}}`,
			http.StatusNotFound, http.StatusServiceUnavailable, facade.CodeUnavailable, ""},
		{"a job that expired in between", `{"error":{"code":"ArchiveExpired","message":"bucket downloads"}}`,
			http.StatusGone, http.StatusGone, facade.CodeArchiveExpired, "bucket"},
		{"a code outside the closed set", `{"error":{"code":"SecretCode","message":"key ns/x.zip"}}`,
			http.StatusNotFound, http.StatusNotFound, facade.CodeNotFound, "key"},
		{"a link that is no http URL", `{"url":"javascript:alert(1)","expiresAt":"2030-01-01T00:00:00Z"}`,
			http.StatusOK, http.StatusServiceUnavailable, facade.CodeUnavailable, "javascript"},
		{"a controller error", `{"error":{"code":"Unavailable","message":"storage.internal:9000 refused"}}`,
			http.StatusServiceUnavailable, http.StatusServiceUnavailable, facade.CodeUnavailable, "storage.internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.answer)
			}))
			t.Cleanup(fake.Close)
			resp := newCaller(t, newFacade(t, func(cfg *facade.Config) { cfg.ControllerURL = fake.URL })).archiveLink(jobID, "")
			if resp.StatusCode != tc.wantStatus || resp.errorCode() != tc.wantCode || resp.Header.Get("Location") != "" {
				t.Errorf("%d %s (Location %q), want %d %s", resp.StatusCode, resp.body, resp.Header.Get("Location"), tc.wantStatus, tc.wantCode)
			}
			if tc.absent != "" && strings.Contains(string(resp.body), tc.absent) {
				t.Errorf("the answer passes the controller's text on: %s", resp.body)
			}
			if tc.wantStatus == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Error("a 503 without Retry-After")
			}
		})
	}
}

func TestArchiveLinkAnswersWhyThereIsNoArchive(t *testing.T) {
	s, ctx, c := onSharedStack(t)
	expect := func(what, jobID string, status int, code string) {
		t.Helper()
		resp := c.archiveLink(jobID, "")
		if resp.StatusCode != status || resp.errorCode() != code {
			t.Errorf("%s: %d %s, want %d %s", what, resp.StatusCode, resp.body, status, code)
		}
		if status == http.StatusNotFound || status == http.StatusGone {
			var e facade.ErrorResponse
			resp.json(&e)
			if !strings.Contains(e.Error.Message, jobID) {
				t.Errorf("%s: message %q does not name the job", what, e.Error.Message)
			}
		}
	}
	expect("unknown job", uuid.NewString(), http.StatusNotFound, facade.CodeNotFound)
	expect("malformed jobId", "not-a-uuid", http.StatusBadRequest, facade.CodeBadRequest)
	if resp := c.do(http.MethodGet, "/v1/download/"+uuid.NewString()+"/manifest", nil); resp.StatusCode != http.StatusNotFound ||
		!strings.Contains(string(resp.body), "no such endpoint") {
		t.Errorf("another action than archive: %d %s, want the router's 404", resp.StatusCode, resp.body)
	}

	if err := s.PutSource(ctx, 77510, []byte("present")); err != nil {
		t.Fatal(err)
	}
	jobID := c.initiate([]int64{77510, 77511}).JobID
	expect("pending job", jobID, http.StatusNotFound, facade.CodeJobPending)
	job, err := s.WaitForStartedJob(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	c.eventually(jobID, hasStatus(facade.StatusProcessing))
	expect("processing job", jobID, http.StatusNotFound, facade.CodeJobProcessing)
	failure := &jobreport.Failure{Reason: downloadv1alpha1.ReasonSourceNotFound, Message: "file 77511 does not exist", MissingFileIDs: []int64{77511}}
	if err := s.FailJob(ctx, job, failure, batchv1.JobReasonPodFailurePolicy, 1); err != nil {
		t.Fatal(err)
	}
	c.eventually(jobID, hasStatus(facade.StatusFailed))
	expect("failed job", jobID, http.StatusNotFound, facade.CodeJobFailed)

	// A completed job being deleted (cancelled, or past its TTL) has no archive any more. A
	// finalizer of the test's own holds the Download in that state long enough to ask.
	jobID, _ = completedJob(t, s, c, 77520)
	c.redirect(jobID, "")
	const hold = "test.download.operator.dev/hold"
	// The controller writes the Download too, so each change retries on a conflict.
	changeFinalizers := func(change func(client.Object, string) bool) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			download, err := s.Download(ctx, jobID)
			if err == nil && change(download, hold) {
				err = s.Admin.Update(ctx, download)
			}
			return err
		})
	}
	if err := changeFinalizers(controllerutil.AddFinalizer); err != nil {
		t.Fatalf("holding Download %s: %v", jobID, err)
	}
	release := func() {
		if err := changeFinalizers(controllerutil.RemoveFinalizer); client.IgnoreNotFound(err) != nil {
			t.Errorf("releasing Download %s: %v", jobID, err)
		}
	}
	t.Cleanup(release)
	if resp := c.do(http.MethodDelete, "/v1/download/"+jobID, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", resp.StatusCode, resp.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.archiveLink(jobID, "").StatusCode != http.StatusGone {
		if time.Now().After(deadline) {
			t.Fatal("the link of a completed job being deleted never answered 410")
		}
		time.Sleep(20 * time.Millisecond)
	}
	expect("completed job being deleted", jobID, http.StatusGone, facade.CodeArchiveExpired)
	release()
	if err := s.WaitGone(ctx, jobID); err != nil {
		t.Fatal(err)
	}
	c.eventuallyGone(jobID)
	expect("deleted job", jobID, http.StatusNotFound, facade.CodeNotFound)
}

// eventuallyGone waits until the facade's cache no longer knows the job.
func (c *caller) eventuallyGone(jobID string) {
	c.tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.do(http.MethodGet, "/v1/download/status/"+jobID, nil).StatusCode != http.StatusNotFound {
		if time.Now().After(deadline) {
			c.tb.Fatalf("job %s is still known to the facade", jobID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
