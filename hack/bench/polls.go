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
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/download-operator/download-operator/test/stack"
)

// measurePolls runs P2 (paced latency) and P2t (closed-loop throughput) once.
func (env *environment) measurePolls(ctx context.Context, opts options, latency, throughput bool, sample map[string]float64, results *Results) error {
	if latency {
		if err := env.measurePollLatency(ctx, opts, sample, results); err != nil {
			return err
		}
	}
	if throughput {
		if err := env.measurePollThroughput(ctx, opts, sample, results); err != nil {
			return err
		}
	}
	return nil
}

// pollChunks is how many alternating pieces each target's share of a measurement is cut into:
// facade, bare, facade, bare, ... so that a burst of other load on a shared machine hits both.
const pollChunks = 4

// measurePollLatency is P2: each offered load for opts.pollStep per target, in alternating
// chunks of the facade and the bare handler, after a one-second warm-up of each.
func (env *environment) measurePollLatency(ctx context.Context, opts options, sample map[string]float64, results *Results) error {
	if err := env.restartPolled(ctx); err != nil {
		return err
	}
	sample["P2.facade.rss_idle_mib"] = env.idleRSS()
	resetPeakRSS(env.polled.Pid())
	mem := startMemSampler(env.polled.Pid())
	var requests, polls int
	var seen []string
	targets := []struct{ name, url string }{{"facade", env.statusURL}, {"bare", env.bareURL}}
	for _, rate := range pollRates {
		for _, target := range targets {
			if _, err := attack(ctx, target.url, rate, time.Second); err != nil {
				return err
			}
		}
		merged := make([]vegeta.Metrics, len(targets))
		sent := make([]float64, len(targets))
		sending := make([]time.Duration, len(targets))
		busy := make([]float64, len(targets))
		for range pollChunks {
			for i, target := range targets {
				before := env.proxy.count()
				window := startCPUWindow()
				m, err := attack(ctx, target.url, rate, opts.pollStep/pollChunks)
				if err != nil {
					return err
				}
				busy[i] += window.stop().machineCores / pollChunks
				if target.name == "facade" {
					extra := env.proxy.since(before)
					requests += len(extra)
					polls += int(m.Requests)
					seen = append(seen, extra...)
				}
				sent[i] += float64(m.Requests)
				sending[i] += m.Duration
				for _, r := range m.results {
					merged[i].Add(r)
				}
			}
		}
		for i, target := range targets {
			m := &merged[i]
			m.Close()
			achieved := sent[i] / sending[i].Seconds()
			key := fmt.Sprintf("P2.%v.%s.", rate, target.name)
			sample[key+"p50_ms"] = ms(m.Latencies.P50)
			sample[key+"p90_ms"] = ms(m.Latencies.P90)
			sample[key+"p99_ms"] = ms(m.Latencies.P99)
			sample[key+"max_ms"] = ms(m.Latencies.Max)
			sample[key+"achieved_per_s"] = achieved
			sample[key+"success"] = m.Success
			sample[key+"machine_cores"] = busy[i]
			logf("P2 %-6s %5.0f/s: p50 %.3f ms, p99 %.3f ms, max %.1f ms, achieved %.0f/s, success %.4f; machine %.2f of %d cores busy",
				target.name, rate, ms(m.Latencies.P50), ms(m.Latencies.P99), ms(m.Latencies.Max), achieved, m.Success, busy[i], results.Machine.Cores)
			if m.Success < 1 {
				logf("P2 %s errors: %v", target.name, m.Errors)
			}
		}
	}
	sample["P2.apiserver_requests"] = float64(requests)
	sample["P2.polls"] = float64(polls)
	anon, _ := mem.stop()
	if peak, _, err := rssMiB(env.polled.Pid()); err == nil {
		sample["P2.facade.rss_peak_mib"] = peak
		sample["P2.facade.rss_anon_peak_mib"] = anon
		logf("P2 facade RSS: idle %.1f MiB, peak %.1f MiB (anonymous %.1f)", env.polledIdleRSS, peak, anon)
	}
	note := fmt.Sprintf("%d apiserver requests from the polled facade during %d polls (counted by a proxy between "+
		"the facade process and the apiserver)", requests, polls)
	if len(seen) > 0 {
		note += ": " + strings.Join(seen, "; ")
	}
	results.Notes["P2"] = note
	logf("P2 %s", note)
	return nil
}

