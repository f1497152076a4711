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
	"context"
	"fmt"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PrivilegedPodRejected submits a privileged Pod to the demo namespace as a server-side dry run
// and returns nil only when restricted Pod Security admission refused it.
func PrivilegedPodRejected(ctx context.Context) error {
	privileged := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: e2e-privileged
  namespace: %s
spec:
  hostNetwork: true
  containers:
    - name: c
      image: download-operator:dev
      securityContext:
        privileged: true
        runAsUser: 0
`, Env.Namespace)
	out, err := Kubectl(ctx, privileged, "apply", "--dry-run=server", "-f", "-")
	switch {
	case err == nil:
		return fmt.Errorf("the apiserver admitted a privileged Pod: %s", out)
	case !strings.Contains(err.Error(), "violates PodSecurity") || !strings.Contains(err.Error(), `"restricted`):
		return fmt.Errorf("the privileged Pod was refused, but not by restricted Pod Security: %w", err)
	}
	return nil
}

// The Download resource as `kubectl auth can-i` names it, and its status subresource.
const (
	DownloadsResource      = "downloads.download.operator.dev"
	DownloadStatusResource = DownloadsResource + "/status"
)

// serviceAccountUser is how RBAC names a ServiceAccount of the demo namespace.
func serviceAccountUser(sa string) string {
	return "system:serviceaccount:" + Env.Namespace + ":" + sa
}

// ServiceAccountFlags are the kubectl flags that act as ServiceAccount sa of the demo
// namespace, with the groups its token carries too, so that a grant to all ServiceAccounts (or
// all authenticated users) cannot hide behind --as alone.
func ServiceAccountFlags(sa string) []string {
	return []string{"--as=" + serviceAccountUser(sa), "--as-group=system:serviceaccounts",
		"--as-group=system:serviceaccounts:" + Env.Namespace, "--as-group=system:authenticated"}
}

// CanI asks `kubectl auth can-i` whether ServiceAccount sa may verb resource (a
// "resource.group" or "resource.group/subresource") in namespace.
func CanI(ctx context.Context, sa, verb, resource, namespace string) (bool, error) {
	args := []string{"auth", "can-i", verb, resource}
	if name, sub, ok := strings.Cut(resource, "/"); ok {
		args = []string{"auth", "can-i", verb, name, "--subresource=" + sub}
	}
	args = append(append(args, "--namespace="+namespace), ServiceAccountFlags(sa)...)
	out, err := Kubectl(ctx, "", args...)
	// can-i exits 1 for "no"; anything but a plain yes or no is a broken check.
	switch answer := strings.TrimSpace(out); answer {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	default:
		return false, fmt.Errorf("kubectl auth can-i %s %s as %s answered %q: %v", verb, resource, sa, answer, err)
	}
}

// NamespacePodProblems lists what makes a Pod of the demo namespace fail as proof of restricted
// admission: a field the restricted profile forbids, or a container the kubelet refused to
// start. Pods still starting are problems only when started is true; Pods being deleted are
// skipped, as their state no longer says anything.
func NamespacePodProblems(ctx context.Context, started bool) ([]string, error) {
	var pods corev1.PodList
	if err := K8s.List(ctx, &pods, client.InNamespace(Env.Namespace)); err != nil {
		return nil, fmt.Errorf("listing Pods in %s: %w", Env.Namespace, err)
	}
	var problems []string
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.DeletionTimestamp != nil {
			continue
		}
		for _, p := range podProblems(pod, started) {
			problems = append(problems, "pod "+pod.Name+": "+p)
		}
	}
	GinkgoWriter.Printf("checked %d Pods in %s: %d problems\n", len(pods.Items), Env.Namespace, len(problems))
	return problems, nil
}

// podProblems checks a Pod against the restricted Pod Security Standard on its own (so the check
// does not trust admission alone) and tells whether each container started.
func podProblems(pod *corev1.Pod, started bool) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	spec := &pod.Spec
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		add("uses host namespaces")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			add("mounts hostPath volume %s", v.Name)
		}
	}
	podSC := ptr.Deref(spec.SecurityContext, corev1.PodSecurityContext{})
	containers := slices.Concat(spec.InitContainers, spec.Containers)
	for _, c := range containers {
		sc := ptr.Deref(c.SecurityContext, corev1.SecurityContext{})
		if ptr.Deref(sc.Privileged, false) {
			add("container %s is privileged", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			add("container %s does not set allowPrivilegeEscalation=false", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			add("container %s does not drop ALL capabilities", c.Name)
		} else if extra := slices.DeleteFunc(slices.Clone(sc.Capabilities.Add), func(c corev1.Capability) bool {
			return c == "NET_BIND_SERVICE"
		}); len(extra) > 0 {
			add("container %s adds capabilities %v", c.Name, extra)
		}
		if !ptr.Deref(sc.RunAsNonRoot, ptr.Deref(podSC.RunAsNonRoot, false)) {
			add("container %s may run as root (runAsNonRoot not true)", c.Name)
		}
		if ptr.Deref(sc.RunAsUser, ptr.Deref(podSC.RunAsUser, 1)) == 0 {
			add("container %s runs as UID 0", c.Name)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = podSC.SeccompProfile
		}
		if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault &&
			seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
			add("container %s has no RuntimeDefault or Localhost seccomp profile", c.Name)
		}
	}

	statuses := slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses)
	if started && pod.Status.Phase == corev1.PodPending && len(statuses) == 0 {
		add("still Pending (%s)", pod.Status.Message)
	}
	for _, st := range statuses {
		switch {
		case st.State.Waiting != nil:
			reason := st.State.Waiting.Reason
			if reason == "ContainerCreating" || reason == "PodInitializing" {
				if started {
					add("container %s not started yet (%s)", st.Name, reason)
				}
				continue
			}
			add("container %s waiting: %s: %s", st.Name, reason, st.State.Waiting.Message)
		case st.State.Terminated != nil && st.State.Terminated.StartedAt.IsZero():
			add("container %s never started: %s: %s", st.Name, st.State.Terminated.Reason, st.State.Terminated.Message)
		}
	}
	return problems
}
