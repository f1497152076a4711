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

package statusdoc

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

var completion = metav1.NewTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600)))

// download is a Download named "job" with fileIDs, changed by each edit.
func download(edits ...func(*downloadv1alpha1.Download)) *downloadv1alpha1.Download {
	d := &downloadv1alpha1.Download{
		ObjectMeta: metav1.ObjectMeta{Name: "job", Namespace: "shop"},
		Spec:       downloadv1alpha1.DownloadSpec{FileIDs: []int64{70000, 70001, 99999}},
	}
	for _, edit := range edits {
		edit(d)
	}
	return d
}

func completed(d *downloadv1alpha1.Download) {
	urlExpires := metav1.NewTime(completion.Add(15 * time.Minute))
	d.Status = downloadv1alpha1.DownloadStatus{
		Phase: downloadv1alpha1.PhaseCompleted, CompletionTime: &completion, Progress: 100,
		DownloadURL: "https://storage.example/x.zip?sig", URLExpiresAt: &urlExpires,
		Archive:        &downloadv1alpha1.ArchiveStatus{Bucket: "archives", Key: "shop/job.zip", Size: 2100, SHA256: strings.Repeat("ab", 32)},
		SkippedFileIDs: []int64{99999},
	}
}

func failedWith(reason, message string) func(*downloadv1alpha1.Download) {
	return func(d *downloadv1alpha1.Download) {
		d.Status.Phase, d.Status.CompletionTime = downloadv1alpha1.PhaseFailed, &completion
		d.Status.Conditions = []metav1.Condition{{Type: downloadv1alpha1.ConditionFailed, Status: metav1.ConditionTrue, Reason: reason, Message: message}}
	}
}

func deleting(d *downloadv1alpha1.Download) { d.DeletionTimestamp = &completion }

// TestOfEachPhase maps a Download of each phase and compares the JSON a client reads.
func TestOfEachPhase(t *testing.T) {
	eta := int64(30)
	for name, tc := range map[string]struct {
		download *downloadv1alpha1.Download
		want     string
	}{
		"new":     {download(), `{"jobId":"job","status":"pending"}`},
		"pending": {download(func(d *downloadv1alpha1.Download) { d.Status.Phase = downloadv1alpha1.PhasePending }), `{"jobId":"job","status":"pending"}`},
		"processing, first attempt": {download(func(d *downloadv1alpha1.Download) {
			d.Status = downloadv1alpha1.DownloadStatus{Phase: downloadv1alpha1.PhaseProcessing, Progress: 40, BytesDone: 400, BytesTotal: 1000, EtaSeconds: &eta}
		}), `{"jobId":"job","status":"processing","progress":40,"bytesDone":400,"bytesTotal":1000,"etaSeconds":30}`},
		"processing, a retry": {download(func(d *downloadv1alpha1.Download) {
			d.Status = downloadv1alpha1.DownloadStatus{Phase: downloadv1alpha1.PhaseProcessing, BytesTotal: 1000, Attempts: 2}
		}), `{"jobId":"job","status":"processing","progress":0,"bytesDone":0,"bytesTotal":1000,"attempts":2}`},
		// completion is 12:00 CET; the default TTL is an hour, and times are in UTC.
		"completed": {download(completed), `{"jobId":"job","status":"completed","downloadUrl":"https://storage.example/x.zip?sig",` +
			`"archiveUrl":"/v1/download/job/archive","archiveExpiresAt":"2026-03-01T12:00:00Z","skippedFileIds":[99999],` +
			`"expiresAt":"2026-03-01T11:15:00Z","size":2100,"sha256":"` + strings.Repeat("ab", 32) + `"}`},
		"completed, being deleted": {download(completed, deleting), `{"jobId":"job","status":"completed","downloadUrl":"https://storage.example/x.zip?sig",` +
			`"archiveUrl":"/v1/download/job/archive","archiveExpiresAt":"2026-03-01T12:00:00Z","skippedFileIds":[99999],` +
			`"expiresAt":"2026-03-01T11:15:00Z","size":2100,"sha256":"` + strings.Repeat("ab", 32) + `"}`},
		"failed": {download(failedWith(downloadv1alpha1.ReasonDeadlineExceeded, "the Job ran past 3600s")),
			`{"jobId":"job","status":"failed","error":{"code":"DeadlineExceeded","message":"preparing the archive took longer than allowed; try again with fewer files"}}`},
		"cancelled while processing": {download(func(d *downloadv1alpha1.Download) { d.Status.Phase = downloadv1alpha1.PhaseProcessing }, deleting),
			`{"jobId":"job","status":"failed","error":{"code":"Cancelled","message":"the download was cancelled"}}`},
		"cancelled while pending": {download(deleting),
			`{"jobId":"job","status":"failed","error":{"code":"Cancelled","message":"the download was cancelled"}}`},
	} {
		got, err := json.Marshal(Of(tc.download))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, tc.want)
		}
	}
}

