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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

const resultsFile = "performance-results.json"

// Results is what a bench invocation measured, as written to performance-results.json.
type Results struct {
	// Date is when the measurement ended (RFC 3339, UTC).
	Date    string  `json:"date"`
	Machine Machine `json:"machine"`
	// Runs is how many times each figure was measured.
	Runs int `json:"runs"`
	// Figures are the ids measured by this invocation; a merged file keeps older ones too.
	Figures []string `json:"figures"`
	// Rows are the figures against their references and goals, the medians of the runs with
	// their spread; the table in docs/performance.md shows them.
	Rows []Row `json:"rows"`
	// Metrics are every measured value, summarised over the runs.
	Metrics map[string]Summary `json:"metrics"`
	// StatusLatency is the data of docs/images/status-latency.png.
	StatusLatency []LatencyPoint `json:"statusLatency,omitempty"`
	// Notes say how a figure was measured where the numbers alone do not.
	Notes map[string]string `json:"notes,omitempty"`
	// Samples are the raw values, one map per run.
	Samples []map[string]float64 `json:"samples"`
}

// Summary is one metric over the runs.
type Summary struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
}

// Row is one line of the figures table.
type Row struct {
	ID     string `json:"id"`
	Figure string `json:"figure"`
	Unit   string `json:"unit"`
	// RefUnit is the reference's unit when it differs from Unit.
	RefUnit string `json:"referenceUnit,omitempty"`
	// Value is the figure, Reference what it is compared with in the same run.
	Value     Summary `json:"value"`
	Reference Summary `json:"reference"`
	RefName   string  `json:"referenceName"`
	// Ratio is value/reference, computed per run.
	Ratio Summary `json:"ratio"`
	// Better says which way the ratio improves: "lower" or "higher".
	Better string `json:"better"`
	Goal   string `json:"goal"`
	// Met is whether the median meets the goal; nil for rows without a goal.
	Met *bool `json:"met,omitempty"`
	// Measured is when this row was measured (rows kept from an older file keep their date).
	Measured string `json:"measured"`
	// Note flags a row whose load was not what was asked, e.g. a saturated server.
	Note string `json:"note,omitempty"`
	// ReferenceSaturated is set when the reference itself could not keep the offered load in a
	// run: the machine was too busy for the row to say anything about the facade.
	ReferenceSaturated bool `json:"referenceSaturated,omitempty"`
}

// LatencyPoint is one offered load of P2.
type LatencyPoint struct {
	Rate      float64 `json:"rate"`
	FacadeP50 Summary `json:"facadeP50Ms"`
	FacadeP99 Summary `json:"facadeP99Ms"`
	BareP50   Summary `json:"bareP50Ms"`
	BareP99   Summary `json:"bareP99Ms"`
}

func (row Row) refUnit() string {
	if row.RefUnit != "" {
		return row.RefUnit
	}
	return row.Unit
}

// metAndReference are the row's goal and reference cells of a table: met says "yes", notMet or
// nothing (no goal); the reference is its name, then sep, then its spread, or "-" for none.
func (row Row) metAndReference(notMet, sep string) (met, ref string) {
	if row.Met != nil {
		met = map[bool]string{true: "yes", false: notMet}[*row.Met]
	}
	ref = "-"
	if len(row.Reference.Runs) > 0 {
		ref = row.RefName + sep + formatSpread(row.Reference, row.refUnit())
	}
	return met, ref
}

// machineBusy is the median over the runs of how many cores the whole machine kept busy during
// the steps whose metrics end in machine_cores under prefix, or NaN.
func (r *Results) machineBusy(prefix string) float64 {
	var vs []float64
	for _, s := range r.Samples {
		for k, v := range s {
			if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, "machine_cores") {
				vs = append(vs, v)
			}
		}
	}
	return summarise(vs).Median
}

// rowDef defines a Row from metric keys.
type rowDef struct {
	id, figure, unit string
	refUnit          string
	value, reference string
	refName          string
	better           string
	// goal is evaluated on the value ("value") or the ratio ("ratio"); limitKind "max" means
	// at most limit, "min" at least limit.
	goal, goalOn, limitKind string
	limit                   float64
	// achieved, for paced rows, is the metric of the rate the target actually answered, and
	// offered the rate asked for.
	achieved, refAchieved string
	offered               float64
}

