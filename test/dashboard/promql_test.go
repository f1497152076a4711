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
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The dashboard's PromQL is read by a small scanner rather than Prometheus's own parser, which
// would pull the whole Prometheus server module into go.mod for one test. The scanner only has
// to find metric names, label matchers and grouping labels in queries this repository writes,
// and its unit tests below pin down every construct the dashboard uses.

// query is what the checks need from one PromQL expression.
type query struct {
	// metrics are the metric names it selects, e.g. foo_bucket of a histogram.
	metrics []string
	// matchers are the label matchers of each selector.
	matchers []matcher
	// grouping are the labels of by (...), without (...), on (...), ignoring (...) and
	// group_left/group_right (...).
	grouping []string
}

type matcher struct {
	metric, label, op, value string
}

// promqlKeywords are identifiers that are never metric names when they are not followed by
// "(" (functions and aggregations always are, and are recognised by that).
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "offset": true, "and": true, "or": true, "unless": true, "atan2": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

var (
	// grafanaLabelValues is Grafana's variable query label_values(metric, label), which is not
	// PromQL: only its first argument is.
	grafanaLabelValues = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)
	groupingClause     = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)`)
	rangeOrSubquery    = regexp.MustCompile(`\[[^\[\]]*\]`)
	offsetModifier     = regexp.MustCompile(`\boffset\s+-?[0-9a-zA-Z_$]+`)
	matcherPattern     = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*\x00(\d+)\x00\s*$`)
	identifierStart    = func(c byte) bool { return c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
	identifierPart     = func(c byte) bool { return identifierStart(c) || ('0' <= c && c <= '9') }
)

// parseQuery scans one expression of the dashboard (a panel target or a variable query).
func parseQuery(expr string) (query, error) {
	if m := grafanaLabelValues.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	// String literals go first: label values and regexes may hold anything, braces included.
	// Each is replaced by a numbered placeholder that no later step can mistake for syntax.
	var literals []string
	var b strings.Builder
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c != '"' && c != '\'' && c != '`' {
			b.WriteByte(c)
			continue
		}
		var lit strings.Builder
		j := i + 1
		for ; j < len(expr) && expr[j] != c; j++ {
			if expr[j] == '\\' && c != '`' && j+1 < len(expr) {
				j++
			}
			lit.WriteByte(expr[j])
		}
		if j == len(expr) {
			return query{}, fmt.Errorf("unterminated string in %q", expr)
		}
		fmt.Fprintf(&b, "\x00%d\x00", len(literals))
		literals = append(literals, lit.String())
		i = j
	}
	s := b.String()

	var q query
	for _, m := range groupingClause.FindAllStringSubmatch(s, -1) {
		for _, label := range strings.Split(m[2], ",") {
			if label = strings.TrimSpace(label); label != "" {
				q.grouping = append(q.grouping, label)
			}
		}
	}
	s = groupingClause.ReplaceAllString(s, " ")
	s = rangeOrSubquery.ReplaceAllString(s, " ")
	s = offsetModifier.ReplaceAllString(s, " ")

	// What is left is identifiers, numbers, operators, parentheses and selectors' braces.
	lastMetricEnd := -1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return query{}, fmt.Errorf("unbalanced { in %q", expr)
			}
			if lastMetricEnd < 0 || strings.TrimSpace(s[lastMetricEnd:i]) != "" {
				return query{}, fmt.Errorf("a selector without a metric name in %q: name every metric outside the braces", expr)
			}
			for _, part := range strings.Split(s[i+1:i+end], ",") {
				if strings.TrimSpace(part) == "" {
					continue
				}
				m := matcherPattern.FindStringSubmatch(part)
				if m == nil {
					return query{}, fmt.Errorf("cannot read the matcher %q in %q", part, expr)
				}
				var n int
				_, _ = fmt.Sscan(m[3], &n)
				if m[1] == "__name__" {
					return query{}, fmt.Errorf("__name__ matcher in %q: name the metric outside the braces", expr)
				}
				q.matchers = append(q.matchers, matcher{
					metric: q.metrics[len(q.metrics)-1], label: m[1], op: m[2], value: literals[n]})
			}
			i += end + 1
		case c == '\x00':
			end := strings.IndexByte(s[i+1:], '\x00')
			i += end + 2
		case '0' <= c && c <= '9' || c == '.':
			for i < len(s) && (identifierPart(s[i]) || s[i] == '.' ||
				((s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E'))) {
				i++
			}
		case identifierStart(c):
			j := i
			for j < len(s) && identifierPart(s[j]) {
				j++
			}
			word := s[i:j]
			rest := strings.TrimLeft(s[j:], " \t\n")
			isCall := strings.HasPrefix(rest, "(")
			if !isCall && !promqlKeywords[word] {
				q.metrics = append(q.metrics, word)
				lastMetricEnd = j
			}
			i = j
		case c == '$':
			// A Grafana variable outside a string, e.g. $__range_s in arithmetic.
			i++
			for i < len(s) && (identifierPart(s[i]) || s[i] == '{' || s[i] == '}') {
				i++
			}
		default:
			i++
		}
	}
	return q, nil
}

