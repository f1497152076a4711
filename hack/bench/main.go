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

// Command bench measures the performance figures of docs/performance.md, each side by side
// with a reference measured in the same run on the same machine, and writes them down.
//
//	go run ./hack/bench                      # every figure, 3 runs; writes docs/performance-results.json,
//	                                         # docs/images/status-latency.png and the table in
//	                                         # docs/performance.md
//	go run ./hack/bench --only P2,P2t        # some figures; the others stay as committed
//	go run ./hack/bench --check              # a fresh run against the committed figures; exits 1
//	                                         # only on a clear regression, writes nothing
//
// The figures:
//
//	P1   initiate latency p50/p99 (POST /v1/download/initiate, which creates the Download), paced
//	     with vegeta, against a bare controller-runtime Create of the same object as the same user
//	P2   status poll latency p50/p99 at 500, 2,000 and 5,000 polls/s (vegeta, constant rate)
//	     against a bare net/http handler that returns the same bytes, and the apiserver requests
//	     the facade makes meanwhile (counted by a proxy between the facade and the apiserver)
//	P2t  closed-loop poll throughput with wrk (a C load generator, which leaves the server more
//	     CPU than a Go client would) against the same bare handler, with the facade's RSS and,
//	     when perf is installed, a profile of both servers
//	P3   bundling throughput against a raw minio-go PutObject of the same bytes
//	     (BenchmarkBundleThroughput in internal/worker; BenchmarkUploadPipeline takes it apart)
//	P4   the worker's peak RSS for 10 MiB and 1 GiB bundles (BenchmarkPeakRSS)
//	P5   Job Complete → Download Completed with its URL, p50/p99 over 50 small Downloads on the
//	     real cluster, against one apiserver write and its watch event
//	P6   apiserver writes over a Download's whole life, from the apiserver's request counters,
//	     against the goal 6 + 1 per 3 s of processing
//	P7   controller cold start with 10,000 settled Downloads in store (envtest): time until each
//	     was reconciled once, the apiserver requests that cost, and the controller's peak RSS
//	P8   100 small Downloads initiated at once through the facade of the real cluster:
//	     Downloads/min, initiate latency and where each Download's time goes; then 100 whose
//	     second half repeats the first half's files (shared Jobs), against the all-distinct run
//	P9   a request repeated while an identical Download's archive is stored: initiate →
//	     Completed, and the Jobs the repeats created (goal 0)
//
// The facades under test are separate processes of the real binary (`download-operator facade`,
// built from ./cmd), so that their RSS and CPU are theirs alone; the bare handler is a separate
// process too (this program, built and re-executed). Everything else (envtest's kube-apiserver
// and etcd, MinIO, the controller) is test/stack. Each figure and its reference alternate in
// chunks, so that bursts of other load on a shared machine hit both alike.
//
// P5, P6 and P8 run on the real local cluster of `make demo`: the bench runs hack/demo/up (which
// only starts what is not running) and reads .demo/env. P7 starts envtest alone and the
// controller as a process of the real binary.
//
// It needs KUBEBUILDER_ASSETS, MINIO_BIN and HELM_BIN, as `make test` sets them, and wrk for P2t.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// allFigures in the order of the table.
var allFigures = []string{"P1", "P2", "P2t", "P3", "P4", "P5", "P6", "P7", "P8", "P9"}

type options struct {
	only      []string
	out       string
	runs      int
	check     bool
	tolerance float64
	// pollStep is how long each paced poll rate runs, per target.
	pollStep time.Duration
	// initiateRate and initiateStep shape P1.
	initiateRate float64
	initiateStep time.Duration
	// wrkDuration, wrkThreads and wrkConns shape P2t.
	wrkDuration time.Duration
	wrkThreads  int
	wrkConns    []int
	// cached is how many other Downloads the polled facade holds in its cache.
	cached int
	// keep leaves the temporary directory (facade logs, profiles) in place.
	keep bool
	// perf profiles the facade and the bare handler once under wrk (P2t), when perf exists.
	perf bool
	// facadeEnv are NAME=VALUE pairs for the facade processes, for experiments.
	facadeEnv []string
	// hold keeps the environment up this long before measuring, for probing it by hand.
	hold time.Duration
	// p5Downloads, p5Rate, p6Downloads and p8Downloads size the figures of the real cluster.
	p5Downloads int
	p5Rate      float64
	p6Downloads int
	p8Downloads int
	// p9Repeats is how many times P9 repeats a request whose archive is stored.
	p9Repeats int
	// coldStartDownloads and coldStartTimeout shape P7.
	coldStartDownloads int
	coldStartTimeout   time.Duration
}

