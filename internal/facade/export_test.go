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

package facade

import (
	"sort"
	"strconv"
)

// RoutePatterns are the "METHOD /path" patterns the router serves, for the OpenAPI test.
func (f *Facade) RoutePatterns() []string {
	var patterns []string
	for _, rt := range f.routes() {
		patterns = append(patterns, rt.pattern())
	}
	sort.Strings(patterns)
	return patterns
}

// ObservedResponses reads the facade's request counter: "METHOD /path" (or "unmatched") to
// the status codes it has answered.
func (f *Facade) ObservedResponses() (map[string][]int, error) {
	families, err := f.metrics.registry.Gather()
	if err != nil {
		return nil, err
	}
	observed := map[string][]int{}
	for _, family := range families {
		if family.GetName() != "download_facade_http_requests_total" {
			continue
		}
		for _, m := range family.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			key := labels["method"] + " " + labels["route"]
			if labels["route"] == unmatchedRoute {
				key = unmatchedRoute
			}
			code, err := strconv.Atoi(labels["code"])
			if err != nil {
				return nil, err
			}
			observed[key] = append(observed[key], code)
		}
	}
	return observed, nil
}
