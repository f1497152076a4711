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

package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/controller"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/tracing"
	"github.com/download-operator/download-operator/internal/worker"
	"github.com/download-operator/download-operator/test/jobsim"
)

// pollInterval is how often the Wait* helpers look; the apiserver is local and cheap to ask.
const pollInterval = 50 * time.Millisecond

// Download reads a Download (a jobId) from the apiserver, bypassing every cache.
func (s *Stack) Download(ctx context.Context, name string) (*downloadv1alpha1.Download, error) {
	var d downloadv1alpha1.Download
	if err := s.Admin.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: name}, &d); err != nil {
		return nil, fmt.Errorf("getting Download %s: %w", name, err)
	}
	return &d, nil
}

// WaitForPhase waits until the Download reaches phase and returns it.
func (s *Stack) WaitForPhase(ctx context.Context, name string, phase downloadv1alpha1.DownloadPhase) (*downloadv1alpha1.Download, error) {
	var d *downloadv1alpha1.Download
	err := s.poll(ctx, func(ctx context.Context) (bool, error) {
		var err error
		if d, err = s.Download(ctx, name); err != nil {
			return false, nil
		}
		return d.Status.Phase == phase, nil
	})
	if err != nil {
		return d, fmt.Errorf("waiting for Download %s to be %s: %w", name, phase, err)
	}
	return d, nil
}

// WaitGone waits until the Download no longer exists: its finalizer has run.
func (s *Stack) WaitGone(ctx context.Context, name string) error {
	err := s.poll(ctx, func(ctx context.Context) (bool, error) {
		var d downloadv1alpha1.Download
		err := s.Admin.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: name}, &d)
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for Download %s to go: %w", name, err)
	}
	return nil
}

// WaitForJob waits for the worker Job the controller creates for a Download and returns it.
func (s *Stack) WaitForJob(ctx context.Context, downloadName string) (*batchv1.Job, error) {
	var job *batchv1.Job
	err := s.poll(ctx, func(ctx context.Context) (bool, error) {
		var jobs batchv1.JobList
		if err := s.Admin.List(ctx, &jobs, client.InNamespace(Namespace),
			client.MatchingLabels{controller.DownloadNameLabel: downloadName}); err != nil {
			return false, nil
		}
		if len(jobs.Items) == 0 {
			return false, nil
		}
		job = &jobs.Items[0]
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the Job of Download %s: %w", downloadName, err)
	}
	return job, nil
}

// StartJob is the Job controller seeing the worker Pod start and become ready: startTime now,
// one active and ready Pod. The controller then reports the Download as processing.
func (s *Stack) StartJob(ctx context.Context, job *batchv1.Job) error {
	return s.jobs().Start(ctx, job, time.Now())
}

// WaitForStartedJob waits for the worker Job of a Download and starts it (StartJob), for tests
// that play what its worker then does.
func (s *Stack) WaitForStartedJob(ctx context.Context, downloadName string) (*batchv1.Job, error) {
	job, err := s.WaitForJob(ctx, downloadName)
	if err != nil {
		return nil, err
	}
	if err := s.StartJob(ctx, job); err != nil {
		return nil, err
	}
	return job, nil
}

// jobs drives Jobs as the Job controller and the worker would (test/jobsim).
func (s *Stack) jobs() jobsim.Driver { return jobsim.Driver{Client: s.Admin, Now: time.Now} }

// RunWorker is the kubelet running the Job's Pod: `download-operator worker` in-process, with the
// container's own arguments plus --kubeconfig of the ServiceAccount the Pod names, which must be
// the chart's worker ServiceAccount in the Job's namespace and holds only the chart's RBAC, and
// the environment the Pod would get, resolved from the container's env
// (the downward API namespace and the worker credential Secret's keys). The variables stay set in this
// process until Stop. It returns the worker's exit code and its log; err is only about running it.
func (s *Stack) RunWorker(ctx context.Context, job *batchv1.Job) (exit int, log string, err error) {
	if len(job.Spec.Template.Spec.Containers) != 1 {
		return 0, "", fmt.Errorf("job %s has %d containers, want 1", job.Name, len(job.Spec.Template.Spec.Containers))
	}
	container := job.Spec.Template.Spec.Containers[0]
	if len(container.Args) == 0 || container.Args[0] != "worker" {
		return 0, "", fmt.Errorf("job %s does not run the worker: args %q", job.Name, container.Args)
	}
	kubeconfig, err := s.workerKubeconfig(job)
	if err != nil {
		return 0, "", err
	}
	if err := s.setPodEnv(ctx, job.Namespace, job.Name, container.Env); err != nil {
		return 0, "", err
	}
	var stderr bytes.Buffer
	exit = worker.Command(ctx, append(container.Args[1:], "--kubeconfig="+kubeconfig), &stderr)
	return exit, stderr.String(), nil
}

// setPodEnv resolves the container's env as the kubelet would and sets it in this process.
func (s *Stack) setPodEnv(ctx context.Context, namespace, jobName string, env []corev1.EnvVar) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A Pod starts without the variables an earlier Job set in this process: an earlier
	// TRACEPARENT would put this worker into another Download's trace.
	for _, name := range []string{tracing.EnvTraceparent, tracing.EnvTracestate} {
		if !slices.ContainsFunc(env, func(e corev1.EnvVar) bool { return e.Name == name }) {
			s.saveEnv(name)
			_ = os.Unsetenv(name)
		}
	}
	for _, e := range env {
		// Go runtime settings such as GOMEMLIMIT tune the worker's own process; here that is the
		// test binary, which is already running.
		if strings.HasPrefix(e.Name, "GO") {
			continue
		}
		value := e.Value
		switch from := e.ValueFrom; {
		case from == nil:
		case from.FieldRef != nil && from.FieldRef.FieldPath == "metadata.namespace":
			value = namespace
		case from.FieldRef != nil && from.FieldRef.FieldPath == "metadata.name":
			// The Job controller names its Pods <job>-<random>; one name per RunWorker call.
			value = jobName + "-" + utilrand.String(5)
		case from.SecretKeyRef != nil:
			// The credential Secret follows its Job by moments; the kubelet waits for it too.
			var secret corev1.Secret
			key := client.ObjectKey{Namespace: namespace, Name: from.SecretKeyRef.Name}
			if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
				err := s.Admin.Get(ctx, key, &secret)
				return err == nil, client.IgnoreNotFound(err)
			}); err != nil {
				return fmt.Errorf("reading Secret %s for env %s: %w", from.SecretKeyRef.Name, e.Name, err)
			}
			raw, ok := secret.Data[from.SecretKeyRef.Key]
			if !ok {
				return fmt.Errorf("secret %s has no key %s for env %s", from.SecretKeyRef.Name, from.SecretKeyRef.Key, e.Name)
			}
			value = string(raw)
		default:
			return fmt.Errorf("env %s: unsupported source %+v", e.Name, from)
		}
		s.saveEnv(e.Name)
		if err := os.Setenv(e.Name, value); err != nil {
			return fmt.Errorf("setting env %s: %w", e.Name, err)
		}
	}
	return nil
}

