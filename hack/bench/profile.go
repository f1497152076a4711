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
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// profileFrame is a share of a server's CPU: the inclusive share of the frames whose symbol
// matches, summed over the patterns (which must not nest in one another).
type profileFrame struct {
	name     string
	patterns []*regexp.Regexp
}

func frame(name string, patterns ...string) profileFrame {
	f := profileFrame{name: name}
	for _, p := range patterns {
		f.patterns = append(f.patterns, regexp.MustCompile(p))
	}
	return f
}

// profileFrames explain where a poll's CPU goes. The facade's frames are its handler chain
// (identify is the outermost middleware), the status handler, the controller-runtime cache
// read and, inside it, the RESTMapper lookup that decides whether Downloads are namespaced.
var profileFrames = []profileFrame{
	frame("http_server", `^net/http\.\(\*conn\)\.serve$`),
	frame("handler", `internal/facade\.\(\*Facade\)\.buildHandler\.\(\*Facade\)\.identify\.func\d+$`, `^main\.serveBare\.func1$`),
	frame("status_handler", `internal/facade\.\(\*Facade\)\.status$`),
	frame("cache_get", `controller-runtime/pkg/cache\.\(\*multiNamespaceCache\)\.Get$`),
	frame("rest_mapping", `controller-runtime/pkg/client/apiutil\.IsObjectNamespaced$`),
	frame("write_json", `internal/facade\.writeJSON$`),
	frame("syscalls", `^entry_SYSCALL_64_after_hwframe$`),
	frame("gc", `^runtime\.gcBgMarkWorker$`, `^runtime\.gcAssistAlloc$`),
}

// perfLine is "  74.32%     0.00%  [.] symbol" of perf report --children.
var perfLine = regexp.MustCompile(`^\s*([0-9.]+)%\s+([0-9.]+)%\s+\[[.k]\]\s+(.+?)\s*$`)

// profilePolls records a server with perf while wrk polls it, and returns the share of its CPU
// in each of profileFrames, in percent, with the server's CPU per poll during the recording.
func profilePolls(ctx context.Context, dir, name, url string, pid, threads, conns int) (map[string]float64, float64, error) {
	const d = 8 * time.Second
	data := filepath.Join(dir, name+".perf.data")
	type result struct {
		run wrkRun
		err error
	}
	done := make(chan result, 1)
	go func() {
		run, err := runWrk(ctx, url, threads, conns, d, pid)
		done <- result{run, err}
	}()
	time.Sleep(time.Second)
	record := exec.CommandContext(ctx, "perf", "record", "-F", "997", "-g", "-p", strconv.Itoa(pid), "-o", data,
		"--", "sleep", strconv.Itoa(int(d.Seconds())-3))
	out, recErr := record.CombinedOutput()
	res := <-done
	if recErr != nil {
		return nil, 0, fmt.Errorf("perf record: %w\n%s", recErr, out)
	}
	if res.err != nil {
		return nil, 0, res.err
	}
	report := exec.CommandContext(ctx, "perf", "report", "-i", data, "--children", "--sort", "sym", "-g", "none", "--stdio")
	out, err := report.Output()
	if err != nil {
		return nil, 0, fmt.Errorf("perf report: %w", err)
	}
	shares := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := perfLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		children, _ := strconv.ParseFloat(m[1], 64)
		for _, f := range profileFrames {
			for _, p := range f.patterns {
				if p.MatchString(m[3]) {
					shares[f.name] += children
				}
			}
		}
	}
	return shares, res.run.serverUSPerPoll, nil
}

// describeProfile renders shares as "name 12% (8.1 µs)".
func describeProfile(shares map[string]float64, usPerPoll float64) string {
	var names []string
	for n := range shares {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return shares[names[i]] > shares[names[j]] })
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.0f%% (%.1f µs)", n, shares[n], shares[n]*usPerPoll/100))
	}
	return strings.Join(parts, ", ")
}
