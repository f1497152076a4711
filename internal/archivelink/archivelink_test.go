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

package archivelink_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/archivelink"
	"github.com/download-operator/download-operator/internal/storage"
)

// The end-to-end behaviour of a link (real MinIO, ETag, Range, Content-Disposition) is tested
// through the facade on the whole stack (internal/facade, internal/cli); these tests cover what
// only a moved clock or a hand-written status can reach.

const (
	served  = "downloads"
	bucket  = "archives"
	jobName = "123e4567-e89b-42d3-a456-426614174000"
)

var completedAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// completed is a Download completed at completedAt with a TTL of ttl seconds.
func completed(ttl int32) *downloadv1alpha1.Download {
	return &downloadv1alpha1.Download{
		ObjectMeta: metav1.ObjectMeta{Namespace: served, Name: jobName},
		Spec:       downloadv1alpha1.DownloadSpec{FileIDs: []int64{70000}, TTLSecondsAfterFinished: ptr.To(ttl)},
		Status: downloadv1alpha1.DownloadStatus{
			Phase:          downloadv1alpha1.PhaseCompleted,
			CompletionTime: ptr.To(metav1.NewTime(completedAt)),
			Archive:        &downloadv1alpha1.ArchiveStatus{Bucket: bucket, Key: served + "/" + jobName + ".zip", Size: 10, SHA256: strings.Repeat("a", 64)},
		},
	}
}

// serve answers one request to the handler over objects, at the clock's time.
func serve(t *testing.T, now time.Time, path string, objects ...*downloadv1alpha1.Download) *httptest.ResponseRecorder {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := downloadv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	builder := fake.NewClientBuilder().WithScheme(scheme)
	for _, d := range objects {
		builder = builder.WithObjects(d)
	}
	// Presigning is computed locally; nothing listens at this endpoint, and nothing needs to.
	store, err := storage.New(storage.Config{Endpoint: "127.0.0.1:1", PublicURL: "https://storage.example", AccessKey: "id", SecretKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	h := archivelink.New(builder.Build(), store, sets.New(served), bucket)
	h.Clock = clocktesting.NewFakePassiveClock(now)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var answer archivelink.ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatalf("%d %q is not an error document: %v", rec.Code, rec.Body, err)
	}
	return answer.Error.Code
}

func TestLinkIsSignedForAtMostFiveMinutesAndNeverPastTheExpiry(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ttl      int32
		after    time.Duration
		validity int
	}{
		{"long before the expiry", 3600, time.Minute, 300},
		{"90.5 s before the expiry", 3600, time.Hour - 90*time.Second - 500*time.Millisecond, 90},
		{"1 s before the expiry", 60, 59 * time.Second, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := completedAt.Add(tc.after)
			rec := serve(t, now, archivelink.Path(served, jobName, ""), completed(tc.ttl))
			if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("%d %s (Cache-Control %q)", rec.Code, rec.Body, rec.Header().Get("Cache-Control"))
			}
			var link archivelink.Link
			if err := json.Unmarshal(rec.Body.Bytes(), &link); err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(link.URL)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if u.Host != "storage.example" || u.Path != "/"+bucket+"/"+served+"/"+jobName+".zip" {
				t.Errorf("signed %s, want the archive of the Download's status on the public endpoint", u)
			}
			if got := q.Get("X-Amz-Expires"); got != strconv.Itoa(tc.validity) {
				t.Errorf("X-Amz-Expires %s, want %d", got, tc.validity)
			}
			if want := now.Add(time.Duration(tc.validity) * time.Second).UTC().Format(time.RFC3339); link.ExpiresAt != want {
				t.Errorf("expiresAt %s, want %s", link.ExpiresAt, want)
			}
			if got := q.Get("response-content-disposition"); got != `attachment; filename="download-`+jobName+`.zip"` {
				t.Errorf("content disposition %q", got)
			}
		})
	}
	rec := serve(t, completedAt, archivelink.Path(served, jobName, "my-files.zip"), completed(3600))
	var link archivelink.Link
	if err := json.Unmarshal(rec.Body.Bytes(), &link); err != nil || !strings.Contains(link.URL, "filename%3D%22my-files.zip%22") {
		t.Errorf("chosen filename: %d %s (%v)", rec.Code, rec.Body, err)
	}
}