func TestTerminal(t *testing.T) {
	for status, want := range map[string]bool{Pending: false, Processing: false, Completed: true, Failed: true} {
		if got := (&Document{Status: status}).Terminal(); got != want {
			t.Errorf("Terminal() of %s = %v, want %v", status, got, want)
		}
	}
}

// TestArchiveExpiresAtFollowsTheTTL: the stable link lasts as long as the Download, whose
// ttlSecondsAfterFinished runs from its completion; the presigned URL does not move it.
func TestArchiveExpiresAtFollowsTheTTL(t *testing.T) {
	d := download(completed, func(d *downloadv1alpha1.Download) { d.Spec.TTLSecondsAfterFinished = ptr.To[int32](86400) })
	s := Of(d)
	if s.ArchiveExpiresAt != "2026-03-02T11:00:00Z" {
		t.Errorf("archiveExpiresAt %q with a TTL of a day, want 2026-03-02T11:00:00Z", s.ArchiveExpiresAt)
	}
	if want := d.ExpiresAt().UTC().Format(time.RFC3339); s.ArchiveExpiresAt != want {
		t.Errorf("archiveExpiresAt %q, want the Download's ExpiresAt %q", s.ArchiveExpiresAt, want)
	}
	// Completed always records its completion time; a document without one does not invent an expiry.
	d.Status.CompletionTime = nil
	if s := Of(d); s.ArchiveExpiresAt != "" || s.Status != Completed {
		t.Errorf("without completionTime: %+v", s)
	}
}

