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

// Package jobsim plays the parts of a cluster that envtest lacks around a worker Job: the Job
// controller's status updates, in the order the real one makes them (startTime; SuccessCriteriaMet
// then Complete with completionTime; FailureTarget then Failed), and the worker's report
// annotations. The apiserver validates each transition as it would for the real controller.
// The controller's suite and test/stack both drive Jobs through it.
package jobsim

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/download-operator/download-operator/internal/jobreport"
)

// Driver changes Jobs through Client (an admin), stamping times from Now.
type Driver struct {
	Client client.Client
	Now    func() time.Time
}

// Start is the worker Pod running and ready: startTime, one active and ready Pod.
func (d Driver) Start(ctx context.Context, job *batchv1.Job, startTime time.Time) error {
	return d.UpdateStatus(ctx, job, func(s *batchv1.JobStatus) {
		s.StartTime = ptr.To(metav1.NewTime(startTime))
		s.Active, s.Ready = 1, ptr.To[int32](1)
	})
}

// Complete is the Job controller's reaction to a worker Pod that exited 0, in its two steps:
// SuccessCriteriaMet, then Complete with completionTime.
func (d Driver) Complete(ctx context.Context, job *batchv1.Job) error {
	const message = "Reached expected number of succeeded pods"
	if err := d.UpdateStatus(ctx, job, func(s *batchv1.JobStatus) {
		s.Active, s.Ready, s.Succeeded = 0, ptr.To[int32](0), 1
		s.Conditions = append(s.Conditions, d.condition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, message))
	}); err != nil {
		return err
	}
	return d.UpdateStatus(ctx, job, func(s *batchv1.JobStatus) {
		s.CompletionTime = ptr.To(metav1.NewTime(d.Now()))
		s.Conditions = append(s.Conditions, d.condition(batchv1.JobComplete, batchv1.JobReasonCompletionsReached, message))
	})
}

// Fail is the Job controller failing the Job in its two steps (FailureTarget, then Failed) for
// jobReason, e.g. batchv1.JobReasonPodFailurePolicy after the worker exited 3. failure, when not
// nil, is first reported on the Job as a worker would; nil when the worker already did.
func (d Driver) Fail(ctx context.Context, job *batchv1.Job, failure *jobreport.Failure, jobReason string, failedPods int32) error {
	if failure != nil {
		if err := d.Report(ctx, job, jobreport.FailureAnnotation, failure); err != nil {
			return err
		}
	}
	if err := d.UpdateStatus(ctx, job, func(s *batchv1.JobStatus) {
		s.Active, s.Ready, s.Failed = 0, ptr.To[int32](0), failedPods
		s.Conditions = append(s.Conditions, d.condition(batchv1.JobFailureTarget, jobReason, "job failed: "+jobReason))
	}); err != nil {
		return err
	}
	return d.UpdateStatus(ctx, job, func(s *batchv1.JobStatus) {
		s.Conditions = append(s.Conditions, d.condition(batchv1.JobFailed, jobReason, "job failed: "+jobReason))
	})
}

// UpdateStatus re-reads the Job and writes mutate's change through the status subresource.
func (d Driver) UpdateStatus(ctx context.Context, job *batchv1.Job, mutate func(*batchv1.JobStatus)) error {
	if err := d.Client.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
		return fmt.Errorf("reading Job %s: %w", job.Name, err)
	}
	mutate(&job.Status)
	if err := d.Client.Status().Update(ctx, job); err != nil {
		return fmt.Errorf("updating the status of Job %s: %w", job.Name, err)
	}
	return nil
}

// Report is what the worker does: a merge patch of one report annotation on its own Job.
func (d Driver) Report(ctx context.Context, job *batchv1.Job, key string, report any) error {
	value, err := jobreport.Encode(report)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	if err != nil {
		return fmt.Errorf("encoding the annotation patch: %w", err)
	}
	if err := d.Client.Patch(ctx, job, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("annotating Job %s: %w", job.Name, err)
	}
	return nil
}

func (d Driver) condition(t batchv1.JobConditionType, reason, message string) batchv1.JobCondition {
	now := metav1.NewTime(d.Now())
	return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message,
		LastProbeTime: now, LastTransitionTime: now}
}
