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
	"slices"
	"strings"
	"testing"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/promscrape"
)

// boundedValue tells whether a label value comes from a set fixed whatever the traffic: an HTTP
// status code. Such a value may first show up in the second round (whether a status write hits
// a 409 conflict is up to timing), which is chance, not growth with the number of Downloads.
func boundedValue(label, value string) bool {
	if label != "code" || len(value) != 3 {
		return false
	}
	return strings.Trim(value, "0123456789") == ""
}

// labelGrowth reports, per metric family and label, the values after has that before lacked,
// other than bounded ones. Both scrapes must come from traffic of the same mix, after has only
// more of it: a label whose values are a fixed set has shown them all in before.
func labelGrowth(before, after scrape) []string {
	var problems []string
	for _, name := range sortedKeys(after) {
		seen := map[string]map[string]bool{}
		if f, ok := before[name]; ok {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if seen[l.GetName()] == nil {
						seen[l.GetName()] = map[string]bool{}
					}
					seen[l.GetName()][l.GetValue()] = true
				}
			}
		}
		fresh := map[string][]string{}
		for _, m := range after[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if !seen[l.GetName()][l.GetValue()] && !boundedValue(l.GetName(), l.GetValue()) &&
					!slices.Contains(fresh[l.GetName()], l.GetValue()) {
					fresh[l.GetName()] = append(fresh[l.GetName()], l.GetValue())
				}
			}
		}
		for _, label := range sortedKeys(fresh) {
			problems = append(problems, fmt.Sprintf("%s{%s}: %d series before, %d after; new values %q",
				name, label, len(before[name].GetMetric()), len(after[name].GetMetric()), fresh[label]))
		}
	}
	return problems
}

// leakedIdentifiers reports label values that contain a Download's name, a Job's name, a UID or
// a worker-reported reason: values that are new with every Download.
func leakedIdentifiers(s scrape, identifiers []string) []string {
	var problems []string
	for _, name := range sortedKeys(s) {
		for _, m := range s[name].GetMetric() {
			for _, l := range m.GetLabel() {
				for _, id := range identifiers {
					if id != "" && strings.Contains(l.GetValue(), id) {
						problems = append(problems, fmt.Sprintf("%s{%s=%q} holds %s", name, l.GetName(), l.GetValue(), id))
					}
				}
			}
		}
	}
	return problems
}

// TestNoLabelGrowsWithDownloads runs N Downloads of every outcome, scrapes the controller and
// the facade, runs 2N more, and scrapes again: no label may have gained values, and no label
// value may name a Download, a Job, or a reason a worker made up.
func TestNoLabelGrowsWithDownloads(t *testing.T) {
	sys, first, final := scrapes(t)
	for _, who := range sortedKeys(final) {
		for _, problem := range labelGrowth(first[who], final[who]) {
			t.Errorf("%s: a label grows with the number of Downloads: %s", who, problem)
		}
		for _, problem := range leakedIdentifiers(final[who], sys.identifiers) {
			t.Errorf("%s: %s", who, problem)
		}
	}
	if sys.failedOther == 0 || len(sys.identifiers) < 3*int(outcomes)*firstRound {
		t.Fatalf("the rounds did not run what the check relies on: %d made-up reasons, %d identifiers",
			sys.failedOther, len(sys.identifiers))
	}
}

// TestFailuresAreCountedByBoundedReason checks the reason label the failures panel groups by:
// a reason of the API keeps its name, and one a worker made up never reaches the condition
// (the controller takes only the worker's own closed set), so it counts as the Job's failure.
func TestFailuresAreCountedByBoundedReason(t *testing.T) {
	sys, _, final := scrapes(t)
	const metric = "download_operator_download_failures_total"
	for reason, want := range map[string]int{
		downloadv1alpha1.ReasonSourceNotFound:       sys.failedKnown,
		downloadv1alpha1.ReasonBackoffLimitExceeded: sys.failedOther,
		"Other": 0,
	} {
		if got := valueOf(final["controller"], metric, map[string]string{"reason": reason}); got != float64(want) {
			t.Errorf("%s{reason=%q} = %v, want %d", metric, reason, got, want)
		}
	}
}

// TestGrowthChecksCanFail feeds the checks scrapes with a label per Download, as a jobId label
// would give, and with a status code that shows up late, which is no growth.
func TestGrowthChecksCanFail(t *testing.T) {
	parse := func(text string) scrape {
		t.Helper()
		s, err := promscrape.Parse(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := parse(`# TYPE per_download_total counter
per_download_total{job_id="d1",phase="Completed"} 1
# TYPE requests_total counter
requests_total{code="200",route="/v1/x"} 3
`)
	after := parse(`# TYPE per_download_total counter
per_download_total{job_id="d1",phase="Completed"} 1
per_download_total{job_id="d2",phase="Completed"} 1
per_download_total{job_id="d3",phase="Completed"} 1
# TYPE requests_total counter
requests_total{code="200",route="/v1/x"} 9
requests_total{code="409",route="/v1/x"} 1
`)
	problems := labelGrowth(before, after)
	if len(problems) != 1 || !strings.Contains(problems[0], "per_download_total{job_id}") ||
		!strings.Contains(problems[0], `"d2" "d3"`) {
		t.Errorf("labelGrowth = %q, want one problem about per_download_total{job_id} naming d2 and d3", problems)
	}
	leaks := leakedIdentifiers(after, []string{"d3", "unrelated"})
	if len(leaks) != 1 || !strings.Contains(leaks[0], `job_id="d3"`) {
		t.Errorf("leakedIdentifiers = %q, want one about job_id=\"d3\"", leaks)
	}
}
