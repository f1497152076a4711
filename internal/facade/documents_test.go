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
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/statusdoc"
)

const testJobID = "123e4567-e89b-42d3-a456-426614174000"

// storeFacade is a Facade with only what polls and the informer's event handler use.
func storeFacade(synced bool) *Facade {
	f := &Facade{log: slog.New(slog.DiscardHandler), docs: newDocuments(), hub: newHub()}
	f.synced.Store(synced)
	return f
}

func testDownload(mutate func(*downloadv1alpha1.Download)) *downloadv1alpha1.Download {
	d := &downloadv1alpha1.Download{ObjectMeta: metav1.ObjectMeta{
		Name: testJobID, Namespace: "default", UID: "uid-1", ResourceVersion: "10",
	}}
	d.Status.Phase = downloadv1alpha1.PhasePending
	if mutate != nil {
		mutate(d)
	}
	return d
}

// poll answers GET /v1/download/status/{jobId} with the facade's status handler.
func poll(t *testing.T, f *Facade, jobID string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/v1/download/status/"+jobID, nil)
	req.SetPathValue("jobId", jobID)
	rec := httptest.NewRecorder()
	f.status(rec, req)
	return rec
}

func pollStatus(t *testing.T, f *Facade) Status {
	t.Helper()
	rec := poll(t, f, testJobID)
	if rec.Code != http.StatusOK {
		t.Fatalf("poll answered %d: %s", rec.Code, rec.Body)
	}
	if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
		t.Errorf("Content-Length %s for a body of %s bytes", got, want)
	}
	var s Status
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body, err)
	}
	return s
}

func pollCode(t *testing.T, f *Facade, jobID string) (int, string) {
	t.Helper()
	rec := poll(t, f, jobID)
	var e ErrorResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	return rec.Code, e.Error.Code
}

func TestPollsServeTheDocumentOfTheLatestUpdate(t *testing.T) {
	f := storeFacade(true)
	f.downloadChanged(testDownload(nil))
	if s := pollStatus(t, f); s.Status != StatusPending || s.JobID != testJobID {
		t.Fatalf("after the add: %+v, want pending", s)
	}
	f.downloadChanged(testDownload(func(d *downloadv1alpha1.Download) {
		d.ResourceVersion = "11"
		d.Status.Phase, d.Status.Progress, d.Status.BytesDone, d.Status.BytesTotal = downloadv1alpha1.PhaseProcessing, 40, 400, 1000
		d.Status.EtaSeconds = ptr.To[int64](12)
	}))
	s := pollStatus(t, f)
	if s.Status != StatusProcessing || ptr.Deref(s.Progress, -1) != 40 || ptr.Deref(s.BytesDone, -1) != 400 ||
		ptr.Deref(s.EtaSeconds, -1) != 12 {
		t.Fatalf("after the update: %+v, want processing at 40 %% with 12 s to go", s)
	}
	expires := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.downloadChanged(testDownload(func(d *downloadv1alpha1.Download) {
		d.ResourceVersion = "12"
		d.Status.Phase, d.Status.DownloadURL = downloadv1alpha1.PhaseCompleted, "https://storage.example/archive.zip"
		d.Status.URLExpiresAt = ptr.To(metav1.NewTime(expires))
		d.Status.CompletionTime = ptr.To(metav1.NewTime(expires.Add(-15 * time.Minute)))
		d.Spec.TTLSecondsAfterFinished = ptr.To[int32](86400)
	}))
	s = pollStatus(t, f)
	if s.Status != StatusCompleted || s.DownloadURL != "https://storage.example/archive.zip" || s.ExpiresAt != "2026-11-29T12:00:00Z" {
		t.Fatalf("after completion: %+v", s)
	}
	// The stable link outlives the presigned URL: it works until the Download's TTL runs out.
	if s.ArchiveURL != ArchivePath(testJobID) || s.ArchiveExpiresAt != "2026-11-30T11:45:00Z" {
		t.Fatalf("after completion: archiveUrl %q until %q, want %q until 2026-11-30T11:45:00Z", s.ArchiveURL, s.ArchiveExpiresAt, ArchivePath(testJobID))
	}
}