// pollRates are P2's offered loads.
var pollRates = []float64{500, 2000, 5000}

func rowDefs() []rowDef {
	defs := []rowDef{
		{id: "P1", figure: "initiate latency p50", unit: "ms", value: "P1.facade.p50_ms", reference: "P1.bare.p50_ms",
			refName: "bare Create p50", better: "lower"},
		{id: "P1", figure: "initiate latency p99", unit: "ms", value: "P1.facade.p99_ms", reference: "P1.bare.p99_ms",
			refName: "bare Create p99", better: "lower", goal: "p99 ≤ 20 ms", goalOn: "value", limitKind: "max", limit: 20},
	}
	for _, rate := range pollRates {
		r := fmt.Sprint(rate)
		achieved, refAchieved := "P2."+r+".facade.achieved_per_s", "P2."+r+".bare.achieved_per_s"
		p99 := rowDef{id: "P2", figure: "status poll p99 @ " + r + "/s", unit: "ms",
			value: "P2." + r + ".facade.p99_ms", reference: "P2." + r + ".bare.p99_ms", refName: "bare handler p99", better: "lower",
			achieved: achieved, refAchieved: refAchieved, offered: rate}
		if rate == 2000 {
			p99.goal, p99.goalOn, p99.limitKind, p99.limit = "p99 ≤ 5 ms", "value", "max", 5
		}
		defs = append(defs, rowDef{id: "P2", figure: "status poll p50 @ " + r + "/s", unit: "ms",
			value: "P2." + r + ".facade.p50_ms", reference: "P2." + r + ".bare.p50_ms", refName: "bare handler p50", better: "lower",
			achieved: achieved, refAchieved: refAchieved, offered: rate}, p99)
	}
	defs = append(defs,
		rowDef{id: "P2", figure: "apiserver requests during polls", unit: "requests",
			value: "P2.apiserver_requests", reference: "P2.polls", refName: "polls", refUnit: "polls", better: "lower",
			goal: "0 per poll", goalOn: "ratio", limitKind: "max", limit: 0},
		rowDef{id: "P2", figure: "facade peak RSS during paced polls", unit: "MiB",
			value: "P2.facade.rss_peak_mib", reference: "P2.facade.rss_idle_mib", refName: "same process idle", better: "lower"},
		rowDef{id: "P2t", figure: "status poll max throughput (wrk)", unit: "polls/s",
			value: "P2t.facade.polls_per_s", reference: "P2t.bare.polls_per_s", refName: "bare handler", better: "higher",
			goal: "≥ 30,000/s", goalOn: "value", limitKind: "min", limit: 30000},
		rowDef{id: "P2t", figure: "server CPU per poll (wrk)", unit: "µs",
			value: "P2t.facade.cpu_us_per_poll", reference: "P2t.bare.cpu_us_per_poll", refName: "bare handler", better: "lower"},
		rowDef{id: "P2t", figure: "facade peak RSS under load", unit: "MiB",
			value: "P2t.facade.rss_peak_mib", reference: "P2t.facade.rss_idle_mib", refName: "same process idle", better: "lower",
			goal: "≤ 64 MiB", goalOn: "value", limitKind: "max", limit: 64},
		rowDef{id: "P2t", figure: "facade peak anonymous RSS under load", unit: "MiB",
			value: "P2t.facade.rss_anon_peak_mib", reference: "P2t.facade.rss_anon_idle_mib", refName: "same process idle",
			better: "lower"},
	)
	for _, kind := range []string{"incompressible", "csv"} {
		defs = append(defs, rowDef{id: "P3", figure: "bundling throughput, " + kind, unit: "MB/s",
			value: "P3." + kind + ".bundle_mb_s", reference: "P3." + kind + ".raw_mb_s", refName: "raw PutObject",
			better: "higher", goal: "ratio ≥ 0.95", goalOn: "ratio", limitKind: "min", limit: 0.95})
	}
	defs = append(defs,
		rowDef{id: "P3", figure: "bundling vs GET→PUT copy, both two parts in flight (diagnostic)", unit: "MB/s",
			value: "P3.pipeline.bundle.mb_s", reference: "P3.pipeline.copy-c2.mb_s", refName: "copy, two parts in flight", better: "higher"},
		rowDef{id: "P3", figure: "copy with ConcurrentStreamParts=2 (diagnostic)", unit: "MB/s",
			value: "P3.pipeline.copy-c2.mb_s", reference: "P3.pipeline.copy.mb_s", refName: "sequential copy", better: "higher"},
		rowDef{id: "P3", figure: "worker-side CPU per 64 MiB, bundle (diagnostic)", unit: "ms",
			value: "P3.pipeline.bundle.client_cpu_ms", reference: "P3.pipeline.raw.client_cpu_ms", refName: "raw PutObject",
			better: "lower"},
	)
	defs = append(defs,
		rowDef{id: "P4", figure: "worker peak RSS, 10 MiB bundle", unit: "MiB", value: "P4.10MiB.peak_rss_mib",
			reference: "P4.idle_rss_mib", refName: "same binary idle", better: "lower",
			goal: "≤ 64 MiB", goalOn: "value", limitKind: "max", limit: 64},
		rowDef{id: "P4", figure: "worker peak RSS, 1 GiB bundle", unit: "MiB", value: "P4.1GiB.peak_rss_mib",
			reference: "P4.10MiB.peak_rss_mib", refName: "10 MiB bundle", better: "lower",
			goal: "≤ 64 MiB", goalOn: "value", limitKind: "max", limit: 64},
		// The shipped binary's own file pages are most of its RSS; this is what its code allocates.
		rowDef{id: "P4", figure: "worker peak anonymous RSS, 1 GiB bundle (diagnostic)", unit: "MiB",
			value: "P4.1GiB.peak_anon_rss_mib", reference: "P4.10MiB.peak_anon_rss_mib", refName: "10 MiB bundle", better: "lower"},
	)
	defs = append(defs,
		rowDef{id: "P5", figure: "Job Complete → Download Completed with URL, p50", unit: "ms",
			value: "P5.complete_to_url.p50_ms", reference: "P5.patch_to_watch.p50_ms", refName: "one patch → its watch event p50",
			better: "lower", goal: "p50 ≤ 300 ms", goalOn: "value", limitKind: "max", limit: 300},
		rowDef{id: "P5", figure: "Job Complete → Download Completed with URL, p99", unit: "ms",
			value: "P5.complete_to_url.p99_ms", reference: "P5.patch_to_watch.p99_ms", refName: "one patch → its watch event p99",
			better: "lower"},
	)
	for _, set := range []struct{ key, what string }{{"short", "1 MiB"}, {"long", "96 MiB (about 12 s)"}} {
		k := "P6." + set.key + "."
		defs = append(defs,
			// The goal is per Download and depends on its processing time; the reference column
			// holds the goal's value for the processing time measured in the same run.
			rowDef{id: "P6", figure: "apiserver writes per Download by the facade, the controller and the worker, " + set.what,
				unit: "writes", value: k + "operator_writes_per_download", reference: k + "goal_writes",
				refName: "goal 6 + s/3 for the measured s", better: "lower", goal: "≤ 6 + 1 per 3 s", goalOn: "ratio",
				limitKind: "max", limit: 1},
			rowDef{id: "P6", figure: "apiserver writes per Download by the Job controller and the garbage collector (informational), " + set.what,
				unit: "writes", value: k + "job_controller_writes_per_download", better: "lower"},
			rowDef{id: "P6", figure: "apiserver writes per Download on Pods and Events (informational), " + set.what,
				unit: "writes", value: k + "kube_writes_per_download", better: "lower"},
		)
	}
	defs = append(defs,
		rowDef{id: "P7", figure: "cold start: every settled Download reconciled once", unit: "s", value: "P7.all_reconciled_s",
			reference: "P7.list_s", refName: "paged list of the same Downloads", better: "lower",
			goal: "≤ 30 s", goalOn: "value", limitKind: "max", limit: 30},
		// The controller's start-up (lists, watches) is a handful of requests in all; a request
		// per Download would show as 1.
		rowDef{id: "P7", figure: "cold start: apiserver requests per settled Download", unit: "requests",
			value: "P7.apiserver_requests_per_download", better: "lower",
			goal: "0 per settled Download", goalOn: "value", limitKind: "max", limit: 0.01},
		rowDef{id: "P7", figure: "cold start: controller peak RSS", unit: "MiB", value: "P7.peak_rss_mib",
			better: "lower", goal: "≤ 256 MiB", goalOn: "value", limitKind: "max", limit: 256},
		rowDef{id: "P7", figure: "cold start: Downloads reconciled per second", unit: "/s", value: "P7.downloads_per_s",
			better: "higher"},
		rowDef{id: "P8", figure: "end to end, 100 small Downloads of distinct files at once: throughput", unit: "Downloads/min",
			value: "P8.downloads_per_min", better: "higher"},
	)
	defs = append(defs,
		rowDef{id: "P8", figure: "initiate latency during the burst of 100, p50", unit: "ms", value: "P8.initiate.p50_ms",
			reference: "P8.bare_create.p50_ms", refName: "a bare burst of 100 Creates by a ServiceAccount, p50", better: "lower"},
		rowDef{id: "P8", figure: "initiate latency during the burst of 100, p99", unit: "ms", value: "P8.initiate.p99_ms",
			reference: "P8.bare_create.p99_ms", refName: "a bare burst of 100 Creates by a ServiceAccount, p99", better: "lower",
			goal: "p99 ≤ 250 ms", goalOn: "value", limitKind: "max", limit: 250},
		rowDef{id: "P8", figure: "end to end, 100 at once, half repeating the other half's files: throughput",
			unit: "Downloads/min", value: "P8.repeated.downloads_per_min", reference: "P8.downloads_per_min",
			refName: "all distinct, same run", better: "higher"},
		rowDef{id: "P8", figure: "Jobs created for those 100", unit: "Jobs", value: "P8.repeated.jobs",
			reference: "P8.jobs", refName: "all distinct, same run", better: "lower"},
	)
	for _, step := range p8Steps {
		for _, q := range []string{"p50", "p90"} {
			defs = append(defs, rowDef{id: "P8", figure: step.what + ", " + q, unit: "s",
				value: "P8." + step.key + "." + q + "_s", better: "lower"})
		}
	}
	defs = append(defs,
		rowDef{id: "P9", figure: "repeated request, archive stored: initiate → Completed, p50", unit: "ms",
			value: "P9.repeat.p50_ms", reference: "P9.first_ms", refName: "the first request, through its Job", better: "lower"},
		rowDef{id: "P9", figure: "repeated request, archive stored: initiate → Completed, p99", unit: "ms",
			value: "P9.repeat.p99_ms", reference: "P9.first_ms", refName: "the first request, through its Job", better: "lower"},
		rowDef{id: "P9", figure: "Jobs created by the repeats", unit: "Jobs", value: "P9.jobs", reference: "P9.repeats",
			refName: "repeats", better: "lower", goal: "0 Jobs", goalOn: "value", limitKind: "max", limit: 0},
	)
	return defs
}

