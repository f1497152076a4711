//go:build e2e

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

package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// DeleteTimeout bounds the finalizer's work on a deleted Download: stop the worker, wait for its
// Pods to go, remove the archive.
const DeleteTimeout = 2 * time.Minute

// SlowRate keeps a worker busy long enough to be interrupted on purpose: 4 MiB/s makes 128 MiB
// last about 32 s.
const SlowRate = 4 * MiB

// Kubectl runs the real kubectl of the demo against its cluster, in the demo namespace unless
// args name another, and returns its standard output, also when it fails: `kubectl auth can-i`
// answers "no" with exit status 1. The error carries stderr.
func Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	full := append([]string{"--kubeconfig", Env.Kubeconfig, "--namespace", Env.Namespace}, args...)
	cmd := exec.CommandContext(ctx, Env.Kubectl, full...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	GinkgoWriter.Printf("$ kubectl %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s",
			strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Helm runs the demo's helm binary against its cluster, in the demo namespace, and returns its
// standard output (warnings go to stderr, which the error carries).
func Helm(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"--kubeconfig", Env.Kubeconfig, "--namespace", Env.Namespace}, args...)
	cmd := exec.CommandContext(ctx, Env.Helm, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	GinkgoWriter.Printf("$ helm %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// UpgradeRelease upgrades the demo release to the chart of this checkout, keeping every value
// it does not set (--reuse-values), and waits up to timeout for the rollout.
func UpgradeRelease(ctx context.Context, timeout time.Duration, sets ...string) error {
	args := []string{"upgrade", Env.HelmRelease, filepath.Join(RepoRoot, "charts", "download-operator"), "--reuse-values"}
	for _, set := range sets {
		args = append(args, "--set", set)
	}
	_, err := Helm(ctx, append(args, "--wait", "--timeout", timeout.String())...)
	return err
}

// NewDownload is a Download of ids in the demo namespace, capped at bytesPerSecond (0: no cap),
// under a fresh name so that reruns never meet an older object.
func NewDownload(prefix string, ids []int64, bytesPerSecond int64) *downloadv1alpha1.Download {
	return &downloadv1alpha1.Download{
		ObjectMeta: metav1.ObjectMeta{
			Name:      prefix + "-" + utilrand.String(6),
			Namespace: Env.Namespace,
			Labels:    map[string]string{suiteLabel: "true"},
		},
		// The specs that build Downloads here watch, kill or forge for their own worker, and
		// several ask for the same files: each must get a Job of its own.
		Spec: downloadv1alpha1.DownloadSpec{
			FileIDs:           ids,
			MaxBytesPerSecond: ptr.To(bytesPerSecond),
			ReusePolicy:       downloadv1alpha1.ReuseNever,
		},
	}
}

// CreateDownload creates dl and registers its deletion, waited for, as the spec's cleanup.
func CreateDownload(ctx context.Context, dl *downloadv1alpha1.Download) {
	GinkgoHelper()
	Expect(K8s.Create(ctx, dl)).To(Succeed(), "creating Download %s", dl.Name)
	GinkgoWriter.Printf("created Download %s/%s: fileIds %v, maxBytesPerSecond %d\n",
		dl.Namespace, dl.Name, dl.Spec.FileIDs, ptr.Deref(dl.Spec.MaxBytesPerSecond, 0))
	CleanupDownload(dl.Name)
}

// CleanupDownload deletes the Download named name when the spec ends, and waits until its
// finalizer released it, so that no spec's worker competes with the next spec's for bandwidth.
func CleanupDownload(name string) { CleanupDownloadIn(Env.Namespace, name) }

// CleanupDownloadIn is CleanupDownload in namespace ns.
func CleanupDownloadIn(ns, name string) {
	DeferCleanup(func(ctx SpecContext) {
		Expect(DeleteDownloadAndWaitIn(ctx, ns, name)).To(Succeed())
	}, NodeTimeout(DeleteTimeout+30*time.Second))
}

// DeleteDownloadAndWait deletes the Download named name and waits until its finalizer released it.
func DeleteDownloadAndWait(ctx context.Context, name string) error {
	return DeleteDownloadAndWaitIn(ctx, Env.Namespace, name)
}

// DeleteDownloadAndWaitIn is DeleteDownloadAndWait in namespace ns.
func DeleteDownloadAndWaitIn(ctx context.Context, ns, name string) error {
	return DeleteAndWait(ctx, &downloadv1alpha1.Download{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		DeleteTimeout)
}

// DeleteAndWait deletes obj, if it still exists, and waits up to timeout until it is gone, its
// finalizers done.
func DeleteAndWait(ctx context.Context, obj client.Object, timeout time.Duration) error {
	kind := reflect.TypeOf(obj).Elem().Name()
	if err := K8s.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting %s %s: %w", kind, obj.GetName(), err)
	}
	err := wait.PollUntilContextTimeout(ctx, DefaultPoll, timeout, true, func(ctx context.Context) (bool, error) {
		err := K8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("waiting for deleted %s %s to go (finalizers %v): %w", kind, obj.GetName(), obj.GetFinalizers(), err)
	}
	return nil
}

// GetDownload gets the Download named name from the demo namespace.
func GetDownload(ctx context.Context, name string) (*downloadv1alpha1.Download, error) {
	return GetDownloadIn(ctx, Env.Namespace, name)
}

// GetDownloadIn is GetDownload in namespace ns.
func GetDownloadIn(ctx context.Context, ns, name string) (*downloadv1alpha1.Download, error) {
	var dl downloadv1alpha1.Download
	if err := K8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &dl); err != nil {
		return nil, fmt.Errorf("getting Download %s: %w", name, err)
	}
	return &dl, nil
}

// Finished reports whether the Download reached a phase it never leaves.
func Finished(dl *downloadv1alpha1.Download) bool {
	return dl.Status.Phase == downloadv1alpha1.PhaseCompleted || dl.Status.Phase == downloadv1alpha1.PhaseFailed
}

// ConditionTrue reports whether the Download has condition conditionType with status True.
func ConditionTrue(dl *downloadv1alpha1.Download, conditionType string) bool {
	return meta.IsStatusConditionTrue(dl.Status.Conditions, conditionType)
}

// WaitForComplete waits until the Download completes and returns it. A Download that fails
// instead stops the wait at once, with its reason.
func WaitForComplete(ctx context.Context, name string, timeout time.Duration) *downloadv1alpha1.Download {
	GinkgoHelper()
	return WaitForCompleteIn(ctx, Env.Namespace, name, timeout)
}

// WaitForCompleteIn is WaitForComplete in namespace ns.
func WaitForCompleteIn(ctx context.Context, ns, name string, timeout time.Duration) *downloadv1alpha1.Download {
	GinkgoHelper()
	var dl *downloadv1alpha1.Download
	Eventually(ctx, func(g Gomega) {
		var err error
		dl, err = GetDownloadIn(ctx, ns, name)
		g.Expect(err).NotTo(HaveOccurred())
		if failed := meta.FindStatusCondition(dl.Status.Conditions, downloadv1alpha1.ConditionFailed); failed != nil &&
			failed.Status == metav1.ConditionTrue {
			StopTrying(fmt.Sprintf("Download %s failed instead of completing: %s: %s",
				name, failed.Reason, failed.Message)).Now()
		}
		g.Expect(ConditionTrue(dl, downloadv1alpha1.ConditionComplete)).To(BeTrue(),
			"Download %s: phase %q, progress %d%%", name, dl.Status.Phase, dl.Status.Progress)
	}).WithTimeout(timeout).Should(Succeed())
	Expect(dl.Status.Phase).To(Equal(downloadv1alpha1.PhaseCompleted))
	Expect(dl.Status.DownloadURL).NotTo(BeEmpty(), "a completed Download carries its URL")
	Expect(dl.Status.Archive).NotTo(BeNil(), "a completed Download describes its archive")
	return dl
}

// WorkerPods lists the worker Pods of the Download named name, by the labels the controller sets.
func WorkerPods(ctx context.Context, name string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := ListInNamespace(ctx, &pods, "worker Pods of "+name, client.MatchingLabels{ComponentLabel: WorkerComponent, DownloadLabel: name})
	return pods.Items, err
}

// ListInNamespace lists into list the objects of its kind in the demo namespace that carry
// labels; what names them in the error.
func ListInNamespace(ctx context.Context, list client.ObjectList, what string, labels client.MatchingLabels) error {
	if err := K8s.List(ctx, list, client.InNamespace(Env.Namespace), labels); err != nil {
		return fmt.Errorf("listing %s: %w", what, err)
	}
	return nil
}

// WaitForUploadingWorker waits until the Download's worker container runs and the Download
// reports progress, i.e. its archive upload is in flight, and returns that worker Pod.
func WaitForUploadingWorker(ctx context.Context, name string) corev1.Pod {
	GinkgoHelper()
	var worker corev1.Pod
	Eventually(ctx, func(g Gomega) {
		dl, err := GetDownload(ctx, name)
		g.Expect(err).NotTo(HaveOccurred())
		if Finished(dl) {
			StopTrying(fmt.Sprintf("Download %s finished (%s) before its upload could be caught in flight",
				name, dl.Status.Phase)).Now()
		}
		g.Expect(dl.Status.Progress).To(BeNumerically(">", 0), "Download %s reports no progress yet", name)
		pods, err := WorkerPods(ctx, name)
		g.Expect(err).NotTo(HaveOccurred())
		var running []corev1.Pod
		for _, p := range pods {
			statuses := p.Status.ContainerStatuses
			if p.DeletionTimestamp == nil && len(statuses) > 0 && statuses[0].State.Running != nil {
				running = append(running, p)
			}
		}
		g.Expect(running).To(HaveLen(1), "exactly one running worker Pod for %s", name)
		worker = running[0]
	}).Should(Succeed())
	GinkgoWriter.Printf("worker Pod %s is uploading\n", worker.Name)
	return worker
}

// GetJob gets the worker Job of the Download named name (the Job carries its name).
func GetJob(ctx context.Context, name string) (*batchv1.Job, error) {
	var job batchv1.Job
	if err := K8s.Get(ctx, client.ObjectKey{Namespace: Env.Namespace, Name: name}, &job); err != nil {
		return nil, fmt.Errorf("getting Job %s: %w", name, err)
	}
	return &job, nil
}

// ArchiveKeyOf reads the archive key from the worker Job's arguments (the Job carries the
// Download's name). The Download's status names the key only once the archive is complete,
// and the specs that need it watch uploads still in flight.
func ArchiveKeyOf(ctx context.Context, name string) (string, error) {
	job, err := GetJob(ctx, name)
	if err != nil {
		return "", err
	}
	if key, ok := JobArchiveKey(job); ok {
		return key, nil
	}
	return "", fmt.Errorf("job %s has no %s argument", name, ArchiveKeyFlag)
}

// JobArchiveKey is the archive key a worker Job was told (ArchiveKeyFlag in its arguments).
func JobArchiveKey(job *batchv1.Job) (string, bool) {
	for _, c := range job.Spec.Template.Spec.Containers {
		for _, arg := range c.Args {
			if key, ok := strings.CutPrefix(arg, ArchiveKeyFlag); ok && key != "" {
				return key, true
			}
		}
	}
	return "", false
}

// KillContainer SIGKILLs a container behind the kubelet's back, as the OOM killer or a node
// fault would: nothing in Kubernetes asked for it, so only the Job's retry can recover.
func KillContainer(ctx context.Context, containerStatusID string) error {
	id, ok := strings.CutPrefix(containerStatusID, "containerd://")
	if !ok || id == "" {
		return fmt.Errorf("container id %q is not a containerd one; only containerd clusters are supported",
			containerStatusID)
	}
	var cmd *exec.Cmd
	switch {
	case Env.KindCluster != "":
		cmd = exec.CommandContext(ctx, "docker", "exec", Env.KindCluster+"-control-plane",
			"ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id)
	case Env.ContainerdSock != "":
		cmd = exec.CommandContext(ctx, "ctr", "-a", Env.ContainerdSock, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id)
	default:
		return errors.New("the demo environment names neither CONTAINERD_SOCK nor KIND_CLUSTER, " +
			"so no container can be killed")
	}
	GinkgoWriter.Printf("$ %s\n", strings.Join(cmd.Args, " "))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("killing container %s: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ComponentPods lists the operator's Pods of component (controller or facade).
func ComponentPods(ctx context.Context, component string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := ListInNamespace(ctx, &pods, component+" Pods", client.MatchingLabels{NameLabel: AppName, ComponentLabel: component}); err != nil {
		return nil, err
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	return pods.Items, nil
}

// WaitForDeploymentReady waits until the Deployment's current generation is rolled out with
// every replica ready.
func WaitForDeploymentReady(ctx context.Context, name string, timeout time.Duration) {
	GinkgoHelper()
	Eventually(ctx, func(g Gomega) {
		var dep appsv1.Deployment
		g.Expect(K8s.Get(ctx, client.ObjectKey{Namespace: Env.Namespace, Name: name}, &dep)).To(Succeed())
		g.Expect(deploymentReady(&dep)).To(Succeed())
	}).WithTimeout(timeout).Should(Succeed())
}

// deploymentReady is nil when the Deployment's current generation is rolled out and every
// desired replica is ready and available, with no surplus old ones.
func deploymentReady(dep *appsv1.Deployment) error {
	want := ptr.Deref(dep.Spec.Replicas, 1)
	st := dep.Status
	switch {
	case st.ObservedGeneration < dep.Generation:
		return fmt.Errorf("deployment %s: generation %d not observed yet (%d)",
			dep.Name, dep.Generation, st.ObservedGeneration)
	case st.Replicas != want || st.UpdatedReplicas != want || st.ReadyReplicas != want || st.AvailableReplicas != want:
		return fmt.Errorf("deployment %s: want %d replicas, have %d (updated %d, ready %d, available %d)",
			dep.Name, want, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas)
	}
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			if c.Status != corev1.ConditionTrue {
				return fmt.Errorf("deployment %s: Available=%s: %s", dep.Name, c.Status, c.Message)
			}
			return nil
		}
	}
	return fmt.Errorf("deployment %s has no Available condition", dep.Name)
}
