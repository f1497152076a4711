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

package chart_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestKueueValuesReachTheController renders the chart with queues, and by default: the queue
// names become the controller's flags, in a stable order, and without them no flag appears, so
// Jobs run at once as before.
func TestKueueValuesReachTheController(t *testing.T) {
	helmBin(t)
	queued := merge(requiredValues(), map[string]any{
		"namespaces": []any{"tenant-b", "tenant-a"},
		"kueue": map[string]any{
			"queueName":           "shared",
			"namespaceQueueNames": map[string]any{"tenant-b": "queue-b", "tenant-a": "queue-a"},
		},
	})
	queueFlags := func(values map[string]any) []string {
		objs := parseManifests(t, mustTemplate(t, release, releaseNamespace, values))
		deploy := convert[appsv1.Deployment](t, find(t, objs, kindDeployment, releaseNamespace, fullname+"-controller"))
		var flags []string
		for _, arg := range deploy.Spec.Template.Spec.Containers[0].Args {
			if strings.Contains(arg, "queue") {
				flags = append(flags, arg)
			}
		}
		return flags
	}
	if got := queueFlags(requiredValues()); len(got) != 0 {
		t.Errorf("by default the controller gets %v; want no queue flag, so nothing changes without Kueue", got)
	}
	got := queueFlags(queued)
	want := []string{"--queue-name=shared", "--namespace-queue-names=tenant-a=queue-a,tenant-b=queue-b"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("with queues the controller gets %v, want %v", got, want)
	}
}