// p8Steps are the rows of P8's time breakdown, in the order a Download goes through them.
var p8Steps = []struct{ key, what string }{
	{"total", "initiate → Download Completed"},
	{"initiate_to_job", "initiate → Job created"},
	{"initiate_to_download", "of which initiate → Download created"},
	{"download_to_job", "of which Download created → Job created"},
	{"job_to_pod_started", "Job created → worker container started"},
	{"pod_created_to_bound", "of which Pod created → scheduled"},
	{"pod_bound_to_started", "of which Pod scheduled → container started"},
	{"pod_started_to_job_complete", "worker container started → Job Complete"},
	{"result_to_job_complete", "of which worker's result → Job Complete"},
	{"job_complete_to_completed", "Job Complete → Download Completed"},
}

// requestsPerPollTolerance is how many apiserver requests per poll still count as none: a watch
// the apiserver closes and the informer reopens during a poll window is one request in thousands
// of polls, and not a request per poll.
const requestsPerPollTolerance = 0.001

func newResults(opts options) *Results {
	return &Results{Machine: machineInfo(), Runs: opts.runs, Figures: opts.only,
		Metrics: map[string]Summary{}, Notes: map[string]string{}}
}

// newSample starts the values of one more run.
func (r *Results) newSample() map[string]float64 {
	r.Samples = append(r.Samples, map[string]float64{})
	return r.Samples[len(r.Samples)-1]
}

