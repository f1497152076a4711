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

package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"
	"k8s.io/client-go/util/retry"

	"github.com/download-operator/download-operator/internal/jobreport"
)

// Reporter tells the controller how the worker is doing.
type Reporter interface {
	// Progress is called repeatedly while the archive streams; the worker throttles the calls.
	Progress(ctx context.Context, progress jobreport.Progress) error
	// Result is called once, after the archive is stored.
	Result(ctx context.Context, result jobreport.Result) error
	// Failure is called at most once, before the worker exits non-zero.
	Failure(ctx context.Context, failure jobreport.Failure) error
}

// reportTimeout bounds one report, retries included, so a lost apiserver cannot hold the worker.
const reportTimeout = 10 * time.Second

// JobReporter reports as annotations on the worker's own Job, the only object its RBAC (get and
// patch on jobs) lets it write.
type JobReporter struct {
	jobs batchv1client.JobInterface
	name string
	pod  string
}

var _ Reporter = (*JobReporter)(nil)

// NewJobReporter reports on the Job namespace/name.
func NewJobReporter(clientset kubernetes.Interface, namespace, name string) *JobReporter {
	return &JobReporter{jobs: clientset.BatchV1().Jobs(namespace), name: name}
}

// FromPod makes progress reports name the worker Pod pod, so that the controller can tell them
// from the reports a failed attempt's Pod left on the Job.
func (r *JobReporter) FromPod(pod string) *JobReporter {
	r.pod = pod
	return r
}

// Progress writes jobreport.ProgressAnnotation.
func (r *JobReporter) Progress(ctx context.Context, progress jobreport.Progress) error {
	progress.Pod = r.pod
	return r.annotate(ctx, jobreport.ProgressAnnotation, progress)
}

// Result writes jobreport.ResultAnnotation.
func (r *JobReporter) Result(ctx context.Context, result jobreport.Result) error {
	return r.annotate(ctx, jobreport.ResultAnnotation, result)
}

// Failure writes jobreport.FailureAnnotation.
func (r *JobReporter) Failure(ctx context.Context, failure jobreport.Failure) error {
	return r.annotate(ctx, jobreport.FailureAnnotation, failure)
}

// annotate merge-patches one annotation. A merge patch touches nothing else and needs no
// resourceVersion, so it never conflicts with the Job controller's status updates.
func (r *JobReporter) annotate(ctx context.Context, key string, report any) error {
	value, err := jobreport.Encode(report)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{key: value}},
	})
	if err != nil {
		return fmt.Errorf("encoding patch for %s: %w", key, err)
	}
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	err = retry.OnError(retry.DefaultBackoff, func(err error) bool { return ctx.Err() == nil && retriable(err) }, func() error {
		_, err := r.jobs.Patch(ctx, r.name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("annotating job %s with %s: %w", r.name, key, err)
	}
	return nil
}

// retriable rejects the errors another attempt cannot fix; anything else, network trouble
// included, may be an apiserver restarting.
func retriable(err error) bool {
	return !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err) &&
		!apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err)
}
