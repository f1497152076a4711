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
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

const dashboardConfigMap = fullname + "-dashboard"

// TestGrafanaDashboard renders the dashboard ConfigMap as the chart's README says to turn it on,
// with `--set dashboards.enabled=true`, and checks that the Grafana sidecar would pick it up and
// find the dashboard file unchanged in it. test/dashboard checks the dashboard's queries against
// the metrics the binaries export.
func TestGrafanaDashboard(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(chartDir(), "dashboards", "download-operator.json"))
	if err != nil {
		t.Fatal(err)
	}
	render := func(t *testing.T, set ...string) []*corev1.ConfigMap {
		t.Helper()
		args := []string{"template", release, chartDir(), "--namespace", releaseNamespace,
			"--kube-version", kubeVersion(t), "-f", valuesFile(t, requiredValues())}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		stdout, stderr, err := helm(t, args...)
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		var maps []*corev1.ConfigMap
		for _, obj := range ofKind(parseManifests(t, stdout), "ConfigMap") {
			if obj.GetName() == dashboardConfigMap {
				maps = append(maps, convert[corev1.ConfigMap](t, obj))
			}
		}
		return maps
	}

	t.Run("off by default", func(t *testing.T) {
		if maps := render(t); len(maps) != 0 {
			t.Errorf("the default render has the dashboard ConfigMap in %s", maps[0].Namespace)
		}
	})

	t.Run("--set dashboards.enabled=true renders it for the sidecar", func(t *testing.T) {
		maps := render(t, "dashboards.enabled=true")
		if len(maps) != 1 {
			t.Fatalf("want 1 ConfigMap %s, got %d", dashboardConfigMap, len(maps))
		}
		cm := maps[0]
		if cm.Namespace != releaseNamespace {
			t.Errorf("namespace %q, want the release namespace %q", cm.Namespace, releaseNamespace)
		}
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("labels %v lack grafana_dashboard: \"1\", which the Grafana sidecar selects by default", cm.Labels)
		}
		if len(cm.Data) != 1 {
			t.Fatalf("data keys %v, want one dashboard file", len(cm.Data))
		}
		got, ok := cm.Data["download-operator.json"]
		if !ok {
			t.Fatalf("no data key download-operator.json; the sidecar names the dashboard file after the key")
		}
		// The block scalar drops the file's final newline; nothing else may change.
		if got != strings.TrimRight(string(want), "\n") {
			t.Error("the ConfigMap's dashboard differs from dashboards/download-operator.json")
		}
		var dashboard map[string]any
		if err := json.Unmarshal([]byte(got), &dashboard); err != nil {
			t.Errorf("the rendered dashboard is not JSON: %v", err)
		}
		if dashboard["uid"] != "download-operator" {
			t.Errorf("dashboard uid %v, want download-operator", dashboard["uid"])
		}
	})

	t.Run("the label and namespace and annotations are values", func(t *testing.T) {
		maps := render(t, "dashboards.enabled=true", "dashboards.label=my_dashboards", "dashboards.labelValue=yes",
			"dashboards.namespace=monitoring", "dashboards.annotations.grafana_folder=Operators")
		if len(maps) != 1 {
			t.Fatalf("want 1 ConfigMap %s, got %d", dashboardConfigMap, len(maps))
		}
		cm := maps[0]
		if cm.Namespace != "monitoring" || cm.Labels["my_dashboards"] != "yes" || cm.Annotations["grafana_folder"] != "Operators" {
			t.Errorf("namespace %q, labels %v, annotations %v: the values did not apply", cm.Namespace, cm.Labels, cm.Annotations)
		}
		if _, ok := cm.Labels["grafana_dashboard"]; ok {
			t.Error("the default label stayed although dashboards.label replaced it")
		}
	})
}
