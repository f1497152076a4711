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
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const alertsRule = fullname + "-alerts"

// TestPrometheusRule renders the PrometheusRule as the chart's README says to turn it on, and
// checks that its groups are files/alerts.yaml unchanged: the file `make test-alerts` checks and
// unit-tests with promtool (test/alerts), so the rules that ship are the rules tested.
func TestPrometheusRule(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir(), "files", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []any `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("parsing files/alerts.yaml: %v", err)
	}
	if len(file.Groups) == 0 {
		t.Fatal("files/alerts.yaml has no groups")
	}
	render := func(t *testing.T, alerts map[string]any) ([]*unstructured.Unstructured, error) {
		t.Helper()
		out, err := helmTemplate(t, release, releaseNamespace, merge(requiredValues(), map[string]any{"alerts": alerts}))
		if err != nil {
			return nil, err
		}
		return ofKind(parseManifests(t, out), "PrometheusRule"), nil
	}
	mustRender := func(t *testing.T, alerts map[string]any) *unstructured.Unstructured {
		t.Helper()
		rules, err := render(t, alerts)
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != 1 {
			t.Fatalf("want 1 PrometheusRule, got %d", len(rules))
		}
		return rules[0]
	}
	groupsOf := func(t *testing.T, rule *unstructured.Unstructured) []any {
		t.Helper()
		groups, found, err := unstructured.NestedSlice(rule.Object, "spec", "groups")
		if err != nil || !found {
			t.Fatalf("PrometheusRule %s has no spec.groups: %v", rule.GetName(), err)
		}
		return groups
	}

	t.Run("off by default", func(t *testing.T) {
		rules, err := render(t, map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != 0 {
			t.Errorf("the default render has PrometheusRule %s", rules[0].GetName())
		}
	})

	t.Run("alerts.enabled=true renders the rule file's groups unchanged", func(t *testing.T) {
		rule := mustRender(t, map[string]any{"enabled": true})
		if rule.GetAPIVersion() != "monitoring.coreos.com/v1" || rule.GetName() != alertsRule || rule.GetNamespace() != releaseNamespace {
			t.Errorf("got %s %s/%s, want monitoring.coreos.com/v1 %s/%s",
				rule.GetAPIVersion(), rule.GetNamespace(), rule.GetName(), releaseNamespace, alertsRule)
		}
		if got := groupsOf(t, rule); !reflect.DeepEqual(got, file.Groups) {
			t.Errorf("spec.groups differ from files/alerts.yaml:\n got: %v\nwant: %v", got, file.Groups)
		}
		if rule.GetLabels()["app.kubernetes.io/instance"] != release {
			t.Errorf("labels %v lack the chart's common labels", rule.GetLabels())
		}
	})

	t.Run("labels, ruleLabels and disabled apply, and nothing else changes", func(t *testing.T) {
		const dropped = "DownloadOperatorOldestPendingDownload"
		rule := mustRender(t, map[string]any{
			"enabled":    true,
			"labels":     map[string]any{"release": "prometheus"},
			"ruleLabels": map[string]any{"team": "storage", "severity": "page"},
			"disabled":   []any{dropped},
		})
		if rule.GetLabels()["release"] != "prometheus" {
			t.Errorf("PrometheusRule labels %v lack alerts.labels", rule.GetLabels())
		}
		// What the template should have made of the file, built here from the file itself.
		var want []any
		for _, g := range file.Groups {
			group := deepCopyMap(t, g)
			var kept []any
			for _, r := range group["rules"].([]any) {
				rule := r.(map[string]any)
				if rule["alert"] == dropped {
					continue
				}
				labels, _ := rule["labels"].(map[string]any)
				if labels == nil {
					labels = map[string]any{}
				}
				labels["team"], labels["severity"] = "storage", "page"
				rule["labels"] = labels
				kept = append(kept, rule)
			}
			group["rules"] = kept
			want = append(want, group)
		}
		got := groupsOf(t, rule)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("spec.groups:\n got: %v\nwant: %v", got, want)
		}
		if strings.Contains(toYAML(t, []*unstructured.Unstructured{rule}), dropped) {
			t.Errorf("%s is still in the PrometheusRule", dropped)
		}
	})

	t.Run("an unknown alert in alerts.disabled fails the render", func(t *testing.T) {
		_, err := render(t, map[string]any{"enabled": true, "disabled": []any{"DownloadOperatorTypo"}})
		if err == nil {
			t.Fatal("the render succeeded with alerts.disabled naming no alert")
		}
		if !strings.Contains(err.Error(), `alerts.disabled: "DownloadOperatorTypo" is not an alert of the chart`) {
			t.Fatalf("the error does not name the value: %v", err)
		}
		t.Logf("failed as expected: %v", err)
	})
}

// deepCopyMap copies a decoded YAML object through YAML, so the expectation built from it leaves
// the file's own decoding alone.
func deepCopyMap(t *testing.T, v any) map[string]any {
	t.Helper()
	raw, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := yaml.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
