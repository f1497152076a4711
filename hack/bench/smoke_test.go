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

package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestColdStartFigureEndToEnd takes one tiny figure, P7 with a few settled Downloads, through
// everything `make bench` does with a figure: the measurement on envtest, MinIO and the real
// binary, the rows and their goals, the table, the results file and --check's comparison. It runs
// in `make test`, so that the bench cannot rot unseen between two runs of `make bench`.
func TestColdStartFigureEndToEnd(t *testing.T) {
	const downloads = 30
	opts := options{only: []string{"P7"}, runs: 1, coldStartDownloads: downloads, coldStartTimeout: 2 * time.Minute}
	results, err := measure(t.Context(), opts)
	if err != nil {
		t.Fatalf("measuring P7: %v", err)
	}

	sample := results.Samples[0]
	if got := sample["P7.reconciled"]; got != downloads {
		t.Errorf("the controller reconciled %.0f of %d settled Downloads", got, downloads)
	}
	// A settled Download is one the controller has nothing to do for: its first reconcile must
	// write nothing. A write here means the bench's settled status and the controller's disagree.
	for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		if n := sample["P7.apiserver_requests."+method]; n != 0 {
			t.Errorf("the controller made %.0f %s requests while reconciling settled Downloads; want none", n, method)
		}
	}
	if sample["P7.apiserver_requests.GET"] == 0 {
		t.Error("no GET counted: the controller's rest_client_requests_total was not read")
	}
	for _, key := range []string{"P7.all_reconciled_s", "P7.list_s", "P7.peak_rss_mib", "P7.cpu_s"} {
		if !(sample[key] > 0) {
			t.Errorf("%s = %v, want a positive measurement", key, sample[key])
		}
	}

	var rows int
	for _, row := range results.Rows {
		if row.ID == "P7" {
			rows++
		}
	}
	if rows == 0 {
		t.Fatal("measure produced no P7 row")
	}
	var table bytes.Buffer
	printTable(&table, results)
	if !strings.Contains(table.String(), "cold start: every settled Download reconciled once") {
		t.Errorf("the table lacks the P7 row:\n%s", table.String())
	}

	path := filepath.Join(t.TempDir(), resultsFile)
	if err := writeResults(path, results); err != nil {
		t.Fatalf("writing the results: %v", err)
	}
	read, err := readResults(path)
	if err != nil {
		t.Fatalf("reading the results back: %v", err)
	}
	if problems := compare(read, results, 2); len(problems) > 0 {
		t.Errorf("a run compared with itself shows regressions: %q", problems)
	}
}