// saveEnv remembers the variable's value from before the first Job changed it, for restoreEnv.
func (s *Stack) saveEnv(name string) {
	if _, saved := s.savedEnv[name]; saved {
		return
	}
	if old, ok := os.LookupEnv(name); ok {
		s.savedEnv[name] = &old
	} else {
		s.savedEnv[name] = nil
	}
}

func (s *Stack) restoreEnv() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, old := range s.savedEnv {
		if old == nil {
			_ = os.Unsetenv(name)
		} else {
			_ = os.Setenv(name, *old)
		}
	}
	s.savedEnv = map[string]*string{}
}

// CompleteJob is the Job controller's reaction to a worker Pod that exited 0, in its two steps:
// SuccessCriteriaMet, then Complete with completionTime.
func (s *Stack) CompleteJob(ctx context.Context, job *batchv1.Job) error {
	return s.jobs().Complete(ctx, job)
}

// FailJob is the Job controller failing the Job in its two steps (FailureTarget, then Failed)
// for jobReason, e.g. batchv1.JobReasonPodFailurePolicy after the worker exited 3. failure, when
// not nil, is first reported on the Job as a worker would; pass nil when RunWorker already did.
func (s *Stack) FailJob(ctx context.Context, job *batchv1.Job, failure *jobreport.Failure, jobReason string, failedPods int32) error {
	return s.jobs().Fail(ctx, job, failure, jobReason, failedPods)
}

// RunToCompletion plays a Download's whole happy path: it waits for the Job, starts it, runs the
// real worker, completes the Job and waits until the Download is Completed.
func (s *Stack) RunToCompletion(ctx context.Context, name string) (*downloadv1alpha1.Download, error) {
	job, err := s.WaitForStartedJob(ctx, name)
	if err != nil {
		return nil, err
	}
	exit, log, err := s.RunWorker(ctx, job)
	if err != nil {
		return nil, err
	}
	if exit != 0 {
		return nil, fmt.Errorf("worker of %s exited %d: %s", name, exit, log)
	}
	if err := s.CompleteJob(ctx, job); err != nil {
		return nil, err
	}
	return s.WaitForPhase(ctx, name, downloadv1alpha1.PhaseCompleted)
}

func (s *Stack) poll(ctx context.Context, condition wait.ConditionWithContextFunc) error {
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, condition)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("gave up: %w", err)
	}
	return err
}
