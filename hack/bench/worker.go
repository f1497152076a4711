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
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/download-operator/download-operator/test/testenv"
)

// pipelineUnits map BenchmarkUploadPipeline's unit suffixes to metric names.
var pipelineUnits = map[string]string{
	"-MB/s": "mb_s", "-heap-MiB": "heap_peak_mib", "-client-cpu-ms": "client_cpu_ms", "-minio-cpu-ms": "minio_cpu_ms",
}

// benchLine is one result line of `go test -bench`.
type benchLine struct {
	name    string
	n       int
	metrics map[string]float64
}

// benchLineRE matches "BenchmarkX/sub-2   3   123 ns/op   4.5 unit ...".
var benchLineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

// parseBench reads the result lines of `go test -bench` output (the benchfmt text format: a
// name, an iteration count, then value-unit pairs).
func parseBench(r io.Reader) []benchLine {
	var lines []benchLine
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		line := benchLine{name: m[1], n: n, metrics: map[string]float64{}}
		fields := strings.Fields(m[3])
		for i := 0; i+1 < len(fields); i += 2 {
			if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
				line.metrics[fields[i+1]] = v
			}
		}
		lines = append(lines, line)
	}
	return lines
}

// goBench runs benchmarks of ./internal/worker and returns their lines; its output goes to
// stderr as it comes.
func goBench(ctx context.Context, pattern, benchtime string, count int) ([]benchLine, error) {
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "-count", strconv.Itoa(count),
		"-timeout", "60m", "./internal/worker/"}
	logf("go %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = testenv.RepoRoot()
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test -bench %s: %w", pattern, err)
	}
	return parseBench(&out), nil
}

// measureWorker runs P3 and P4 through the worker's benchmarks, opts.runs times each (-count),
// and files run i's lines under sample i.
func measureWorker(ctx context.Context, opts options, throughput, rss bool, results *Results) error {
	// bench runs the benchmarks that pattern matches and files each line under its run's sample.
	bench := func(pattern, benchtime string, each func(sample map[string]float64, l benchLine)) error {
		lines, err := goBench(ctx, pattern, benchtime, opts.runs)
		if err != nil {
			return err
		}
		// The i-th line of a benchmark name is run i.
		seen := map[string]int{}
		for _, l := range lines {
			i := seen[l.name]
			seen[l.name]++
			each(results.sample(i), l)
		}
		return nil
	}
	if throughput {
		err := bench("^(BenchmarkBundleThroughput|BenchmarkUploadPipeline)$", "3x", func(s map[string]float64, l benchLine) {
			sub := strings.TrimPrefix(l.name, "BenchmarkBundleThroughput/")
			if sub != l.name {
				s["P3."+sub+".bundle_mb_s"] = l.metrics["bundle-MB/s"]
				s["P3."+sub+".raw_mb_s"] = l.metrics["raw-put-MB/s"]
				s["P3."+sub+".archive_per_source"] = l.metrics["archive/source"]
				return
			}
			if l.name == "BenchmarkUploadPipeline" {
				// Units are <way>-MB/s, <way>-heap-MiB, <way>-client-cpu-ms, <way>-minio-cpu-ms.
				for unit, v := range l.metrics {
					for suffix, name := range pipelineUnits {
						if way, ok := strings.CutSuffix(unit, suffix); ok {
							s["P3.pipeline."+way+"."+name] = v
						}
					}
				}
			}
		})
		if err != nil {
			return err
		}
		results.Notes["P3"] = "BenchmarkBundleThroughput (64 MiB, 3 iterations per run); BenchmarkUploadPipeline " +
			"splits the gap: P3.pipeline.* in the metrics"
	}
	if rss {
		return bench("^BenchmarkPeakRSS$", "1x", func(s map[string]float64, l benchLine) {
			sub := strings.TrimPrefix(l.name, "BenchmarkPeakRSS/")
			if sub == l.name {
				return
			}
			s["P4."+sub+".peak_rss_mib"] = l.metrics["peak-RSS-MiB"]
			s["P4."+sub+".peak_anon_rss_mib"] = l.metrics["peak-anon-RSS-MiB"]
			s["P4."+sub+".mb_s"] = l.metrics["MB/s"]
			s["P4.idle_rss_mib"] = l.metrics["idle-RSS-MiB"]
		})
	}
	return nil
}
