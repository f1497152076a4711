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
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LeaderElectionID names the Lease the controller's replicas elect their leader with.
const LeaderElectionID = "download-operator.operator.dev"

// ManagerOptions are the options of the manager the controller runs in: its cache (worker Jobs
// of the served namespaces only, slimmed) and its leader election. The binary adds its metrics,
// probes and whether to elect; the test set-ups add what they need on top, so that they run the
// cache production runs.
func ManagerOptions(scheme *runtime.Scheme, namespaces sets.Set[string]) ctrl.Options {
	// Jobs are cached only in served namespaces and only when they are workers, which keeps the
	// controller's memory independent of everything else running in the cluster; the chart
	// grants nothing on Jobs elsewhere.
	served := map[string]cache.Config{}
	for ns := range namespaces {
		served[ns] = cache.Config{}
	}
	return ctrl.Options{
		Scheme:           scheme,
		LeaderElectionID: LeaderElectionID,
		// The process exits right after the manager stops, so releasing the lease early is safe
		// and lets the next leader start without waiting for the lease to expire.
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{
			// managedFields is a third of a cached object's size and nothing here reads it.
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{
				&batchv1.Job{}: {
					Namespaces: served,
					Label:      labels.SelectorFromSet(labels.Set{ComponentLabel: WorkerComponent}),
					Transform:  slimJob,
				},
			},
		},
	}
}

// slimJob keeps in the cache only what the controller reads of a worker Job: its identity,
// owners, labels, report annotations, the template's annotations, its spec's scalars and its
// status. The Pod template is most of a Job and would otherwise cost memory for every Download
// still around.
func slimJob(obj any) (any, error) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return obj, nil
	}
	job.ManagedFields = nil
	// The template's annotations stay: they hold the content digest, which completion records.
	job.Spec.Template = corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: job.Spec.Template.Annotations}}
	return job, nil
}