func TestParseQueryFindsMetricsNotFunctionsOrLabels(t *testing.T) {
	for _, tc := range []struct {
		expr     string
		metrics  []string
		matchers []matcher
		grouping []string
	}{
		{
			expr:    `histogram_quantile(0.95, sum by (le, route) (rate(foo_seconds_bucket{route!="/v1/x/{jobId}", code=~"5.."}[$__rate_interval])))`,
			metrics: []string{"foo_seconds_bucket"},
			matchers: []matcher{
				{metric: "foo_seconds_bucket", label: "route", op: "!=", value: "/v1/x/{jobId}"},
				{metric: "foo_seconds_bucket", label: "code", op: "=~", value: "5.."},
			},
			grouping: []string{"le", "route"},
		},
		{
			expr:     `sum(rate(a_total[5m] offset 1h)) by (code) / ignoring(code) group_left sum(b) > 0`,
			metrics:  []string{"a_total", "b"},
			grouping: []string{"code", "code"},
		},
		{
			expr:     `sum(increase(errors_total{namespace=~"$namespace"}[$__range])) * 60 and on() vector(1)`,
			metrics:  []string{"errors_total"},
			matchers: []matcher{{metric: "errors_total", label: "namespace", op: "=~", value: "$namespace"}},
		},
		{
			expr:    `label_values(download_operator_downloads, namespace)`,
			metrics: []string{"download_operator_downloads"},
		},
		{
			expr:    `max(up) * 1e3 + inf - 2.5e-3`,
			metrics: []string{"up"},
		},
		{
			expr:     `max by (phase) (x:recorded:rate5m {phase='Pending'})`,
			metrics:  []string{"x:recorded:rate5m"},
			matchers: []matcher{{metric: "x:recorded:rate5m", label: "phase", op: "=", value: "Pending"}},
			grouping: []string{"phase"},
		},
	} {
		q, err := parseQuery(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if !slices.Equal(q.metrics, tc.metrics) {
			t.Errorf("%s: metrics %q, want %q", tc.expr, q.metrics, tc.metrics)
		}
		if !slices.Equal(q.matchers, tc.matchers) {
			t.Errorf("%s: matchers %+v, want %+v", tc.expr, q.matchers, tc.matchers)
		}
		if !slices.Equal(q.grouping, tc.grouping) {
			t.Errorf("%s: grouping %q, want %q", tc.expr, q.grouping, tc.grouping)
		}
	}
}

func TestParseQueryRefusesWhatItCannotCheck(t *testing.T) {
	for _, expr := range []string{
		`{__name__="foo_total"}`,
		`sum(foo{__name__=~"bar.*"})`,
		`rate(foo{code="5xx}[5m])`,
		`foo{code}`,
	} {
		if q, err := parseQuery(expr); err == nil {
			t.Errorf("%s: parsed as %+v; a metric the check cannot see must fail it instead", expr, q)
		}
	}
}
