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

// TestTracingValuesReachTheFacadeAndTheController renders the chart with and without a
// collector: with one, both Deployments export to it (the controller hands the settings on to
// workers); without, neither gets any OTEL_ variable, so tracing stays off.
func TestTracingValuesReachTheFacadeAndTheController(t *testing.T) {
	helmBin(t)
	traced := merge(requiredValues(), map[string]any{"tracing": map[string]any{
		"endpoint": "http://otel-collector.observability:4318",
		"env":      []any{map[string]any{"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_always_on"}},
	}})
	want := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_TRACES_SAMPLER":         "parentbased_always_on",
	}
	for name, values := range map[string]map[string]any{"with a collector": traced, "by default": requiredValues()} {
		objs := parseManifests(t, mustTemplate(t, release, releaseNamespace, values))
		for _, component := range []string{"controller", "facade"} {
			deploy := convert[appsv1.Deployment](t, find(t, objs, kindDeployment, releaseNamespace, fullname+"-"+component))
			got := map[string]string{}
			for _, env := range deploy.Spec.Template.Spec.Containers[0].Env {
				if strings.HasPrefix(env.Name, "OTEL_") {
					got[env.Name] = env.Value
				}
			}
			switch {
			case name == "by default" && len(got) != 0:
				t.Errorf("%s: the %s gets %v although no collector is configured", name, component, got)
			case name == "with a collector" && len(got) != len(want):
				t.Errorf("%s: the %s gets %v, want %v", name, component, got, want)
			case name == "with a collector":
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s: the %s gets %s=%q, want %q", name, component, k, got[k], v)
					}
				}
			}
		}
	}
}