// pollWorkers bounds the polls in flight in P2.
const pollWorkers = 256

// pollRun is one vegeta attack: its metrics, and its results for merging with others.
type pollRun struct {
	vegeta.Metrics
	results []*vegeta.Result
}

// attack polls url at rate for d with vegeta.
func attack(ctx context.Context, url string, rate float64, d time.Duration) (*pollRun, error) {
	// At most pollWorkers polls in flight, as behind a proxy with a bounded pool of upstream
	// connections: an unbounded open loop against a saturated server only measures how many
	// connections it can open. A saturated target shows as an achieved rate below the offered.
	attacker := vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true), vegeta.Workers(16),
		vegeta.MaxWorkers(pollWorkers), vegeta.Connections(pollWorkers))
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url})
	pacer := vegeta.ConstantPacer{Freq: int(rate), Per: time.Second}
	var m pollRun
	stop := context.AfterFunc(ctx, func() { attacker.Stop() })
	defer stop()
	for res := range attacker.Attack(targeter, pacer, d, "poll") {
		res.Body, res.Headers = nil, nil
		m.Add(res)
		m.results = append(m.results, res)
	}
	m.Close()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if m.Requests == 0 {
		return nil, fmt.Errorf("no polls of %s completed", url)
	}
	return &m, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// measurePollThroughput is P2t: wrk as fast as the server answers, for each connection count,
