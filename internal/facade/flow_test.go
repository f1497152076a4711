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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/test/stack"
)

func TestJobRunsFromPendingThroughProcessingToCompleted(t *testing.T) {
	s, ctx, c := onSharedStack(t)
	sources := map[int64]string{71000: strings.Repeat("row,value\n", 5000), 71001: "small"}
	for id, content := range sources {
		if err := s.PutSource(ctx, id, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}

	raw := c.postJSON("/v1/download/initiate", `{"file_ids":[71000,71001]}`)
	if raw.StatusCode != http.StatusAccepted {
		t.Fatalf("initiate: %d %s", raw.StatusCode, raw.body)
	}
	var accepted facade.InitiateResponse
	raw.json(&accepted)
	if accepted.Status != facade.StatusPending || accepted.TotalFileIDs != 2 || accepted.EtaSeconds < 1 {
		t.Errorf("initiate answered %+v", accepted)
	}
	if loc := raw.Header.Get("Location"); loc != "/v1/download/status/"+accepted.JobID {
		t.Errorf("Location %q", loc)
	}
	if ra := raw.Header.Get("Retry-After"); ra != "3" {
		t.Errorf("Retry-After %q, want 3", ra)
	}
	events := c.openEvents(accepted.JobID)

	// The first poll, sent at once, already finds the job: initiate waited for the cache.
	if st := c.status(accepted.JobID); st.Status != facade.StatusPending || st.JobID != accepted.JobID {
		t.Fatalf("first poll: %+v", st)
	}
	download, err := s.Download(ctx, accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if download.Labels[facade.ClientLabel] != c.label() || download.Annotations[facade.RequestHashAnnotation] == "" {
		t.Errorf("labels %v annotations %v", download.Labels, download.Annotations)
	}

	job, err := s.WaitForStartedJob(ctx, accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	processing := c.eventually(accepted.JobID, hasStatus(facade.StatusProcessing))
	if processing.Progress == nil || processing.BytesDone == nil || processing.BytesTotal == nil {
		t.Errorf("processing without progress fields: %+v", processing)
	}

	exit, log, err := s.RunWorker(ctx, job)
	if err != nil || exit != 0 {
		t.Fatalf("worker: exit %d, %v: %s", exit, err, log)
	}
	if err := s.CompleteJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	done := c.eventually(accepted.JobID, hasStatus(facade.StatusCompleted))
	if done.DownloadURL == "" || done.Size == nil || len(done.SHA256) != 64 || done.Error != nil {
		t.Fatalf("completed: %+v", done)
	}
	expires, err := time.Parse(time.RFC3339, done.ExpiresAt)
	if err != nil || !expires.After(time.Now()) {
		t.Errorf("expiresAt %q: %v", done.ExpiresAt, err)
	}
	archive, err := http.Get(done.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(archive.Body)
	_ = archive.Body.Close()
	sum := sha256.Sum256(body)
	if archive.StatusCode != http.StatusOK || int64(len(body)) != *done.Size || hex.EncodeToString(sum[:]) != done.SHA256 {
		t.Errorf("archive: %d, %d bytes (status says %d), sha256 %x (status says %s)",
			archive.StatusCode, len(body), *done.Size, sum, done.SHA256)
	}

	// The stream told the same story, in order, and ended after the terminal event.
	var seen []facade.Status
	var lastID string
	for {
		ev, ok := events.next(t, 10*time.Second, false)
		if !ok {
			break
		}
		var st facade.Status
		if err := json.Unmarshal([]byte(ev.Data), &st); err != nil {
			t.Fatalf("event data %q: %v", ev.Data, err)
		}
		if ev.ID == "" || ev.ID == lastID {
			t.Errorf("event %q has no fresh id after %q", ev.ID, lastID)
		}
		lastID = ev.ID
		seen = append(seen, st)
	}
	if len(seen) < 3 {
		t.Fatalf("events %+v: want pending, processing..., completed", seen)
	}
	if seen[0].Status != facade.StatusPending || !reflect.DeepEqual(seen[len(seen)-1], done) && seen[len(seen)-1].Status != facade.StatusCompleted {
		t.Errorf("first event %+v, last %+v", seen[0], seen[len(seen)-1])
	}
	rank := map[string]int{facade.StatusPending: 0, facade.StatusProcessing: 1, facade.StatusCompleted: 2}
	for i := 1; i < len(seen); i++ {
		if rank[seen[i].Status] < rank[seen[i-1].Status] {
			t.Errorf("event %d (%s) after %s", i, seen[i].Status, seen[i-1].Status)
		}
	}
	if !containsStatus(seen, facade.StatusProcessing) {
		t.Errorf("no processing event in %+v", seen)
	}

	// A later initiate learns from completions: the default no longer applies.
	later := newFacade(t, nil)
	if eta := newCaller(t, later).initiate([]int64{71000}).EtaSeconds; eta >= int64(facade.DefaultETA.Seconds()) {
		t.Errorf("etaSeconds %d after a completion that took seconds; want it learned", eta)
	}
}

func containsStatus(seen []facade.Status, status string) bool {
	for _, s := range seen {
		if s.Status == status {
			return true
		}
	}
	return false
}

func TestMissingFileFailsWithSourceNotFound(t *testing.T) {
	s, ctx, c := onSharedStack(t)
	if err := s.PutSource(ctx, 72000, []byte("present")); err != nil {
		t.Fatal(err)
	}
	accepted := c.initiate([]int64{72000, 72999})
	events := c.openEvents(accepted.JobID)

	job, err := s.WaitForStartedJob(ctx, accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	exit, log, err := s.RunWorker(ctx, job)
	if err != nil || exit != 3 {
		t.Fatalf("worker: exit %d (want 3, permanent), %v: %s", exit, err, log)
	}
	// The worker's exit code 3 matches the Job's podFailurePolicy, which fails the Job at once.
	if err := s.FailJob(ctx, job, nil, batchv1.JobReasonPodFailurePolicy, 1); err != nil {
		t.Fatal(err)
	}
	failed := c.eventually(accepted.JobID, hasStatus(facade.StatusFailed))
	if failed.Error == nil || failed.Error.Code != downloadv1alpha1.ReasonSourceNotFound || !strings.Contains(failed.Error.Message, "72999") {
		t.Errorf("failed status %+v (error %+v)", failed, failed.Error)
	}
	var last sseEvent
	for {
		ev, ok := events.next(t, 10*time.Second, false)
		if !ok {
			break
		}
		last = ev
	}
	if !strings.Contains(last.Data, `"code":"SourceNotFound"`) {
		t.Errorf("last event %q", last.Data)
	}
}

func TestCancelRemovesTheDownloadItsJobAndItsArchive(t *testing.T) {
	s, ctx, c := onSharedStack(t)
	if err := s.PutSource(ctx, 73000, []byte("to be cancelled")); err != nil {
		t.Fatal(err)
	}
	accepted := c.initiate([]int64{73000})
	completed, err := s.RunToCompletion(ctx, accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	archive := completed.Status.Archive
	if _, err := s.S3.StatObject(ctx, archive.Bucket, archive.Key, minio.StatObjectOptions{}); err != nil {
		t.Fatalf("the archive should exist before the cancel: %v", err)
	}

	resp := c.do(http.MethodDelete, "/v1/download/"+accepted.JobID, nil)
	var cancelled facade.CancelResponse
	resp.json(&cancelled)
	if resp.StatusCode != http.StatusAccepted || cancelled.JobID != accepted.JobID {
		t.Fatalf("cancel: %d %s", resp.StatusCode, resp.body)
	}
	if err := s.WaitGone(ctx, accepted.JobID); err != nil {
		t.Fatal(err)
	}
	var job batchv1.Job
	if err := s.Admin.Get(ctx, client.ObjectKey{Namespace: stack.Namespace, Name: completed.Status.JobName}, &job); !apierrors.IsNotFound(err) {
		t.Errorf("the Job is still there: %v", err)
	}
	if _, err := s.S3.StatObject(ctx, archive.Bucket, archive.Key, minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		t.Errorf("the archive is still there: %v", err)
	}
	// Once the cache saw the deletion, the job is unknown.
	deadline := time.Now().Add(10 * time.Second)
	for c.do(http.MethodGet, "/v1/download/status/"+accepted.JobID, nil).StatusCode != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatal("status still answers for a cancelled, removed job")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp := c.do(http.MethodDelete, "/v1/download/"+accepted.JobID, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second cancel: %d %s", resp.StatusCode, resp.body)
	}
}

func TestCancellingAnUnfinishedJobEndsItsStreamAsCancelled(t *testing.T) {
	s := sharedStack(t)
	c := newCaller(t, s.Facade)
	accepted := c.initiate([]int64{73500})
	events := c.openEvents(accepted.JobID)
	if ev, _ := events.next(t, 5*time.Second, false); !strings.Contains(ev.Data, `"status":"pending"`) {
		t.Fatalf("first event %q", ev.Data)
	}
	if resp := c.do(http.MethodDelete, "/v1/download/"+accepted.JobID, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", resp.StatusCode, resp.body)
	}
	ev, _ := events.next(t, 10*time.Second, false)
	if !strings.Contains(ev.Data, `"code":"Cancelled"`) {
		t.Errorf("event after the cancel: %q", ev.Data)
	}
	if _, ok := events.next(t, 5*time.Second, false); ok {
		t.Error("the stream goes on after the terminal event")
	}
	if err := s.WaitGone(testContext(t), accepted.JobID); err != nil {
		t.Fatal(err)
	}
}
