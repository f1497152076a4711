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

// Package dashboard_test proves the Grafana dashboard the chart ships
// (charts/download-operator/dashboards/download-operator.json) against the metrics the operator
// really exports: the binary built from ./cmd runs as controller and facade against envtest and
// MinIO, Downloads go through every outcome, and both /metrics endpoints are scraped. Every
// metric, label matcher and grouping label a query uses must exist in those scrapes, and no
// label may gain values as Downloads are added.
//
// It needs KUBEBUILDER_ASSETS and MINIO_BIN, as every envtest suite here does, and a go
// toolchain to build ./cmd.
package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/download-operator/download-operator/test/promscrape"
	"github.com/download-operator/download-operator/test/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the system: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// dashboardPath is the dashboard as the chart ships it.
func dashboardPath() string {
	return filepath.Join(testenv.RepoRoot(), "charts", "download-operator", "dashboards", "download-operator.json")
}

// grafanaDashboard is the part of Grafana's dashboard model the tests read.
type grafanaDashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	GridPos    struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string     `json:"refId"`
		Expr       string     `json:"expr"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
	// Panels are a collapsed row's.
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *datasource     `json:"datasource"`
}

// promQuery is a variable's query: Grafana writes a string or {"query": "..."}.
func (v variable) promQuery() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &q)
	return q.Query
}

func loadDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath())
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s is not JSON: %v", dashboardPath(), err)
	}
	return d
}

// allPanels flattens rows.
func (d grafanaDashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// expressions are every PromQL expression of the dashboard, named for messages.
func (d grafanaDashboard) expressions() map[string]string {
	exprs := map[string]string{}
	for _, p := range d.allPanels() {
		for _, target := range p.Targets {
			exprs[fmt.Sprintf("panel %q target %s", p.Title, target.RefID)] = target.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			exprs[fmt.Sprintf("variable %q", v.Name)] = v.promQuery()
		}
	}
	return exprs
}

// TestDashboardIsAGrafanaDashboard checks the model Grafana needs to import the file: a uid, a
// recent schema, a Prometheus data source chosen by variable, and panels that lie on the
// 24-column grid without overlapping.
func TestDashboardIsAGrafanaDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q and title %q must be set", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: Grafana 9+ dashboards have 36 or later", d.SchemaVersion)
	}
	hasDatasource := slices.ContainsFunc(d.Templating.List, func(v variable) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.promQuery() == "prometheus"
	})
	if !hasDatasource {
		t.Error("no variable datasource of type datasource with query prometheus: the dashboard would be tied to one data source")
	}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d is used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is off the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panel %q overlaps panel %q at (%d,%d)", p.Title, other, x, y)
					y, x = g.Y+g.H, g.X+g.W
					continue
				}
				taken[cell{x, y}] = p.Title
			}
		}
		switch p.Type {
		case "row":
			continue
		case "timeseries", "stat":
		default:
			t.Errorf("panel %q: type %q; the dashboard uses timeseries and stat", p.Title, p.Type)
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source %+v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, target := range p.Targets {
			if target.Expr == "" || target.RefID == "" || refs[target.RefID] {
				t.Errorf("panel %q: a target without expr, or with a missing or repeated refId %q", p.Title, target.RefID)
			}
			refs[target.RefID] = true
			if target.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q target %s: data source %+v, want the ${datasource} variable", p.Title, target.RefID, target.Datasource)
			}
		}
	}
}

// TestDashboardShowsWhatTheIssueAsks checks that the panels the operator is watched by are
// there, each by the metric it must be drawn from.
func TestDashboardShowsWhatTheIssueAsks(t *testing.T) {
	used := map[string]bool{}
	for where, expr := range loadDashboard(t).expressions() {
		q, err := parseQuery(expr)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		for _, m := range q.metrics {
			used[m] = true
		}
	}
	for what, metric := range map[string]string{
		"requests by route":            "download_facade_http_requests_total",
		"latency by route":             "download_facade_http_request_duration_seconds_bucket",
		"Downloads by phase":           "download_operator_downloads",
		"time to completion p50/p95":   "download_operator_download_completion_seconds_bucket",
		"bytes archived per second":    "download_operator_archived_bytes_total",
		"failures by reason":           "download_operator_download_failures_total",
		"active Jobs":                  "download_operator_active_jobs",
		"SSE clients":                  "download_facade_sse_clients",
		"reconciles of the controller": "controller_runtime_reconcile_total",
	} {
		if !used[metric] {
			t.Errorf("no panel shows %s (from %s)", what, metric)
		}
	}
}

// targetLabels are attached by Prometheus to every series it scrapes (Prometheus Operator
// adds the Kubernetes ones), so they are in no /metrics answer.
var targetLabels = map[string]bool{
	"job": true, "instance": true, "namespace": true, "pod": true, "service": true, "container": true, "endpoint": true,
}

// checkQueries reports what the expressions use that the scrapes do not export: metric names,
// and labels in matchers and groupings. An equality matcher's value must also be exported, so
// that a renamed route or controller fails here rather than leaving an empty panel.
func checkQueries(exprs map[string]string, scrapes map[string]scrape) []string {
	var problems []string
	for _, where := range sortedKeys(exprs) {
		q, err := parseQuery(exprs[where])
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		labelsOfQuery := map[string]bool{"le": true, "quantile": true}
		for _, metric := range q.metrics {
			var found bool
			for _, s := range scrapes {
				if !s.SeriesNames()[metric] {
					continue
				}
				found = true
				for _, m := range s.Family(metric).GetMetric() {
					for _, l := range m.GetLabel() {
						labelsOfQuery[l.GetName()] = true
					}
				}
			}
			if !found {
				problems = append(problems, fmt.Sprintf("%s: no binary exports %s", where, metric))
			}
		}
		for _, m := range q.matchers {
			if targetLabels[m.label] {
				continue
			}
			if !labelsOfQuery[m.label] {
				problems = append(problems, fmt.Sprintf("%s: %s has no label %s", where, m.metric, m.label))
				continue
			}
			if m.op == "=" && !strings.Contains(m.value, "$") && !exportsValue(scrapes, m.metric, m.label, m.value) {
				problems = append(problems, fmt.Sprintf("%s: no series %s{%s=%q} is exported", where, m.metric, m.label, m.value))
			}
		}
		for _, label := range q.grouping {
			if !targetLabels[label] && !labelsOfQuery[label] {
				problems = append(problems, fmt.Sprintf("%s: groups by %s, which none of %v has", where, label, q.metrics))
			}
		}
	}
	return problems
}

func exportsValue(scrapes map[string]scrape, metric, label, value string) bool {
	for _, s := range scrapes {
		if f := s.Family(metric); f != nil {
			for _, m := range f.GetMetric() {
				if promscrape.HasLabels(m, map[string]string{label: value}) {
					return true
				}
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// scrapes runs the system through two rounds of Downloads, N and then 2N more, and returns the
// scrapes taken after each. The tests that need them share one run.
var (
	roundsOnce            sync.Once
	afterFirst, afterBoth map[string]scrape
	roundsErr             error
	// firstRound is N: Downloads of each outcome in the first round; the second has 2N.
	firstRound = 1
)

func scrapes(t *testing.T) (*system, map[string]scrape, map[string]scrape) {
	t.Helper()
	sys, err := getSystem()
	if err != nil {
		t.Fatalf("starting the controller and the facade: %v", err)
	}
	roundsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if roundsErr = sys.round(ctx, firstRound); roundsErr != nil {
			return
		}
		if afterFirst, roundsErr = sys.scrapeBoth(ctx); roundsErr != nil {
			return
		}
		if roundsErr = sys.round(ctx, 2*firstRound); roundsErr != nil {
			return
		}
		afterBoth, roundsErr = sys.scrapeBoth(ctx)
	})
	if roundsErr != nil {
		t.Fatalf("running Downloads: %v\ncontroller log:\n%s\nfacade log:\n%s",
			roundsErr, sys.controller.log.String(), sys.facade.log.String())
	}
	return sys, afterFirst, afterBoth
}

// TestDashboardQueriesUseExportedMetrics is the acceptance test of the dashboard: every metric
// its queries select is exported by the controller or the facade, as scraped from the running
// binaries, with the labels the queries filter and group by.
func TestDashboardQueriesUseExportedMetrics(t *testing.T) {
	exprs := loadDashboard(t).expressions()
	if len(exprs) < 10 {
		t.Fatalf("the dashboard has %d queries; is it the right file?", len(exprs))
	}
	_, _, final := scrapes(t)
	for _, problem := range checkQueries(exprs, final) {
		t.Error(problem)
	}

	// The check must be able to fail: a made-up metric, a label the metric lacks, a route that
	// is not served and a grouping label nobody exports are each reported.
	for expr, want := range map[string]string{
		`sum(rate(download_operator_made_up_total[5m]))`:                                                 "no binary exports download_operator_made_up_total",
		`sum(download_operator_active_jobs{phase="Pending"})`:                                            "download_operator_active_jobs has no label phase",
		`sum(rate(download_facade_http_requests_total{route="/v1/no/such/route"}[5m]))`:                  `no series download_facade_http_requests_total{route="/v1/no/such/route"}`,
		`sum by (jobId) (rate(download_facade_http_requests_total[5m]))`:                                 "groups by jobId",
		`histogram_quantile(0.5, sum by (le) (rate(download_facade_http_request_duration_seconds[5m])))`: "no binary exports download_facade_http_request_duration_seconds",
	} {
		problems := checkQueries(map[string]string{"negative control": expr}, final)
		if len(problems) != 1 || !strings.Contains(problems[0], want) {
			t.Errorf("negative control %s: problems %q, want one saying %q", expr, problems, want)
		}
	}
}
