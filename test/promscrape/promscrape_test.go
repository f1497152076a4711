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

package promscrape_test

import (
	"strings"
	"testing"

	"github.com/download-operator/download-operator/test/promscrape"
)

const sample = `# TYPE requests_total counter
requests_total{code="200",method="GET"} 3
requests_total{code="500",method="GET"} 1
requests_total{code="201",method="POST"} 2
# TYPE depth gauge
depth{name="download"} 4
# TYPE latency_seconds histogram
latency_seconds_bucket{le="1"} 5
latency_seconds_bucket{le="+Inf"} 7
latency_seconds_sum 3.5
latency_seconds_count 7
`

func TestScrape(t *testing.T) {
	s, err := promscrape.Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"requests_total", nil, 6},
		{"requests_total", map[string]string{"method": "GET"}, 4},
		{"requests_total", map[string]string{"method": "GET", "code": "500"}, 1},
		{"requests_total", map[string]string{"method": "PUT"}, 0},
		{"depth", map[string]string{"name": "download"}, 4},
		{"latency_seconds", nil, 7}, // a histogram counts its observations
		{"absent_total", nil, 0},
	} {
		if got := s.Value(tc.name, tc.labels); got != tc.want {
			t.Errorf("Value(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if f := s.Family("latency_seconds_bucket"); f.GetName() != "latency_seconds" {
		t.Errorf("Family(latency_seconds_bucket) = %q, want the histogram", f.GetName())
	}
	if f := s.Family("depth_count"); f != nil {
		t.Errorf("Family(depth_count) = %q, want none: a gauge has no _count series", f.GetName())
	}
	names := s.SeriesNames()
	if !names["latency_seconds_count"] || names["latency_seconds"] || !names["depth"] {
		t.Errorf("SeriesNames() = %v", names)
	}
	if _, err := promscrape.Parse(strings.NewReader("requests_total{code=\"200\" 3\n")); err == nil {
		t.Error("Parse accepted a malformed line")
	}
}
