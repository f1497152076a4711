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

package worker_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/worker"
)

func TestJobReporterAnnotatesOnlyItsOwnJobWithGetAndPatchRights(t *testing.T) {
	env := kube(t)
	ns, user := workerNamespace(t, env)
	createJob(t, env, ns, "download-abc", map[string]string{"keep": "me"})
	createJob(t, env, ns, "other", nil)
	clientset, err := kubernetes.NewForConfig(user.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The user really holds no more than patch, or this test would prove nothing.
	if _, err := clientset.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("listing Jobs as the worker: %v, want Forbidden", err)
	}
	reporter := worker.NewJobReporter(clientset, ns, "download-abc").FromPod("download-abc-x7k2p")

	progress := jobreport.Progress{BytesDone: 512, BytesTotal: 1024}
	result := jobreport.Result{Bucket: "downloads", Key: "abc.zip", Size: 2048, SHA256: strings.Repeat("ab", 32),
		SkippedFileIDs: []int64{99_998, 99_999}}
	failure := jobreport.Failure{Reason: downloadv1alpha1.ReasonSourceNotFound, Message: "gone", MissingFileIDs: []int64{10_001}}
	for _, report := range []func() error{
		func() error { return reporter.Progress(ctx, jobreport.Progress{BytesDone: 1, BytesTotal: 1024}) },
		func() error { return reporter.Progress(ctx, progress) },
		func() error { return reporter.Result(ctx, result) },
		func() error { return reporter.Failure(ctx, failure) },
	} {
		if err := report(); err != nil {
			t.Fatalf("reporting: %v", err)
		}
	}

	annotations := jobAnnotations(t, env, ns, "download-abc")
	if annotations["keep"] != "me" {
		t.Errorf("the patch dropped an unrelated annotation: %v", annotations)
	}
	var gotProgress jobreport.Progress
	var gotResult jobreport.Result
	var gotFailure jobreport.Failure
	for key, into := range map[string]any{
		jobreport.ProgressAnnotation: &gotProgress,
		jobreport.ResultAnnotation:   &gotResult,
		jobreport.FailureAnnotation:  &gotFailure,
	} {
		if found, err := jobreport.Decode(annotations, key, into); !found || err != nil {
			t.Errorf("annotation %s: found %v, error %v", key, found, err)
		}
	}
	// The report names its Pod, whatever the caller left in the field.
	progress.Pod = "download-abc-x7k2p"
	if gotProgress != progress || !reflect.DeepEqual(gotResult, result) || gotFailure.Reason != failure.Reason ||
		gotFailure.Message != failure.Message || len(gotFailure.MissingFileIDs) != 1 {
		t.Errorf("read back progress %+v, result %+v, failure %+v; want %+v, %+v, %+v",
			gotProgress, gotResult, gotFailure, progress, result, failure)
	}
	if other := jobAnnotations(t, env, ns, "other"); len(other) != 0 {
		t.Errorf("another Job was annotated: %v", other)
	}

	// A missing Job is not retried for ten seconds: NotFound cannot heal.
	err = worker.NewJobReporter(clientset, ns, "missing").Progress(ctx, progress)
	if !apierrors.IsNotFound(err) {
		t.Errorf("reporting on a missing Job: %v, want NotFound", err)
	}
}