func TestThePolledBytesAreStatusOfTheDownload(t *testing.T) {
	f := storeFacade(true)
	d := testDownload(func(d *downloadv1alpha1.Download) {
		d.Status.Phase, d.Status.Progress, d.Status.BytesDone, d.Status.BytesTotal = downloadv1alpha1.PhaseProcessing, 7, 70, 1000
	})
	f.downloadChanged(d)
	want, err := json.Marshal(statusdoc.Of(d))
	if err != nil {
		t.Fatal(err)
	}
	rec := poll(t, f, testJobID)
	if got := rec.Body.String(); got != string(want)+"\n" {
		t.Errorf("poll body %q, want statusdoc.Of's encoding %q", got, want)
	}
	if ct, cc := rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
	}
}

func TestDeletedDownloadsAnswer404(t *testing.T) {
	for name, deleted := range map[string]func(d *downloadv1alpha1.Download) any{
		"delete": func(d *downloadv1alpha1.Download) any { return d },
		"tombstone": func(d *downloadv1alpha1.Download) any {
			return toolscache.DeletedFinalStateUnknown{Key: "default/" + d.Name, Obj: d}
		},
		"tombstone, key only": func(d *downloadv1alpha1.Download) any {
			return toolscache.DeletedFinalStateUnknown{Key: "default/" + d.Name}
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := storeFacade(true)
			d := testDownload(nil)
			f.downloadChanged(d)
			if code, _ := pollCode(t, f, testJobID); code != http.StatusOK {
				t.Fatalf("before the delete: %d", code)
			}
			f.downloadDeleted(deleted(d))
			if code, errCode := pollCode(t, f, testJobID); code != http.StatusNotFound || errCode != CodeNotFound {
				t.Errorf("after the delete: %d %s, want 404 %s", code, errCode, CodeNotFound)
			}
			if n := f.docs.size(); n != 0 {
				t.Errorf("%d documents left", n)
			}
		})
	}
}

func TestADeletedUnfinishedDownloadPollsAsCancelled(t *testing.T) {
	f := storeFacade(true)
	f.downloadChanged(testDownload(func(d *downloadv1alpha1.Download) {
		d.Status.Phase = downloadv1alpha1.PhaseProcessing
	}))
	// Deleting sets deletionTimestamp; the finalizer keeps the object until the job is cleaned up.
	f.downloadChanged(testDownload(func(d *downloadv1alpha1.Download) {
		d.ResourceVersion = "11"
		d.Status.Phase = downloadv1alpha1.PhaseProcessing
		d.DeletionTimestamp = ptr.To(metav1.Now())
		d.Finalizers = []string{"download.operator.dev/cleanup"}
	}))
	s := pollStatus(t, f)
	if s.Status != StatusFailed || s.Error == nil || s.Error.Code != CodeCancelled {
		t.Errorf("a deleted, unfinished Download polls as %+v, want failed with %s", s, CodeCancelled)
	}

	// A finished job keeps its answer while its Download is being deleted, as statusdoc.Of says.
	f.downloadChanged(testDownload(func(d *downloadv1alpha1.Download) {
		d.ResourceVersion = "12"
		d.Status.Phase, d.Status.DownloadURL = downloadv1alpha1.PhaseCompleted, "https://storage.example/a.zip"
		d.DeletionTimestamp = ptr.To(metav1.Now())
	}))
	if s := pollStatus(t, f); s.Status != StatusCompleted {
		t.Errorf("a deleted, completed Download polls as %+v, want completed", s)
	}
}

