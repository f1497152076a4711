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

// Package alerts_test checks what promtool cannot: that the unit tests in alerts_test.yaml load
// the chart's own rule file and prove every alert both firing and silent, and that every alert
// has a severity, a summary, a description and a runbook section in docs/observability.md.
// `make test-alerts` (in `make test`) runs the unit tests themselves with promtool.
package alerts_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	rulesFile = "../../charts/download-operator/files/alerts.yaml"
	testsFile = "alerts_test.yaml"
	docsFile  = "../../docs/observability.md"
	// runbookBase is where each alert's runbook_url points, followed by the section's anchor.
	runbookBase = "https://github.com/download-operator/download-operator/blob/main/docs/observability.md#"
)

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

type testFile struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name          string `json:"name"`
		AlertRuleTest []struct {
			Alertname string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

func read[T any](t *testing.T, path string) T {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := yaml.Unmarshal(raw, &out); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	return out
}

func alertNames(t *testing.T, rules ruleFile) []string {
	t.Helper()
	var names []string
	for _, group := range rules.Groups {
		for _, rule := range group.Rules {
			if rule.Alert == "" {
				t.Errorf("group %s has a rule without an alert name (recording rules do not belong here)", group.Name)
			}
			if slices.Contains(names, rule.Alert) {
				t.Errorf("alert %s is defined twice", rule.Alert)
			}
			names = append(names, rule.Alert)
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s has no alerts", rulesFile)
	}
	return names
}

// TestUnitTestsCoverEveryAlert: promtool passes a test file that never mentions an alert, and an
// alertname typo with exp_alerts: [] passes too (an unknown alert never fires). So each alert
// must appear in at least one case expecting it to fire and one expecting silence, and every case
// must name an alert of the file.
func TestUnitTestsCoverEveryAlert(t *testing.T) {
	rules := read[ruleFile](t, rulesFile)
	tests := read[testFile](t, testsFile)
	names := alertNames(t, rules)

	wantRules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(tests.RuleFiles) != 1 {
		t.Fatalf("%s loads %v, want the chart's rule file only", testsFile, tests.RuleFiles)
	}
	if got, _ := filepath.Abs(tests.RuleFiles[0]); got != wantRules {
		t.Errorf("%s loads %s, want the chart's own %s", testsFile, got, wantRules)
	}

	fires, silent := map[string]int{}, map[string]int{}
	for _, test := range tests.Tests {
		if len(test.AlertRuleTest) == 0 {
			t.Errorf("test %q checks no alert", test.Name)
		}
		for _, check := range test.AlertRuleTest {
			if !slices.Contains(names, check.Alertname) {
				t.Errorf("test %q checks %q, which is no alert of %s", test.Name, check.Alertname, rulesFile)
			}
			if len(check.ExpAlerts) > 0 {
				fires[check.Alertname]++
			} else {
				silent[check.Alertname]++
			}
		}
	}
	for _, name := range names {
		if fires[name] == 0 {
			t.Errorf("no test proves that %s fires", name)
		}
		if silent[name] == 0 {
			t.Errorf("no test proves that %s stays silent", name)
		}
	}
}

// TestEveryAlertHasARunbook: the annotations an on-call reads, and the runbook section in
// docs/observability.md that runbook_url points at.
func TestEveryAlertHasARunbook(t *testing.T) {
	rules := read[ruleFile](t, rulesFile)
	docs, err := os.ReadFile(docsFile)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, heading := range regexp.MustCompile(`(?m)^#{1,6} +(.+)$`).FindAllStringSubmatch(string(docs), -1) {
		anchors[githubAnchor(heading[1])] = true
	}
	for _, group := range rules.Groups {
		for _, rule := range group.Rules {
			if !strings.HasPrefix(rule.Alert, "DownloadOperator") {
				t.Errorf("alert %s: names start with DownloadOperator, so they sort together in Alertmanager", rule.Alert)
			}
			if severity := rule.Labels["severity"]; severity != "warning" && severity != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", rule.Alert, severity)
			}
			for _, key := range []string{"summary", "description"} {
				if strings.TrimSpace(rule.Annotations[key]) == "" {
					t.Errorf("alert %s has no %s", rule.Alert, key)
				}
			}
			url := rule.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(url, runbookBase)
			if !ok {
				t.Errorf("alert %s: runbook_url %q is not a section of docs/observability.md (%s...)", rule.Alert, url, runbookBase)
				continue
			}
			if anchor != strings.ToLower(rule.Alert) {
				t.Errorf("alert %s: runbook_url points at #%s, want the section named after the alert", rule.Alert, anchor)
			}
			if !anchors[anchor] {
				t.Errorf("alert %s: docs/observability.md has no heading with anchor #%s", rule.Alert, anchor)
			}
		}
	}
}

// githubAnchor is the id GitHub gives a Markdown heading: lower case, spaces to hyphens, and
// punctuation other than hyphens and underscores dropped.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}
