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

package dashboard_test

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/download-operator/download-operator/test/testenv"
)

// TestAlertQueriesUseExportedMetrics holds the chart's alert rules to what the running binaries
// export, as TestDashboardQueriesUseExportedMetrics does the dashboard: the promtool unit tests
// (test/alerts) feed the rules made-up series, so a metric or label renamed in the code would
// leave them passing and the alerts silent forever. An alert on absent() is the worst case: a
// renamed metric makes it fire.
func TestAlertQueriesUseExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "charts", "download-operator", "files", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("parsing files/alerts.yaml: %v", err)
	}
	exprs := map[string]string{}
	for _, group := range file.Groups {
		for _, rule := range group.Rules {
			exprs[rule.Alert] = rule.Expr
		}
	}
	if len(exprs) < 5 {
		t.Fatalf("files/alerts.yaml has %d alerts; is it the right file?", len(exprs))
	}
	_, _, final := scrapes(t)
	for _, problem := range checkQueries(exprs, final) {
		t.Error(problem)
	}
}
