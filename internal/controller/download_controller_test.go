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
package controller

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

var _ = Describe("Download Controller", func() {
	var reconciler *DownloadReconciler

	BeforeEach(func() {
		reconciler = &DownloadReconciler{Client: k8sClient, Scheme: k8sClient.Scheme()}
	})

	It("reconciles an existing Download without error", func() {
		download := &downloadv1alpha1.Download{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "reconcile-", Namespace: "default"},
			Spec:       downloadv1alpha1.DownloadSpec{FileIDs: []int64{70000}},
		}
		Expect(k8sClient.Create(ctx, download)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, download)

		result, err := reconciler.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{
			Namespace: download.Namespace, Name: download.Name,
		}})
		Expect(err).NotTo(HaveOccurred())
		Expect(result).To(Equal(reconcile.Result{}))
	})

	It("treats a Download deleted before its reconcile as done, not as an error", func() {
		result, err := reconciler.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{
			Namespace: "default", Name: "3f1c2a9e-0000-4000-8000-000000000000",
		}})
		Expect(err).NotTo(HaveOccurred())
		Expect(result).To(Equal(reconcile.Result{}))
	})
})