// against the facade and the bare handler; the best count of each is the figure.
func (env *environment) measurePollThroughput(ctx context.Context, opts options, sample map[string]float64, results *Results) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("P2t needs wrk (apt-get install -y wrk): %w", err)
	}
	// A fresh process, so that the peak is this load's and not P2's.
	if err := env.restartPolled(ctx); err != nil {
		return err
	}
	idle := env.idleRSS()
	resetPeakRSS(env.polled.Pid())
	mem := startMemSampler(env.polled.Pid())
	type best struct {
		run   wrkRun
		conns int
	}
	bests := map[string]best{}
	targets := []struct {
		name string
		url  string
		proc *process
	}{{"facade", env.statusURL, env.polled}, {"bare", env.bareURL, env.bare}}
	for _, target := range targets {
		if _, err := runWrk(ctx, target.url, opts.wrkThreads, opts.wrkConns[0], 2*time.Second, target.proc.Pid()); err != nil {
			return err
		}
	}
	// Each connection count runs in wrkChunks alternating pieces per target.
	chunk := max(time.Second, opts.wrkDuration/wrkChunks)
	for _, conns := range opts.wrkConns {
		runs := make([][]wrkRun, len(targets))
		for range wrkChunks {
			for i, target := range targets {
				run, err := runWrk(ctx, target.url, opts.wrkThreads, conns, chunk, target.proc.Pid())
				if err != nil {
					return err
				}
				runs[i] = append(runs[i], run)
			}
		}
		for i, target := range targets {
			run := combineWrk(runs[i])
			logf("P2t %-6s wrk -t%d -c%d: %.0f polls/s, p50 %.3f ms, p99 %.3f ms; CPU: server %.2f cores (%.1f µs/poll), "+
				"wrk %.2f cores, machine %.2f of %d cores busy; %d errors",
				target.name, opts.wrkThreads, conns, run.perSecond, run.p50, run.p99, run.serverCores, run.serverUSPerPoll,
				run.wrkCores, run.machineCores, results.Machine.Cores, run.errors)
			if b, ok := bests[target.name]; !ok || run.perSecond > b.run.perSecond {
				bests[target.name] = best{run, conns}
			}
		}
	}
	for name, b := range bests {
		key := "P2t." + name + "."
		sample[key+"polls_per_s"] = b.run.perSecond
		sample[key+"p50_ms"] = b.run.p50
		sample[key+"p99_ms"] = b.run.p99
		sample[key+"connections"] = float64(b.conns)
		sample[key+"server_cores"] = b.run.serverCores
		sample[key+"cpu_us_per_poll"] = b.run.serverUSPerPoll
		sample[key+"wrk_cores"] = b.run.wrkCores
		sample[key+"machine_cores"] = b.run.machineCores
		sample[key+"errors"] = float64(b.run.errors)
	}
	anon, file := mem.stop()
	peak, current, err := rssMiB(env.polled.Pid())
	if err != nil {
		return err
	}
	sample["P2t.facade.rss_peak_mib"] = peak
	sample["P2t.facade.rss_end_mib"] = current
	sample["P2t.facade.rss_idle_mib"] = idle
	sample["P2t.facade.rss_anon_peak_mib"] = anon
	sample["P2t.facade.rss_anon_idle_mib"] = env.polledIdleAnon
	sample["P2t.facade.rss_file_peak_mib"] = file
	logf("P2t facade RSS: idle %.1f MiB (anonymous %.1f), peak under wrk %.1f MiB (anonymous %.1f, file-backed %.1f), after %.1f MiB",
		idle, env.polledIdleAnon, peak, anon, file, current)
	if opts.perf && !env.profiled {
		env.profiled = true
		if _, err := exec.LookPath("perf"); err != nil {
			logf("P2t: no perf, so no profile")
		} else {
			for _, target := range []struct {
				name string
				url  string
				proc *process
			}{{"facade", env.statusURL, env.polled}, {"bare", env.bareURL, env.bare}} {
				shares, us, err := profilePolls(ctx, env.dir, target.name, target.url, target.proc.Pid(), opts.wrkThreads, bests[target.name].conns)
				if err != nil {
					logf("P2t: profiling the %s failed: %v", target.name, err)
					continue
				}
				for frame, share := range shares {
					sample["P2t.profile."+target.name+"."+frame+"_pct"] = share
				}
				sample["P2t.profile."+target.name+".cpu_us_per_poll"] = us
				desc := describeProfile(shares, us)
				results.Notes["P2t.profile."+target.name] = fmt.Sprintf("perf, %.1f µs CPU per poll: %s", us, desc)
				logf("P2t profile of the %s (%.1f µs CPU per poll, share of its CPU, inclusive): %s", target.name, us, desc)
			}
		}
	}
	results.Notes["P2t"] = fmt.Sprintf("wrk -t%d with %v connections, %s each, best count per target; "+
		"CPU from /proc (server) and rusage (wrk)", opts.wrkThreads, opts.wrkConns, opts.wrkDuration)
	return nil
}

// restartPolled replaces the polled facade with a fresh process, so that each measurement
// starts from the same state; its idle RSS is read once it is ready.
func (env *environment) restartPolled(ctx context.Context) error {
	path := strings.TrimPrefix(env.statusURL, env.polled.url)
	env.polled.stop()
	var err error
	if env.polled, err = env.startFacade(ctx, "polled-facade", env.proxiedKubeconfig, stack.Namespace); err != nil {
		return err
	}
	env.statusURL = env.polled.url + path
	if _, _, err := get(env.statusURL); err != nil {
		return fmt.Errorf("the restarted facade does not answer the poll: %w", err)
	}
	env.polledIdleRSS, env.polledIdleAnon = 0, 0
	env.idleRSS()
	return nil
}

// idleRSS is the polled facade's RSS before any load, read once per process.
func (env *environment) idleRSS() float64 {
	if env.polledIdleRSS == 0 {
		_, env.polledIdleRSS, _ = rssMiB(env.polled.Pid())
		anon, _ := procField(fmt.Sprintf("/proc/%d/status", env.polled.Pid()), "RssAnon:")
		env.polledIdleAnon = anon / 1024
	}
	return env.polledIdleRSS
}