func TestPollsBeforeTheSyncBadJobIDsAndUnknownJobs(t *testing.T) {
	f := storeFacade(false)
	f.downloadChanged(testDownload(nil))
	rec := poll(t, f, testJobID)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("before the sync: %d with Retry-After %q, want 503 with 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	f.synced.Store(true)
	if code, errCode := pollCode(t, f, "not-a-uuid"); code != http.StatusBadRequest || errCode != CodeBadRequest {
		t.Errorf("a bad jobId: %d %s, want 400", code, errCode)
	}
	if code, errCode := pollCode(t, f, "00000000-0000-4000-8000-000000000000"); code != http.StatusNotFound || errCode != CodeNotFound {
		t.Errorf("an unknown job: %d %s, want 404", code, errCode)
	}
}

func TestUpperCaseJobIDsFindTheirJob(t *testing.T) {
	f := storeFacade(true)
	f.downloadChanged(testDownload(nil))
	upper := "123E4567-E89B-42D3-A456-426614174000"
	if code, _ := pollCode(t, f, upper); code != http.StatusOK {
		t.Errorf("%s answered %d, want the job %s", upper, code, testJobID)
	}
}

func TestChangesWakeTheJobsWaiters(t *testing.T) {
	f := storeFacade(true)
	changed, stop := f.hub.subscribe(testJobID)
	defer stop()
	for step, event := range []func(){
		func() { f.downloadChanged(testDownload(nil)) },
		func() { f.downloadDeleted(toolscache.DeletedFinalStateUnknown{Key: "default/" + testJobID}) },
	} {
		event()
		select {
		case <-changed:
		default:
			t.Errorf("step %d woke no waiter", step)
		}
	}
}

func TestHeaderKeysAreCanonical(t *testing.T) {
	for _, key := range []string{
		headerContentType, headerCacheControl, headerContentLength, headerRequestID, headerContentTypeOpts,
		headerFrameOptions, headerTransportSec, headerReferrerPolicy, headerAllowOrigin, headerExposeHeaders,
		headerRateLimitLimit, headerRateLimitRemains, headerRateLimitReset, headerTraceparent, headerTracestate,
	} {
		if canonical := http.CanonicalHeaderKey(key); canonical != key {
			t.Errorf("%q is assigned to header maps directly but its canonical form is %q", key, canonical)
		}
	}
}

// TestSharedHeaderValuesSurviveAdd proves that the value slices shared between responses are
// not written through when one response adds a value to its header.
func TestSharedHeaderValuesSurviveAdd(t *testing.T) {
	doc := renderDocument(testDownload(nil))
	limiter := newRateLimiter(1, 1)
	for _, shared := range [][]string{
		valueJSON, valueNoStore, valueNoSniff, valueDeny, valueHSTS, valueNoReferrer, valueAnyOrigin,
		valueExposeHeaders, doc.contentLength, limiter.burstHeader,
	} {
		want := slices.Clone(shared)
		a, b := http.Header{"X-Test": shared}, http.Header{"X-Test": shared}
		a.Add("X-Test", "a")
		b.Add("X-Test", "b")
		if got := a.Values("X-Test"); !slices.Equal(got, append(slices.Clone(want), "a")) {
			t.Errorf("%q: one response's header became %q after another's Add", want, got)
		}
		if !slices.Equal(shared, want) {
			t.Errorf("%q changed to %q", want, shared)
		}
	}
}

func TestMaxConnectionsFlag(t *testing.T) {
	cfg, _, _, err := parseFlags([]string{"--namespace=default"}, io.Discard)
	if err != nil || cfg.MaxConnections != DefaultMaxConnections {
		t.Errorf("default: %d (%v), want %d", cfg.MaxConnections, err, DefaultMaxConnections)
	}
	for arg, want := range map[string]int{"--max-connections=7": 7, "--max-connections=0": 0} {
		cfg, _, _, err := parseFlags([]string{"--namespace=default", arg}, io.Discard)
		if err != nil || cfg.MaxConnections != want {
			t.Errorf("%s: %d (%v), want %d", arg, cfg.MaxConnections, err, want)
		}
	}
	if _, _, _, err := parseFlags([]string{"--namespace=default", "--max-connections=-1"}, io.Discard); err == nil {
		t.Error("--max-connections=-1 was accepted")
	}
}

// TestConnectionsBeyondTheLimitWait serves with a limit of one connection: a second client is
// answered only once the first connection closes.
func TestConnectionsBeyondTheLimitWait(t *testing.T) {
	f := offlineFacade(t, func(c *Config) { c.MaxConnections = 1 })
	ln, err := f.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()
	get := func(c *http.Client) error {
		resp, err := c.Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		return err
	}

	// The first client keeps its connection open (keep-alive) after its request.
	first := &http.Client{Transport: &http.Transport{}}
	if err := get(first); err != nil {
		t.Fatal(err)
	}
	second := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	answered := make(chan error, 1)
	go func() { answered <- get(second) }()
	select {
	case err := <-answered:
		t.Fatalf("a second connection was served while the first was open (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	first.CloseIdleConnections()
	select {
	case err := <-answered:
		if err != nil {
			t.Errorf("the second client: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second client was not served after the first connection closed")
	}
}