func main() {
	if os.Getenv(bareServerEnv) != "" {
		os.Exit(serveBare())
	}
	os.Exit(run())
}

func run() int {
	var opts options
	var only, conns, facadeEnv string
	flag.StringVar(&only, "only", strings.Join(allFigures, ","), "comma-separated figures to measure: "+strings.Join(allFigures, ","))
	flag.StringVar(&opts.out, "out", "docs", "directory of performance-results.json; the plot goes to <out>/images")
	flag.IntVar(&opts.runs, "runs", 3, "how many times to measure each figure; the table shows the median and the spread")
	flag.BoolVar(&opts.check, "check", false,
		"compare a fresh run with <out>/performance-results.json and fail only on a clear regression; writes nothing")
	flag.Float64Var(&opts.tolerance, "tolerance", 2,
		"--check: how many times worse a ratio may get before it counts as a regression")
	flag.DurationVar(&opts.pollStep, "poll-step", 10*time.Second,
		"P2: time per offered rate and target, run in 4 alternating chunks")
	flag.Float64Var(&opts.initiateRate, "initiate-rate", 20, "P1: initiates (and bare creates) per second")
	flag.DurationVar(&opts.initiateStep, "initiate-step", 4*time.Second,
		"P1: duration of each of the 8 alternating segments (bare, facade, bare, facade, ...)")
	flag.DurationVar(&opts.wrkDuration, "wrk-duration", 10*time.Second,
		"P2t: wrk time per target and connection count, run in 2 alternating chunks")
	flag.IntVar(&opts.wrkThreads, "wrk-threads", 1, "P2t: wrk threads")
	flag.StringVar(&conns, "wrk-connections", "16,64", "P2t: wrk connection counts to try; the best counts")
	flag.IntVar(&opts.cached, "cached-downloads", 500, "P2, P2t: other Downloads in the polled facade's cache")
	flag.BoolVar(&opts.keep, "keep", false, "keep the temporary directory (facade logs, wrk output)")
	flag.BoolVar(&opts.perf, "perf", true, "P2t: profile the facade and the bare handler with perf once, when perf is installed")
	flag.StringVar(&facadeEnv, "facade-env", "",
		"comma-separated NAME=VALUE pairs for the facade processes, for experiments (e.g. GOGC=400 or GOMAXPROCS=1, "+
			"the chart's CPU limit); the results then describe that configuration")
	flag.DurationVar(&opts.hold, "hold", 0, "P1, P2, P2t: keep the environment up this long before measuring, to probe it by hand")
	flag.IntVar(&opts.p5Downloads, "p5-downloads", 50, "P5: small Downloads created on the real cluster")
	flag.Float64Var(&opts.p5Rate, "p5-rate", 5, "P5: Downloads created per second")
	flag.IntVar(&opts.p6Downloads, "p6-downloads", 10, "P6: Downloads in each set (short, about 12 s)")
	flag.IntVar(&opts.p8Downloads, "p8-downloads", 100, "P8: small Downloads initiated at once through the facade")
	flag.IntVar(&opts.p9Repeats, "p9-repeats", 20, "P9: repeats of a request whose archive is stored")
	flag.IntVar(&opts.coldStartDownloads, "coldstart-downloads", 10000, "P7: Downloads in the store when the controller starts")
	flag.DurationVar(&opts.coldStartTimeout, "coldstart-timeout", 10*time.Minute,
		"P7: how long to wait for every Download to be reconciled; past it the time is extrapolated from the rate")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "unexpected arguments %q\n", flag.Args())
		return 2
	}
	for _, id := range strings.Split(only, ",") {
		id = strings.TrimSpace(id)
		i := slices.IndexFunc(allFigures, func(f string) bool { return strings.EqualFold(f, id) })
		if i < 0 {
			fmt.Fprintf(os.Stderr, "unknown figure %q; choose from %s\n", id, strings.Join(allFigures, ","))
			return 2
		}
		if !slices.Contains(opts.only, allFigures[i]) {
			opts.only = append(opts.only, allFigures[i])
		}
	}
	for _, c := range strings.Split(conns, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(c), &n); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bad --wrk-connections %q\n", conns)
			return 2
		}
		opts.wrkConns = append(opts.wrkConns, n)
	}
	for _, kv := range strings.Split(facadeEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			if !strings.Contains(kv, "=") {
				fmt.Fprintf(os.Stderr, "bad --facade-env %q: want NAME=VALUE\n", kv)
				return 2
			}
			opts.facadeEnv = append(opts.facadeEnv, kv)
		}
	}
	if opts.runs < 1 {
		fmt.Fprintln(os.Stderr, "--runs must be at least 1")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := measure(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	printTable(os.Stdout, results)

	resultsPath := filepath.Join(opts.out, resultsFile)
	if opts.check {
		committed, err := readResults(resultsPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench --check:", err)
			return 1
		}
		if problems := compare(committed, results, opts.tolerance); len(problems) > 0 {
			fmt.Println("\nREGRESSION against", resultsPath+":")
			for _, p := range problems {
				fmt.Println("  -", p)
			}
			return 1
		}
		fmt.Println("\nno clear regression against", resultsPath)
		return 0
	}
	merged := results
	if previous, err := readResults(resultsPath); err == nil {
		merged = merge(previous, results)
	} else if !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "bench: ignoring the previous results:", err)
	}
	if err := writeResults(resultsPath, merged); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Println("\nwrote", resultsPath)
	doc := filepath.Join(opts.out, "performance.md")
	if updated, err := updateDoc(doc, merged); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	} else if updated {
		fmt.Println("updated the table in", doc)
	}
	if len(results.StatusLatency) > 0 {
		png := filepath.Join(opts.out, "images", "status-latency.png")
		if err := plotStatusLatency(png, results); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		fmt.Println("wrote", png)
	}
	return 0
}

