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
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The cache keeps what the controller reads: the report annotations, the status, whether Kueue
// still holds the Job (spec.suspend) and the content digest on the template.
func TestTheJobCacheKeepsWhatTheControllerReads(t *testing.T) {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: "j", Annotations: map[string]string{"download.operator.dev/progress": "{}"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}},
		},
		Spec: batchv1.JobSpec{Suspend: ptr.To(true), Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{contentDigestAnnotation: "digest"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Args: []string{"worker"}}}},
		}},
		Status: batchv1.JobStatus{Succeeded: 1},
	}
	slimmed, err := slimJob(job)
	if err != nil {
		t.Fatal(err)
	}
	got := slimmed.(*batchv1.Job)
	if len(got.Spec.Template.Spec.Containers) != 0 || got.ManagedFields != nil {
		t.Errorf("the cached Job keeps its Pod template or managedFields: %+v", got)
	}
	if got.Name != "j" || got.Status.Succeeded != 1 || got.Annotations["download.operator.dev/progress"] != "{}" ||
		!ptr.Deref(got.Spec.Suspend, false) || got.Spec.Template.Annotations[contentDigestAnnotation] != "digest" {
		t.Errorf("the cached Job lost what the controller reads: %+v", got)
	}
}
