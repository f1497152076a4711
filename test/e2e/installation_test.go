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
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var _ = Describe("Installation", func() {
	It("runs the controller and the facade, ready, in a namespace enforcing restricted", func(ctx SpecContext) {
		for _, name := range []string{controllerDeployment, facadeDeployment} {
			By("waiting for Deployment " + name + " to be Available with every replica ready")
			Eventually(ctx, func(g Gomega) {
				var dep appsv1.Deployment
				g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: name}, &dep)).To(Succeed())
				g.Expect(deploymentReady(&dep)).To(Succeed())
			}).Should(Succeed())
		}

		By("checking the namespace enforces the restricted profile")
		var ns corev1.Namespace
		Expect(k8s.Get(ctx, client.ObjectKey{Name: env.Namespace}, &ns)).To(Succeed())
		Expect(ns.Labels).To(HaveKeyWithValue(psaEnforceLabel, psaRestricted))

		By("checking every Pod in the namespace was admitted and started under that profile")
		for _, component := range []string{controllerComponent, facadeComponent} {
			var pods corev1.PodList
			Expect(k8s.List(ctx, &pods, client.InNamespace(env.Namespace),
				client.MatchingLabels{nameLabel: appName, componentLabel: component})).To(Succeed())
			Expect(pods.Items).NotTo(BeEmpty(), "no %s Pods", component)
		}
		// Pending Pods get time to start: only a started Pod proves the kubelet accepted it too
		// (runAsNonRoot is checked against the image only when the container is created).
		Eventually(ctx, func() ([]string, error) { return namespacePodProblems(ctx, true) }).
			WithTimeout(time.Minute).Should(BeEmpty())
	}, SpecTimeout(5*time.Minute))

	It("rejects a privileged Pod, so the enforcement is real", func(ctx SpecContext) {
		Expect(privilegedPodRejected(ctx)).To(Succeed())
	}, SpecTimeout(time.Minute))
})

// privilegedPodRejected submits a privileged Pod to the demo namespace as a server-side dry run
// and returns nil only when restricted Pod Security admission refused it.
func privilegedPodRejected(ctx context.Context) error {
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
`, env.Namespace)
	out, err := kubectl(ctx, privileged, "apply", "--dry-run=server", "-f", "-")
	switch {
	case err == nil:
		return fmt.Errorf("the apiserver admitted a privileged Pod: %s", out)
	case !strings.Contains(err.Error(), "violates PodSecurity") || !strings.Contains(err.Error(), `"restricted`):
		return fmt.Errorf("the privileged Pod was refused, but not by restricted Pod Security: %w", err)
	}
	return nil
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

const (
	downloadsResource      = "downloads.download.operator.dev"
	downloadStatusResource = downloadsResource + "/status"
)

// serviceAccountUser is how RBAC names a ServiceAccount of the demo namespace.
func serviceAccountUser(sa string) string {
	return "system:serviceaccount:" + env.Namespace + ":" + sa
}

var _ = Describe("RBAC", func() {
	DescribeTable("gives each ServiceAccount only what it needs",
		func(specCtx SpecContext, sa, verb, resource string, allowed bool) {
			ctx, cancel := context.WithTimeout(specCtx, time.Minute)
			defer cancel()
			may, err := canI(ctx, sa, verb, resource, env.Namespace)
			Expect(err).NotTo(HaveOccurred())
			Expect(may).To(Equal(allowed), "may %s %s %s?", sa, verb, resource)
		},
		Entry("facade cannot get secrets", facadeServiceAccount, "get", "secrets", false),
		Entry("facade cannot list jobs", facadeServiceAccount, "list", "jobs.batch", false),
		Entry("facade can create downloads", facadeServiceAccount, "create", downloadsResource, true),
		Entry("facade cannot patch download status", facadeServiceAccount, "patch", downloadStatusResource, false),
		Entry("worker can patch jobs", workerServiceAccount, "patch", "jobs.batch", true),
		Entry("worker cannot create jobs", workerServiceAccount, "create", "jobs.batch", false),
		Entry("worker cannot get secrets", workerServiceAccount, "get", "secrets", false),
		Entry("worker cannot get downloads", workerServiceAccount, "get", downloadsResource, false),
		Entry("controller can create jobs", controllerServiceAccount, "create", "jobs.batch", true),
		Entry("controller can patch download status", controllerServiceAccount, "patch", downloadStatusResource, true),
		Entry("controller cannot get secrets", controllerServiceAccount, "get", "secrets", false),
		Entry("controller can create worker credential secrets", controllerServiceAccount, "create", "secrets", true),
		Entry("worker cannot get jobs", workerServiceAccount, "get", "jobs.batch", false),
	)
})

// saAuthArgs are the kubectl flags that act as ServiceAccount sa of the demo namespace, with the
// groups its token carries too, so that a grant to all ServiceAccounts (or all authenticated
// users) cannot hide behind --as alone.
func saAuthArgs(sa string) []string {
	return []string{"--as=" + serviceAccountUser(sa), "--as-group=system:serviceaccounts",
		"--as-group=system:serviceaccounts:" + env.Namespace, "--as-group=system:authenticated"}
}

// canI asks `kubectl auth can-i` whether ServiceAccount sa may verb resource (a
// "resource.group" or "resource.group/subresource") in namespace.
func canI(ctx context.Context, sa, verb, resource, namespace string) (bool, error) {
	args := []string{"auth", "can-i", verb, resource}
	if name, sub, ok := strings.Cut(resource, "/"); ok {
		args = []string{"auth", "can-i", verb, name, "--subresource=" + sub}
	}
	args = append(append(args, "--namespace="+namespace), saAuthArgs(sa)...)
	out, err := kubectl(ctx, "", args...)
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

// namespacePodProblems lists what makes a Pod of the demo namespace fail as proof of restricted
// admission: a field the restricted profile forbids, or a container the kubelet refused to
// start. Pods still starting are problems only when started is true; Pods being deleted are
// skipped, as their state no longer says anything.
func namespacePodProblems(ctx context.Context, started bool) ([]string, error) {
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(env.Namespace)); err != nil {
		return nil, fmt.Errorf("listing Pods in %s: %w", env.Namespace, err)
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
	GinkgoWriter.Printf("checked %d Pods in %s: %d problems\n", len(pods.Items), env.Namespace, len(problems))
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