// resetPeakRSS sets a process's VmHWM back to its current RSS (clear_refs 5), so that the
// next peak is of what follows.
func resetPeakRSS(pid int) {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		logf("cannot reset the peak RSS of pid %d (%v); the peak includes earlier load", pid, err)
	}
}

// wrkChunks is how many alternating pieces each target's wrk time is cut into.
const wrkChunks = 2

// combineWrk adds runs up into one: rates and CPU from the totals; the latency percentiles are
// the worst of the runs.
func combineWrk(runs []wrkRun) wrkRun {
	var c wrkRun
	var busy float64
	for _, r := range runs {
		c.requests += r.requests
		c.wall += r.wall
		c.loaded += r.loaded
		c.wrkCPU += r.wrkCPU
		c.serverCP += r.serverCP
		c.errors += r.errors
		c.p50, c.p99 = max(c.p50, r.p50), max(c.p99, r.p99)
		busy += r.machineCores * r.wall.Seconds()
	}
	if secs := c.loaded.Seconds(); secs > 0 {
		c.perSecond = c.requests / secs
	}
	if secs := c.wall.Seconds(); secs > 0 {
		c.serverCores = c.serverCP.Seconds() / secs
		c.wrkCores = c.wrkCPU.Seconds() / secs
		c.machineCores = busy / secs
	}
	if c.requests > 0 {
		c.serverUSPerPoll = float64(c.serverCP.Microseconds()) / c.requests
	}
	return c
}

// wrkRun is one wrk run with the CPU it and the server used.
type wrkRun struct {
	perSecond       float64
	p50, p99        float64
	errors          int
	serverCores     float64
	serverUSPerPoll float64
	wrkCores        float64
	machineCores    float64
	requests        float64
	wall            time.Duration
	// loaded is how long wrk itself says it sent load.
	loaded           time.Duration
	wrkCPU, serverCP time.Duration
}

var (
	wrkRate      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkTotal     = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(\w+),`)
	wrkPercentle = regexp.MustCompile(`^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx    = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSocket    = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func runWrk(ctx context.Context, url string, threads, conns int, d time.Duration, serverPID int) (wrkRun, error) {
	cmd := exec.CommandContext(ctx, "wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(int(d.Seconds()))+"s", "--latency", url)
	window := startCPUWindow(serverPID)
	out, err := cmd.Output()
	use := window.stop()
	if err != nil {
		return wrkRun{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	run := wrkRun{wall: use.wall, serverCP: use.procs[0], serverCores: use.cores(0), machineCores: use.machineCores}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		run.wrkCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		run.wrkCores = run.wrkCPU.Seconds() / use.wall.Seconds()
	}
	text := string(out)
	if m := wrkRate.FindStringSubmatch(text); m != nil {
		run.perSecond, _ = strconv.ParseFloat(m[1], 64)
	} else {
		return run, fmt.Errorf("no Requests/sec in wrk's output:\n%s", text)
	}
	if m := wrkTotal.FindStringSubmatch(text); m != nil {
		run.requests, _ = strconv.ParseFloat(m[1], 64)
		if d, err := time.ParseDuration(m[2] + m[3]); err == nil {
			run.loaded = d
		}
	}
	if run.loaded == 0 {
		run.loaded = use.wall
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		m := wrkPercentle.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if m[1] == "50" {
			run.p50 = v
		} else {
			run.p99 = v
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(text); m != nil {
		n, _ := strconv.Atoi(m[1])
		run.errors += n
	}
	if m := wrkSocket.FindStringSubmatch(text); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			run.errors += n
		}
	}
	if run.requests > 0 {
		run.serverUSPerPoll = float64(run.serverCP.Microseconds()) / run.requests
	}
	return run, nil
}