// sample returns run i's values, adding runs as needed.
func (r *Results) sample(i int) map[string]float64 {
	for len(r.Samples) <= i {
		r.newSample()
	}
	return r.Samples[i]
}

func summarise(values []float64) Summary {
	if len(values) == 0 {
		return Summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	n := len(sorted)
	median := sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return Summary{Median: median, Min: sorted[0], Max: sorted[n-1], Runs: values}
}

// summarise fills Metrics, Rows and StatusLatency from the samples.
func (r *Results) summarise() {
	r.Date = time.Now().UTC().Format(time.RFC3339)
	keys := map[string]bool{}
	for _, s := range r.Samples {
		// A step no Download went through (a percentile of nothing) was not measured; JSON
		// cannot hold NaN, and a missing value shows as such in the table.
		maps.DeleteFunc(s, func(_ string, v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })
		for k := range s {
			keys[k] = true
		}
	}
	values := func(key string) []float64 {
		var vs []float64
		for _, s := range r.Samples {
			if v, ok := s[key]; ok {
				vs = append(vs, v)
			}
		}
		return vs
	}
	for k := range keys {
		r.Metrics[k] = summarise(values(k))
	}
	for _, d := range rowDefs() {
		if !keys[d.value] {
			continue
		}
		row := Row{ID: d.id, Figure: d.figure, Unit: d.unit, RefUnit: d.refUnit, Value: r.Metrics[d.value], RefName: d.refName,
			Better: d.better, Goal: d.goal, Measured: r.Date}
		if keys[d.reference] {
			row.Reference = r.Metrics[d.reference]
			var ratios []float64
			for _, s := range r.Samples {
				v, okV := s[d.value]
				ref, okR := s[d.reference]
				if okV && okR && ref != 0 {
					ratios = append(ratios, v/ref)
				}
			}
			row.Ratio = summarise(ratios)
		}
		if d.goal != "" {
			met := d.meets(row.Value.Median, row.Ratio.Median)
			row.Met = &met
		}
		if d.achieved != "" {
			var notes []string
			for _, k := range []struct{ key, who string }{{d.achieved, "facade"}, {d.refAchieved, "bare handler"}} {
				if a, ok := r.Metrics[k.key]; ok && a.Min < 0.97*d.offered {
					notes = append(notes, fmt.Sprintf("the %s polls fell short of the offered rate in %d of %d runs "+
						"(as few as %.0f/s: the target or the load generator saturated)",
						k.who, countBelow(a.Runs, 0.97*d.offered), len(a.Runs), a.Min))
					if k.key == d.refAchieved && a.Median < 0.97*d.offered {
						row.ReferenceSaturated = true
					}
				}
			}
			row.Note = strings.Join(notes, "; ")
		}
		r.Rows = append(r.Rows, row)
	}
	for _, rate := range pollRates {
		p := fmt.Sprintf("P2.%v.", rate)
		if !keys[p+"facade.p99_ms"] {
			continue
		}
		r.StatusLatency = append(r.StatusLatency, LatencyPoint{Rate: rate,
			FacadeP50: r.Metrics[p+"facade.p50_ms"], FacadeP99: r.Metrics[p+"facade.p99_ms"],
			BareP50: r.Metrics[p+"bare.p50_ms"], BareP99: r.Metrics[p+"bare.p99_ms"]})
	}
}

func countBelow(vs []float64, limit float64) int {
	n := 0
	for _, v := range vs {
		if v < limit {
			n++
		}
	}
	return n
}

// meets evaluates the goal; slack widens the limit (1 is the goal itself).
func (d rowDef) meetsWithSlack(value, ratio, slack float64) bool {
	v := value
	if d.goalOn == "ratio" {
		v = ratio
	}
	if math.IsNaN(v) {
		return false
	}
	limit := d.limit
	if d.id == "P2" && d.goalOn == "ratio" {
		limit = requestsPerPollTolerance
	}
	if d.limitKind == "max" {
		return v <= limit*slack
	}
	return v >= limit/slack
}

func (d rowDef) meets(value, ratio float64) bool { return d.meetsWithSlack(value, ratio, 1) }

// compare lists clear regressions of fresh against committed: a ratio worse by more than
// tolerance times, or a goal that was met and is now missed by more than half its limit while
// the ratio to the reference got worse too (a busy machine slows the reference alike, and is no
// regression). Rows whose reference could not keep its offered load are inconclusive and skipped.
func compare(committed, fresh *Results, tolerance float64) []string {
	defs := map[string]rowDef{}
	for _, d := range rowDefs() {
		defs[d.id+"|"+d.figure] = d
	}
	old := map[string]Row{}
	for _, row := range committed.Rows {
		old[row.ID+"|"+row.Figure] = row
	}
	var problems []string
	for _, row := range fresh.Rows {
		key := row.ID + "|" + row.Figure
		before, ok := old[key]
		if !ok {
			continue
		}
		if row.ReferenceSaturated {
			fmt.Printf("inconclusive: %s %s (even the reference fell short of the offered rate: the machine is too busy)\n",
				row.ID, row.Figure)
			continue
		}
		ratioWorse := func(factor float64) bool {
			b, f := before.Ratio.Median, row.Ratio.Median
			if math.IsNaN(f) || math.IsNaN(b) {
				return true // no reference to blame the machine on
			}
			if b <= 0 {
				return f > 0
			}
			return (row.Better == "lower" && f > b*factor) || (row.Better == "higher" && f < b/factor)
		}
		if before.Ratio.Median > 0 && ratioWorse(tolerance) {
			problems = append(problems, fmt.Sprintf("%s %s: ratio to %s %.3g, was %.3g (worse by more than %gx)",
				row.ID, row.Figure, row.RefName, row.Ratio.Median, before.Ratio.Median, tolerance))
		}
		if d, ok := defs[key]; ok && before.Met != nil && *before.Met && !d.meetsWithSlack(row.Value.Median, row.Ratio.Median, 1.5) &&
			ratioWorse(1.25) {
			problems = append(problems, fmt.Sprintf("%s %s: goal %s was met, now badly missed (%s)",
				row.ID, row.Figure, row.Goal, formatValue(row.Value.Median, row.Unit)))
		}
	}
	return problems
}

// merge keeps the rows and metrics of figures the fresh results did not measure.
func merge(previous, fresh *Results) *Results {
	out := *fresh
	out.Metrics = maps.Clone(fresh.Metrics)
	out.Notes = maps.Clone(fresh.Notes)
	if out.Notes == nil {
		out.Notes = map[string]string{}
	}
	measured := func(id string) bool { return slices.Contains(fresh.Figures, id) }
	var rows []Row
	for _, d := range rowDefs() {
		key := d.id + "|" + d.figure
		if i := slices.IndexFunc(fresh.Rows, func(r Row) bool { return r.ID+"|"+r.Figure == key }); i >= 0 {
			rows = append(rows, fresh.Rows[i])
		} else if i := slices.IndexFunc(previous.Rows, func(r Row) bool { return r.ID+"|"+r.Figure == key }); i >= 0 && !measured(d.id) {
			rows = append(rows, previous.Rows[i])
		}
	}
	out.Rows = rows
	for k, v := range previous.Metrics {
		id, _, _ := strings.Cut(k, ".")
		if !measured(id) {
			out.Metrics[k] = v
		}
	}
	for k, v := range previous.Notes {
		if id, _, _ := strings.Cut(k, "."); !measured(id) && k != "facade-env" {
			out.Notes[k] = v
		}
	}
	if len(out.StatusLatency) == 0 && !measured("P2") {
		out.StatusLatency = previous.StatusLatency
	}
	for _, id := range previous.Figures {
		if !slices.Contains(out.Figures, id) {
			out.Figures = append(out.Figures, id)
		}
	}
	slices.SortFunc(out.Figures, func(a, b string) int { return slices.Index(allFigures, a) - slices.Index(allFigures, b) })
	// Raw samples are only comparable within one invocation; keep the fresh ones.
	return &out
}

func readResults(path string) (*Results, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &r, nil
}

func writeResults(path string, r *Results) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}