func TestLinkRefusals(t *testing.T) {
	expired := completed(60)
	deleting := completed(3600)
	deleting.DeletionTimestamp = ptr.To(metav1.NewTime(completedAt))
	deleting.Finalizers = []string{downloadv1alpha1.CleanupFinalizer}
	elsewhere := completed(3600)
	elsewhere.Status.Archive.Bucket = "files"
	pending := completed(3600)
	pending.Status = downloadv1alpha1.DownloadStatus{Phase: downloadv1alpha1.PhasePending}
	processing := completed(3600)
	processing.Status = downloadv1alpha1.DownloadStatus{Phase: downloadv1alpha1.PhaseProcessing}
	failed := completed(3600)
	failed.Status = downloadv1alpha1.DownloadStatus{Phase: downloadv1alpha1.PhaseFailed, CompletionTime: ptr.To(metav1.NewTime(completedAt))}
	cancelled := completed(3600)
	cancelled.Status = downloadv1alpha1.DownloadStatus{Phase: downloadv1alpha1.PhaseProcessing}
	cancelled.DeletionTimestamp, cancelled.Finalizers = deleting.DeletionTimestamp, deleting.Finalizers
	minute := completedAt.Add(time.Minute)

	for _, tc := range []struct {
		name     string
		now      time.Time
		path     string
		download *downloadv1alpha1.Download
		status   int
		code     string
	}{
		{"past the TTL", completedAt.Add(time.Minute), archivelink.Path(served, jobName, ""), expired, http.StatusGone, archivelink.CodeExpired},
		{"under a second before the TTL", completedAt.Add(59*time.Second + 1), archivelink.Path(served, jobName, ""), expired, http.StatusGone, archivelink.CodeExpired},
		{"being deleted", minute, archivelink.Path(served, jobName, ""), deleting, http.StatusGone, archivelink.CodeExpired},
		{"pending", minute, archivelink.Path(served, jobName, ""), pending, http.StatusNotFound, archivelink.CodePending},
		{"processing", minute, archivelink.Path(served, jobName, ""), processing, http.StatusNotFound, archivelink.CodeProcessing},
		{"failed", minute, archivelink.Path(served, jobName, ""), failed, http.StatusNotFound, archivelink.CodeFailed},
		{"cancelled before it finished", minute, archivelink.Path(served, jobName, ""), cancelled, http.StatusNotFound, archivelink.CodeFailed},
		{"an archive outside the archive bucket", minute, archivelink.Path(served, jobName, ""), elsewhere, http.StatusNotFound, archivelink.CodeNotFound},
		{"no such Download", minute, archivelink.Path(served, "223e4567-e89b-42d3-a456-426614174000", ""), completed(3600), http.StatusNotFound, archivelink.CodeNotFound},
		{"a namespace not served", minute, archivelink.Path("kube-system", jobName, ""), completed(3600), http.StatusNotFound, archivelink.CodeNotFound},
		{"a name no Download can have", minute, "/v1/archives/" + served + "/Not_A_Name", completed(3600), http.StatusNotFound, archivelink.CodeNotFound},
		{"a bad filename", minute, archivelink.Path(served, jobName, "x.tar"), completed(3600), http.StatusBadRequest, archivelink.CodeBadRequest},
		{"an empty filename", minute, "/v1/archives/" + served + "/" + jobName + "?filename=", completed(3600), http.StatusBadRequest, archivelink.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(t, tc.now, tc.path, tc.download)
			if rec.Code != tc.status || errorCode(t, rec) != tc.code {
				t.Errorf("%d %s, want %d %s", rec.Code, rec.Body, tc.status, tc.code)
			}
			if strings.Contains(rec.Body.String(), "http") || strings.Contains(rec.Body.String(), bucket) {
				t.Errorf("a refusal leaks a URL or the bucket: %s", rec.Body)
			}
		})
	}
}

func TestValidFileName(t *testing.T) {
	for name, want := range map[string]bool{
		"download-1.zip":                  true,
		"A_b.c-9.zip":                     true,
		".zip":                            true,
		strings.Repeat("a", 124) + ".zip": true,
		strings.Repeat("a", 125) + ".zip": false,
		"":                                false,
		"zip":                             false,
		"a.ZIP":                           false,
		"a.zip.exe":                       false,
		"a/b.zip":                         false,
		`a\b.zip`:                         false,
		"a b.zip":                         false,
		`a".zip`:                          false,
		"a;b.zip":                         false,
		"é.zip":                           false,
		"a\r\nb.zip":                      false,
	} {
		if got := archivelink.ValidFileName(name); got != want {
			t.Errorf("ValidFileName(%q) = %v, want %v", name, got, want)
		}
	}
}
