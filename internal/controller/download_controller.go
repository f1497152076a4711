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
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// DownloadReconciler will turn each Download into a worker Job and mirror the Job's progress and
// result into Download.status. The foundation wires it into the manager and reads Downloads;
// the Job lifecycle lands with the controller issue.
type DownloadReconciler struct {
	client.Client
	Scheme *runtime.Scheme
}

// +kubebuilder:rbac:groups=download.operator.dev,resources=downloads,verbs=get;list;watch

// Reconcile reads the Download named by req.
func (r *DownloadReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var download downloadv1alpha1.Download
	if err := r.Get(ctx, req.NamespacedName, &download); err != nil {
		// A deleted Download needs nothing: owner references garbage-collect what it created.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, nil
}

// SetupWithManager sets up the controller with the Manager.
func (r *DownloadReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&downloadv1alpha1.Download{}).
		Named("download").
		Complete(r)
}