// TestFailuresShowFixedTextsNeverTheConditionMessage: the condition's message is for operators;
// only requested ids it names as words of their own come out.
func TestFailuresShowFixedTextsNeverTheConditionMessage(t *testing.T) {
	const internal = `PUT "secret-bucket/archives/x.zip": dial tcp minio.internal:9000: refused`
	for _, tc := range []struct {
		reason, message, wantCode, wantMessage string
	}{
		{downloadv1alpha1.ReasonStorageError, internal, downloadv1alpha1.ReasonStorageError, failureTexts[downloadv1alpha1.ReasonStorageError]},
		{downloadv1alpha1.ReasonSourceNotFound, `no source object in bucket "files" for file ids 99999, 70000 (` + internal + `)`,
			downloadv1alpha1.ReasonSourceNotFound, "files 70000 and 99999 do not exist"},
		{downloadv1alpha1.ReasonSourceNotFound, "no source object for file ids 70001", downloadv1alpha1.ReasonSourceNotFound, "file 70001 does not exist"},
		// Ids inside keys, bucket names and ports are not the client's to see.
		{downloadv1alpha1.ReasonSourceNotFound, "source files/99999 at files-70000 on host:70001 is missing",
			downloadv1alpha1.ReasonSourceNotFound, failureTexts[downloadv1alpha1.ReasonSourceNotFound]},
		// A number the client did not ask for stays out.
		{downloadv1alpha1.ReasonSourceNotFound, "no source object for file ids 12345", downloadv1alpha1.ReasonSourceNotFound,
			failureTexts[downloadv1alpha1.ReasonSourceNotFound]},
		{"SomethingNew", internal, downloadv1alpha1.ReasonBackoffLimitExceeded, failureTexts[downloadv1alpha1.ReasonBackoffLimitExceeded]},
	} {
		s := Of(download(failedWith(tc.reason, tc.message)))
		if s.Status != Failed || s.Error == nil || s.Error.Code != tc.wantCode || s.Error.Message != tc.wantMessage {
			t.Errorf("%s %q: %+v (error %+v), want %s %q", tc.reason, tc.message, s, s.Error, tc.wantCode, tc.wantMessage)
		}
	}
	// Without a Failed condition the job still fails with the generic reason.
	s := Of(download(func(d *downloadv1alpha1.Download) { d.Status.Phase = downloadv1alpha1.PhaseFailed }))
	if s.Error == nil || s.Error.Code != downloadv1alpha1.ReasonBackoffLimitExceeded || s.Error.Message != FailureText(downloadv1alpha1.ReasonBackoffLimitExceeded) {
		t.Errorf("failed without a condition: error %+v", s.Error)
	}
	// Every reason of the closed set has its own text.
	reasons := []string{downloadv1alpha1.ReasonSourceNotFound, downloadv1alpha1.ReasonStorageError,
		downloadv1alpha1.ReasonDeadlineExceeded, downloadv1alpha1.ReasonBackoffLimitExceeded,
		downloadv1alpha1.ReasonNamespaceNotServed, downloadv1alpha1.ReasonResultMissing, downloadv1alpha1.ReasonResultRejected,
		downloadv1alpha1.ReasonArchiveTooLarge}
	var texts []string
	for _, reason := range reasons {
		if FailureText(reason) == "" {
			t.Errorf("no public text for %s", reason)
		}
		texts = append(texts, FailureText(reason))
	}
	slices.Sort(texts)
	if len(slices.Compact(texts)) != len(reasons) {
		t.Errorf("two reasons share a text: %q", texts)
	}
	if FailureText("SomethingNew") != "" {
		t.Error("a reason outside the closed set has a text")
	}
}

func TestMissingFilesText(t *testing.T) {
	ids := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, tc := range []struct {
		ids  []int64
		want string
	}{
		{ids[:1], "file 1 does not exist"},
		{ids[:2], "files 1 and 2 do not exist"},
		{ids[:3], "files 1, 2 and 3 do not exist"},
		{ids[:10], "files 1, 2, 3, 4, 5, 6, 7, 8, 9 and 10 do not exist"},
		{ids, "files 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more do not exist"},
	} {
		if got := missingFilesText(tc.ids); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.ids, got, tc.want)
		}
	}
}

// TestWithoutPresignedURL keeps everything but the URL a holder could use and its expiry.
func TestWithoutPresignedURL(t *testing.T) {
	full := Of(download(completed))
	stripped := full.WithoutPresignedURL()
	if stripped.DownloadURL != "" || stripped.ExpiresAt != "" {
		t.Errorf("WithoutPresignedURL kept %q until %q", stripped.DownloadURL, stripped.ExpiresAt)
	}
	if full.DownloadURL == "" || full.ExpiresAt == "" {
		t.Error("WithoutPresignedURL changed the document it was called on")
	}
	if stripped.ArchiveURL != full.ArchiveURL || stripped.ArchiveExpiresAt != full.ArchiveExpiresAt || stripped.SHA256 != full.SHA256 ||
		!slices.Equal(stripped.SkippedFileIDs, full.SkippedFileIDs) {
		t.Errorf("WithoutPresignedURL dropped more: %+v", stripped)
	}
}

func TestArchivePath(t *testing.T) {
	if got := ArchivePath("123e4567-e89b-42d3-a456-426614174000"); got != "/v1/download/123e4567-e89b-42d3-a456-426614174000/archive" {
		t.Errorf("ArchivePath = %q", got)
	}
}
