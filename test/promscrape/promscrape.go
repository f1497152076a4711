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

// Package promscrape reads a /metrics answer with the Prometheus text parser, for the tests and
// the bench that check what the binaries export.
package promscrape

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one /metrics answer, by metric family name.
type Scrape map[string]*dto.MetricFamily

// Parse reads the Prometheus text format.
func Parse(r io.Reader) (Scrape, error) {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing a scrape: %w", err)
	}
	return families, nil
}

// Fetch scrapes url in the text format, as Prometheus asks for it when it does not negotiate
// protobuf.
func Fetch(ctx context.Context, c *http.Client, url string) (Scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("building the scrape of %s: %w", url, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// SeriesNames are the names a PromQL query can select: a histogram's name_bucket, name_sum and
// name_count but not its bare name, which selects nothing.
func (s Scrape) SeriesNames() map[string]bool {
	names := map[string]bool{}
	for name, family := range s {
		switch family.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	return names
}

// Family finds the family a series name belongs to (foo for foo_bucket of a histogram).
func (s Scrape) Family(series string) *dto.MetricFamily {
	if f, ok := s[series]; ok {
		return f
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok {
			if f, ok := s[base]; ok && f.GetType() != dto.MetricType_COUNTER && f.GetType() != dto.MetricType_GAUGE {
				return f
			}
		}
	}
	return nil
}

// Value sums the family's series whose labels include labels: counters, gauges and untyped
// series by value, histograms by their observation count. A family the scrape lacks sums to 0.
func (s Scrape) Value(name string, labels map[string]string) float64 {
	total := 0.0
	s.Each(name, func(m *dto.Metric) {
		if !HasLabels(m, labels) {
			return
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	})
	return total
}

// Each calls fn with every series of the family name.
func (s Scrape) Each(name string, fn func(*dto.Metric)) {
	if family, ok := s[name]; ok {
		for _, m := range family.GetMetric() {
			fn(m)
		}
	}
}

// HasLabels says whether m carries every name=value pair of labels.
func HasLabels(m *dto.Metric, labels map[string]string) bool {
	for name, value := range labels {
		if Label(m, name) != value {
			return false
		}
	}
	return true
}

// Label is m's value of the label name, or "" where it has none (as PromQL sees it).
func Label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