func formatValue(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case unit == "polls/s" || unit == "requests" || unit == "polls" || unit == "Downloads/min":
		return fmt.Sprintf("%.0f %s", v, unit)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	default:
		return fmt.Sprintf("%.2f %s", v, unit)
	}
}

func formatSpread(s Summary, unit string) string {
	if len(s.Runs) < 2 {
		return formatValue(s.Median, unit)
	}
	return fmt.Sprintf("%s [%s–%s]", formatValue(s.Median, unit), trimUnit(formatValue(s.Min, unit), unit), trimUnit(formatValue(s.Max, unit), unit))
}

func trimUnit(s, unit string) string { return strings.TrimSuffix(s, " "+unit) }

func formatRatio(s Summary) string {
	if math.IsNaN(s.Median) || len(s.Runs) == 0 {
		return "-"
	}
	f := func(v float64) string {
		if v != 0 && math.Abs(v) < 0.01 {
			return fmt.Sprintf("%.1e", v)
		}
		return fmt.Sprintf("%.2f", v)
	}
	if len(s.Runs) < 2 {
		return f(s.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", f(s.Median), f(s.Min), f(s.Max))
}

func printTable(w io.Writer, r *Results) {
	fmt.Fprintf(w, "\n%s, %d cores, %.1f GiB, kernel %s, %s — %d run(s), median [min–max]\n\n",
		r.Machine.CPU, r.Machine.Cores, r.Machine.MemoryGiB, r.Machine.Kernel, r.Machine.Go, r.Runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tfigure\tvalue\treference\tratio\tgoal\tmet\tnote")
	for _, row := range r.Rows {
		met, ref := row.metAndReference("NO", " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.ID, row.Figure, formatSpread(row.Value, row.Unit), ref,
			formatRatio(row.Ratio), row.Goal, met, row.Note)
	}
	_ = tw.Flush()
	var ids []string
	for id := range r.Notes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Fprintf(w, "\n%s: %s\n", id, r.Notes[id])
	}
}

// Markers around the generated table in docs/performance.md.
const (
	tableBegin = "<!-- bench:table begin (generated by go run ./hack/bench; edits are overwritten) -->"
	tableEnd   = "<!-- bench:table end -->"
)

// markdownTable renders the rows as the table of docs/performance.md.
func markdownTable(r *Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: median [min–max] over the runs. Ratio = value / reference, per run.\n\n", runsPerFigure(r))
	b.WriteString("| id | figure | value | reference (same run) | ratio | goal | met |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	var notes []string
	for _, row := range r.Rows {
		met, ref := row.metAndReference("**no**", ": ")
		figure := row.Figure
		if row.Note != "" {
			notes = append(notes, row.Note)
			figure += fmt.Sprintf(" [^%d]", len(notes))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", row.ID, figure, formatSpread(row.Value, row.Unit), ref,
			formatRatio(row.Ratio), row.Goal, met)
	}

	b.WriteString("\n")
	for i, n := range notes {
		fmt.Fprintf(&b, "[^%d]: %s.\n", i+1, n)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Measured %s on %s, %d cores, %.1f GiB RAM, kernel %s, %s; load average at the start %s.",
		r.Date, r.Machine.CPU, r.Machine.Cores, r.Machine.MemoryGiB, r.Machine.Kernel, r.Machine.Go, r.Machine.LoadAverage)
	var busy []string
	for _, p := range []struct{ prefix, what string }{{"P2.", "P2"}, {"P2t.facade.", "P2t (facade)"}, {"P2t.bare.", "P2t (bare handler)"},
		{"P5.", "P5"}, {"P8.", "P8"}} {
		if v := r.machineBusy(p.prefix); !math.IsNaN(v) {
			busy = append(busy, fmt.Sprintf("%s %.2f", p.what, v))
		}
	}
	if len(busy) > 0 {
		fmt.Fprintf(&b, " Cores the whole machine kept busy (all processes, median): %s of %d.", strings.Join(busy, ", "), r.Machine.Cores)
	}
	b.WriteString("\n")
	return b.String()
}

// runsPerFigure says how many runs the rows hold: a merged file keeps rows of older invocations,
// which may have had another --runs.
func runsPerFigure(r *Results) string {
	var groups []string
	var ids []string
	last := -1
	flush := func() {
		if len(ids) > 0 {
			groups = append(groups, fmt.Sprintf("%d run(s) for %s", last, strings.Join(ids, ", ")))
		}
	}
	for _, row := range r.Rows {
		if n := len(row.Value.Runs); n != last {
			flush()
			ids, last = nil, n
		}
		if !slices.Contains(ids, row.ID) {
			ids = append(ids, row.ID)
		}
	}
	flush()
	if len(groups) <= 1 {
		return fmt.Sprintf("%d run(s) per figure", r.Runs)
	}
	return strings.Join(groups, "; ")
}

// updateDoc replaces the generated table in the document at path, if it has the markers.
func updateDoc(path string, r *Results) (bool, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	doc := string(raw)
	begin, end := strings.Index(doc, tableBegin), strings.Index(doc, tableEnd)
	if begin < 0 || end < begin {
		return false, nil
	}
	doc = doc[:begin+len(tableBegin)] + "\n" + markdownTable(r) + doc[end:]
	return true, os.WriteFile(path, []byte(doc), 0o644)
}
