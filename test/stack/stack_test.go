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

package stack_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/test/chartrbac"
	"github.com/download-operator/download-operator/test/stack"
)

// TestStackRunsADownloadEndToEnd proves the harness itself: a Download initiated through the
// facade runs through the controller and the real worker to an archive behind a working URL.
func TestStackRunsADownloadEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{Log: testLog()})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping the stack: %v", err)
		}
	}()
	if err := s.PutSource(ctx, 70000, []byte("hello")); err != nil {
		t.Fatal(err)
	}

	accepted := initiate(t, s, `{"file_ids":[70000]}`)
	done, err := s.RunToCompletion(ctx, accepted.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status.Phase != downloadv1alpha1.PhaseCompleted {
		t.Fatalf("phase %s", done.Status.Phase)
	}
	archive, err := http.Get(done.Status.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(archive.Body)
	_ = archive.Body.Close()
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	// The file, then manifest.json.
	if err != nil || len(zr.File) != 2 {
		t.Fatalf("archive: %v (%d bytes, status %d)", err, len(body), archive.StatusCode)
	}
	if s.Facade.APIRequests() == 0 {
		t.Error("the facade's apiserver requests are not counted")
	}
}

// TestAGrantMissingFromTheChartFailsTheStack proves that the stack holds the controller to the
// chart's RBAC: with the chart's `create` on Jobs taken away, a Download never gets its Job, and
// Stop fails naming the request the apiserver refused. TestStackRunsADownloadEndToEnd is the
// control: with the chart as it is, the same Download runs and Stop finds nothing refused.
func TestAGrantMissingFromTheChartFailsTheStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{
		Log:      testLog(),
		EditRBAC: chartrbac.WithoutGrant(chartrbac.Controller, "batch", "jobs", "create"),
	})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Stop()
		}
	}()
	if err := s.PutSource(ctx, 70000, []byte("hello")); err != nil {
		t.Fatal(err)
	}

	accepted := initiate(t, s, `{"file_ids":[70000]}`)
	waitCtx, cancelWait := context.WithTimeout(ctx, 5*time.Second)
	defer cancelWait()
	if job, err := s.WaitForJob(waitCtx, accepted.JobID); err == nil {
		t.Fatalf("the controller created Job %s without the chart's grant", job.Name)
	}
	stopped = true
	err = s.Stop()
	refusal := "POST /apis/batch/v1/namespaces/" + stack.Namespace + "/jobs"
	if err == nil || !strings.Contains(err.Error(), refusal) {
		t.Fatalf("Stop() = %v, want it to name the refused %s", err, refusal)
	}
}

// initiate posts body to the stack's facade and returns its 202 answer.
func initiate(t *testing.T, s *stack.Stack, body string) facade.InitiateResponse {
	t.Helper()
	resp, err := http.Post(s.Facade.URL+"/v1/download/initiate", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var accepted facade.InitiateResponse
	if err := json.NewDecoder(resp.Body).Decode(&accepted); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("initiate: %d %v", resp.StatusCode, err)
	}
	return accepted
}

func testLog() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}
