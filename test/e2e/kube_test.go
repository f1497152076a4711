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

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
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

// deleteTimeout bounds the finalizer's work on a deleted Download: stop the worker, wait for its
// Pods to go, remove the archive.
const deleteTimeout = 2 * time.Minute

// kubectl runs the real kubectl of the demo against its cluster, in the demo namespace unless
// args name another, and returns its standard output, also when it fails: `kubectl auth can-i`
// answers "no" with exit status 1. The error carries stderr.
func kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	full := append([]string{"--kubeconfig", env.Kubeconfig, "--namespace", env.Namespace}, args...)
	cmd := exec.CommandContext(ctx, env.Kubectl, full...)
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

// helm runs the demo's helm binary against its cluster, in the demo namespace, and returns its
// standard output (warnings go to stderr, which the error carries).
func helm(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"--kubeconfig", env.Kubeconfig, "--namespace", env.Namespace}, args...)
	cmd := exec.CommandContext(ctx, env.Helm, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	GinkgoWriter.Printf("$ helm %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// newDownload is a Download of ids in the demo namespace, capped at bytesPerSecond (0: no cap),
// under a fresh name so that reruns never meet an older object.
func newDownload(prefix string, ids []int64, bytesPerSecond int64) *downloadv1alpha1.Download {
	return &downloadv1alpha1.Download{
		ObjectMeta: metav1.ObjectMeta{
			Name:      prefix + "-" + utilrand.String(6),
			Namespace: env.Namespace,
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

// createDownload creates dl and registers its deletion, waited for, as the spec's cleanup.
func createDownload(ctx context.Context, dl *downloadv1alpha1.Download) {
	GinkgoHelper()
	Expect(k8s.Create(ctx, dl)).To(Succeed(), "creating Download %s", dl.Name)
	GinkgoWriter.Printf("created Download %s/%s: fileIds %v, maxBytesPerSecond %d\n",
		dl.Namespace, dl.Name, dl.Spec.FileIDs, ptr.Deref(dl.Spec.MaxBytesPerSecond, 0))
	cleanupDownload(dl.Name)
}

// cleanupDownload deletes the Download named name when the spec ends, and waits until its
// finalizer released it, so that no spec's worker competes with the next spec's for bandwidth.
func cleanupDownload(name string) {
	DeferCleanup(func(ctx SpecContext) {
		Expect(deleteDownloadAndWait(ctx, name)).To(Succeed())
	}, NodeTimeout(deleteTimeout+30*time.Second))
}

func deleteDownloadAndWait(ctx context.Context, name string) error {
	return deleteDownloadAndWaitIn(ctx, env.Namespace, name)
}

// deleteDownloadAndWaitIn is deleteDownloadAndWait in namespace ns.
func deleteDownloadAndWaitIn(ctx context.Context, ns, name string) error {
	dl := &downloadv1alpha1.Download{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k8s.Delete(ctx, dl); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting Download %s: %w", name, err)
	}
	err := wait.PollUntilContextTimeout(ctx, defaultPoll, deleteTimeout, true, func(ctx context.Context) (bool, error) {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(dl), dl)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("waiting for deleted Download %s to go (finalizers %v): %w", name, dl.Finalizers, err)
	}
	return nil
}

func getDownload(ctx context.Context, name string) (*downloadv1alpha1.Download, error) {
	return getDownloadIn(ctx, env.Namespace, name)
}

// getDownloadIn is getDownload in namespace ns.
func getDownloadIn(ctx context.Context, ns, name string) (*downloadv1alpha1.Download, error) {
	var dl downloadv1alpha1.Download
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &dl); err != nil {
		return nil, fmt.Errorf("getting Download %s: %w", name, err)
	}
	return &dl, nil
}

// conditionTrue reports whether the Download has condition conditionType with status True.
func conditionTrue(dl *downloadv1alpha1.Download, conditionType string) bool {
	return meta.IsStatusConditionTrue(dl.Status.Conditions, conditionType)
}

// waitForComplete waits until the Download completes and returns it. A Download that fails
// instead stops the wait at once, with its reason.
func waitForComplete(ctx context.Context, name string, timeout time.Duration) *downloadv1alpha1.Download {
	GinkgoHelper()
	return waitForCompleteIn(ctx, env.Namespace, name, timeout)
}

// waitForCompleteIn is waitForComplete in namespace ns.
func waitForCompleteIn(ctx context.Context, ns, name string, timeout time.Duration) *downloadv1alpha1.Download {
	GinkgoHelper()
	var dl *downloadv1alpha1.Download
	Eventually(ctx, func(g Gomega) {
		var err error
		dl, err = getDownloadIn(ctx, ns, name)
		g.Expect(err).NotTo(HaveOccurred())
		if failed := meta.FindStatusCondition(dl.Status.Conditions, downloadv1alpha1.ConditionFailed); failed != nil &&
			failed.Status == metav1.ConditionTrue {
			StopTrying(fmt.Sprintf("Download %s failed instead of completing: %s: %s",
				name, failed.Reason, failed.Message)).Now()
		}
		g.Expect(conditionTrue(dl, downloadv1alpha1.ConditionComplete)).To(BeTrue(),
			"Download %s: phase %q, progress %d%%", name, dl.Status.Phase, dl.Status.Progress)
	}).WithTimeout(timeout).Should(Succeed())
	Expect(dl.Status.Phase).To(Equal(downloadv1alpha1.PhaseCompleted))
	Expect(dl.Status.DownloadURL).NotTo(BeEmpty(), "a completed Download carries its URL")
	Expect(dl.Status.Archive).NotTo(BeNil(), "a completed Download describes its archive")
	return dl
}

// workerPods lists the worker Pods of the Download named name, by the labels the controller sets.
func workerPods(ctx context.Context, name string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(env.Namespace),
		client.MatchingLabels{componentLabel: workerComponent, downloadLabel: name}); err != nil {
		return nil, fmt.Errorf("listing worker Pods of %s: %w", name, err)
	}
	return pods.Items, nil
}

// waitForUploadingWorker waits until the Download's worker container runs and the Download
// reports progress, i.e. its archive upload is in flight, and returns that worker Pod.
func waitForUploadingWorker(ctx context.Context, name string) corev1.Pod {
	GinkgoHelper()
	var worker corev1.Pod
	Eventually(ctx, func(g Gomega) {
		dl, err := getDownload(ctx, name)
		g.Expect(err).NotTo(HaveOccurred())
		if dl.Status.Phase == downloadv1alpha1.PhaseCompleted || dl.Status.Phase == downloadv1alpha1.PhaseFailed {
			StopTrying(fmt.Sprintf("Download %s finished (%s) before its upload could be caught in flight",
				name, dl.Status.Phase)).Now()
		}
		g.Expect(dl.Status.Progress).To(BeNumerically(">", 0), "Download %s reports no progress yet", name)
		pods, err := workerPods(ctx, name)
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

func getJob(ctx context.Context, name string) (*batchv1.Job, error) {
	var job batchv1.Job
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: name}, &job); err != nil {
		return nil, fmt.Errorf("getting Job %s: %w", name, err)
	}
	return &job, nil
}

// archiveKeyOf reads the archive key from the worker Job's arguments (the Job carries the
// Download's name). The Download's status names the key only once the archive is complete,
// and the specs that need it watch uploads still in flight.
func archiveKeyOf(ctx context.Context, name string) (string, error) {
	job, err := getJob(ctx, name)
	if err != nil {
		return "", err
	}
	for _, c := range job.Spec.Template.Spec.Containers {
		for _, arg := range c.Args {
			if key, ok := strings.CutPrefix(arg, archiveKeyFlag); ok && key != "" {
				return key, nil
			}
		}
	}
	return "", fmt.Errorf("job %s has no %s argument", name, archiveKeyFlag)
}

// killContainer SIGKILLs a container behind the kubelet's back, as the OOM killer or a node
// fault would: nothing in Kubernetes asked for it, so only the Job's retry can recover.
func killContainer(ctx context.Context, containerStatusID string) error {
	id, ok := strings.CutPrefix(containerStatusID, "containerd://")
	if !ok || id == "" {
		return fmt.Errorf("container id %q is not a containerd one; only containerd clusters are supported",
			containerStatusID)
	}
	var cmd *exec.Cmd
	switch {
	case env.KindCluster != "":
		cmd = exec.CommandContext(ctx, "docker", "exec", env.KindCluster+"-control-plane",
			"ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id)
	case env.ContainerdSock != "":
		cmd = exec.CommandContext(ctx, "ctr", "-a", env.ContainerdSock, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id)
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