// measure runs the selected figures opts.runs times and summarises them.
func measure(ctx context.Context, opts options) (*Results, error) {
	results := newResults(opts)
	wants := func(id string) bool { return slices.Contains(opts.only, id) }
	if len(opts.facadeEnv) > 0 {
		results.Notes["facade-env"] = "facade processes ran with " + strings.Join(opts.facadeEnv, " ")
	}
	logf("machine: %s, %d cores, %.1f GiB RAM, kernel %s, %s; load average %s",
		results.Machine.CPU, results.Machine.Cores, results.Machine.MemoryGiB, results.Machine.Kernel,
		results.Machine.Go, results.Machine.LoadAverage)

	if wants("P1") || wants("P2") || wants("P2t") {
		env, err := startEnvironment(ctx, opts)
		if err != nil {
			return nil, err
		}
		err = func() error {
			defer env.stop()
			if opts.hold > 0 {
				logf("holding for %s: polled facade %s (pid %d), bare handler %s (pid %d), initiate facade %s (pid %d)",
					opts.hold, env.statusURL, env.polled.Pid(), env.bareURL, env.bare.Pid(), env.initiator.url, env.initiator.Pid())
				select {
				case <-time.After(opts.hold):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			for run := range opts.runs {
				logf("run %d of %d", run+1, opts.runs)
				sample := results.newSample()
				if wants("P2") || wants("P2t") {
					if err := env.measurePolls(ctx, opts, wants("P2"), wants("P2t"), sample, results); err != nil {
						return err
					}
				}
				if wants("P1") {
					if err := env.measureInitiate(ctx, opts, sample); err != nil {
						return err
					}
				}
			}
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	if wants("P5") || wants("P6") || wants("P8") || wants("P9") {
		if err := measureCluster(ctx, opts, wants, results); err != nil {
			return nil, err
		}
	}
	if wants("P7") {
		if err := measureColdStart(ctx, opts, results); err != nil {
			return nil, fmt.Errorf("P7: %w", err)
		}
	}
	if wants("P3") || wants("P4") {
		if err := measureWorker(ctx, opts, wants("P3"), wants("P4"), results); err != nil {
			return nil, err
		}
	}
	results.summarise()
	return results, nil
}

// workDir creates a temporary directory for a figure's files (binaries, logs, kubeconfigs).
// removeDir removes it, or with --keep leaves it for a look after the run, and says where.
func workDir(prefix string, keep bool) (dir string, removeDir func(), err error) {
	if dir, err = os.MkdirTemp("", prefix); err != nil {
		return "", nil, fmt.Errorf("creating a work directory: %w", err)
	}
	return dir, func() {
		if keep {
			logf("kept %s", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
