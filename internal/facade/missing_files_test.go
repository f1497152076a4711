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
	"slices"
	"testing"

	"github.com/google/uuid"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
)

func TestInitiateTakesTheMissingFilesPolicy(t *testing.T) {
	s := sharedStack(t)
	c := newCaller(t, s.Facade)
	for body, want := range map[string]downloadv1alpha1.MissingFilesPolicy{
		`{"file_ids":[79100]}`:                        downloadv1alpha1.MissingFilesFail,
		`{"file_ids":[79101],"missing_files":"fail"}`: downloadv1alpha1.MissingFilesFail,
		`{"file_ids":[79102],"missing_files":"skip"}`: downloadv1alpha1.MissingFilesSkip,
	} {
		resp := c.postJSON("/v1/download/initiate", body)
		var accepted facade.InitiateResponse
		resp.json(&accepted)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d %s", body, resp.StatusCode, resp.body)
		}
		download, err := s.Download(testContext(t), accepted.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if download.Spec.MissingFiles != want {
			t.Errorf("%s: spec.missingFiles %q, want %q", body, download.Spec.MissingFiles, want)
		}
	}

	before := countDownloads(t, c)
	for _, bad := range []string{`"Skip"`, `"ignore"`, `true`} {
		resp := c.postJSON("/v1/download/initiate", `{"file_ids":[79103],"missing_files":`+bad+`}`)
		if resp.StatusCode != http.StatusBadRequest || resp.errorCode() != facade.CodeBadRequest {
			t.Errorf("missing_files %s: %d %s", bad, resp.StatusCode, resp.body)
		}
	}
	if after := countDownloads(t, c); after != before {
		t.Errorf("refused requests created %d Downloads", after-before)
	}
}

func TestIdempotencyKeyTellsPoliciesApart(t *testing.T) {
	c := newCaller(t, sharedStack(t).Facade)
	key := uuid.NewString()
	c.initiate([]int64{79110, 79111}, "Idempotency-Key", key)
	resp := c.postJSON("/v1/download/initiate", `{"file_ids":[79110,79111],"missing_files":"fail"}`, "Idempotency-Key", key)
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("the default policy spelled out is the same request: %d %s", resp.StatusCode, resp.body)
	}
	resp = c.postJSON("/v1/download/initiate", `{"file_ids":[79110,79111],"missing_files":"skip"}`, "Idempotency-Key", key)
	if resp.StatusCode != http.StatusConflict || resp.errorCode() != facade.CodeIdempotencyConflict {
		t.Errorf("same key, other policy: %d %s", resp.StatusCode, resp.body)
	}
}

// The worker really skips the missing file, and the status document says which it skipped.
func TestSkippedFilesReachTheStatusDocument(t *testing.T) {
	s := sharedStack(t)
	ctx := testContext(t)
	for _, id := range []int64{79120, 79122} {
		if err := s.PutSource(ctx, id, []byte("content of a file that exists")); err != nil {
			t.Fatal(err)
		}
	}
	c := newCaller(t, s.Facade)
	resp := c.postJSON("/v1/download/initiate", `{"file_ids":[79120,79121,79122,79123],"missing_files":"skip"}`)
	var accepted facade.InitiateResponse
	resp.json(&accepted)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("initiate: %d %s", resp.StatusCode, resp.body)
	}
	if _, err := s.RunToCompletion(ctx, accepted.JobID); err != nil {
		t.Fatal(err)
	}
	done := c.eventually(accepted.JobID, hasStatus(facade.StatusCompleted))
	if want := []int64{79121, 79123}; !slices.Equal(done.SkippedFileIDs, want) {
		t.Errorf("skippedFileIds %v, want %v", done.SkippedFileIDs, want)
	}
	if want := "/v1/download/" + accepted.JobID + "/archive"; done.ArchiveURL != want {
		t.Errorf("archiveUrl %q, want %q", done.ArchiveURL, want)
	}
}
