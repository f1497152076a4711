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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/download-operator/download-operator/test/cluster"
)

var _ = Describe("Installation", func() {
	It("runs the controller and the facade, ready, in a namespace enforcing restricted", func(ctx SpecContext) {
		for _, name := range []string{cluster.ControllerDeployment, cluster.FacadeDeployment} {
			By("waiting for Deployment " + name + " to be Available with every replica ready")
			cluster.WaitForDeploymentReady(ctx, name, cluster.DefaultWait)
		}

		By("checking the namespace enforces the restricted profile")
		var ns corev1.Namespace
		Expect(cluster.K8s.Get(ctx, client.ObjectKey{Name: cluster.Env.Namespace}, &ns)).To(Succeed())
		Expect(ns.Labels).To(HaveKeyWithValue(cluster.PSAEnforceLabel, cluster.PSARestricted))

		By("checking every Pod in the namespace was admitted and started under that profile")
		for _, component := range []string{cluster.ControllerComponent, cluster.FacadeComponent} {
			pods, err := cluster.ComponentPods(ctx, component)
			Expect(err).NotTo(HaveOccurred())
			Expect(pods).NotTo(BeEmpty(), "no %s Pods", component)
		}
		// Pending Pods get time to start: only a started Pod proves the kubelet accepted it too
		// (runAsNonRoot is checked against the image only when the container is created).
		Eventually(ctx, func() ([]string, error) { return cluster.NamespacePodProblems(ctx, true) }).
			WithTimeout(time.Minute).Should(BeEmpty())
	}, SpecTimeout(5*time.Minute))

	It("rejects a privileged Pod, so the enforcement is real", func(ctx SpecContext) {
		Expect(cluster.PrivilegedPodRejected(ctx)).To(Succeed())
	}, SpecTimeout(time.Minute))
})

var _ = Describe("RBAC", func() {
	DescribeTable("gives each ServiceAccount only what it needs",
		func(specCtx SpecContext, sa, verb, resource string, allowed bool) {
			ctx, cancel := context.WithTimeout(specCtx, time.Minute)
			defer cancel()
			may, err := cluster.CanI(ctx, sa, verb, resource, cluster.Env.Namespace)
			Expect(err).NotTo(HaveOccurred())
			Expect(may).To(Equal(allowed), "may %s %s %s?", sa, verb, resource)
		},
		Entry("facade cannot get secrets", cluster.FacadeServiceAccount, "get", "secrets", false),
		Entry("facade cannot list jobs", cluster.FacadeServiceAccount, "list", "jobs.batch", false),
		Entry("facade can create downloads", cluster.FacadeServiceAccount, "create", cluster.DownloadsResource, true),
		Entry("facade cannot patch download status", cluster.FacadeServiceAccount, "patch", cluster.DownloadStatusResource, false),
		Entry("worker can patch jobs", cluster.WorkerServiceAccount, "patch", "jobs.batch", true),
		Entry("worker cannot create jobs", cluster.WorkerServiceAccount, "create", "jobs.batch", false),
		Entry("worker cannot get secrets", cluster.WorkerServiceAccount, "get", "secrets", false),
		Entry("worker cannot get downloads", cluster.WorkerServiceAccount, "get", cluster.DownloadsResource, false),
		Entry("controller can create jobs", cluster.ControllerServiceAccount, "create", "jobs.batch", true),
		Entry("controller can patch download status", cluster.ControllerServiceAccount, "patch",
			cluster.DownloadStatusResource, true),
		Entry("controller cannot get secrets", cluster.ControllerServiceAccount, "get", "secrets", false),
		Entry("controller can create worker credential secrets", cluster.ControllerServiceAccount, "create", "secrets", true),
		Entry("worker cannot get jobs", cluster.WorkerServiceAccount, "get", "jobs.batch", false),
	)
})
