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

package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"

	"github.com/download-operator/download-operator/internal/manifest"
	"github.com/download-operator/download-operator/pkg/client"
)

// reporter shows the user how a run goes: bars on a terminal, plain lines elsewhere (logs, CI).
type reporter interface {
	accepted(job *client.Initiated)
	// update is called with every status while the archive is prepared.
	update(s client.Status)
	downloading(path string, size int64)
	downloaded(done, total int64)
	// resumed is called when the download goes on after a break, or starts over.
	resumed(r client.Resume)
	saved(path string, size int64, sha256 string, contents *manifest.Manifest)
	// done ends the current phase, so that what is printed next starts on a clean line.
	done()
}

func newReporter(w io.Writer, bars bool) reporter {
	if bars {
		return &barReporter{w: w}
	}
	return &lineReporter{w: w}
}

func describe(s client.Status) string {
	switch {
	case s.Status == client.StateProcessing && s.BytesTotal > 0:
		text := fmt.Sprintf("processing %s of %s", humanize.IBytes(uint64(s.BytesDone)), humanize.IBytes(uint64(s.BytesTotal)))
		if s.EtaSeconds != nil {
			text += fmt.Sprintf(", about %s left", time.Duration(*s.EtaSeconds)*time.Second)
		}
		return text
	default:
		return string(s.Status)
	}
}

func acceptedLine(job *client.Initiated) string {
	files := "files"
	if job.TotalFileIDs == 1 {
		files = "file"
	}
	return fmt.Sprintf("job %s accepted: %d %s, ready in about %s", job.JobID, job.TotalFileIDs, files,
		time.Duration(job.EtaSeconds)*time.Second)
}

func resumedLine(r client.Resume) string {
	if r.Restarted {
		return fmt.Sprintf("%v: the archive may have changed, so the download starts over, once", r.Cause)
	}
	return fmt.Sprintf("connection lost (%v); resuming from %s with a fresh link (attempt %d)",
		r.Cause, humanize.IBytes(uint64(r.Offset)), r.Attempt)
}

func savedLine(path string, size int64, sha256 string, contents *manifest.Manifest) string {
	line := fmt.Sprintf("saved %s (%s, sha256 %s verified; %d files match manifest.json)",
		path, humanize.IBytes(uint64(size)), sha256, len(contents.Files))
	if len(contents.Skipped) > 0 {
		ids := make([]string, len(contents.Skipped))
		for i, skipped := range contents.Skipped {
			ids[i] = strconv.FormatInt(skipped.ID, 10)
		}
		line += "\nleft out, not found: " + strings.Join(ids, ", ")
	}
	return line
}

// lineReporter logs a line per change, and download progress in quarters, so that a log stays
// short whatever the archive's size.
type lineReporter struct {
	w           io.Writer
	lastLine    string
	lastQuarter int64
}

func (r *lineReporter) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(r.w, format+"\n", args...)
}

func (r *lineReporter) accepted(job *client.Initiated) { r.printf("%s", acceptedLine(job)) }

func (r *lineReporter) update(s client.Status) {
	line := describe(s)
	if s.Status == client.StateProcessing {
		line = fmt.Sprintf("%3d%% %s", s.Progress, line)
	}
	if line != r.lastLine {
		r.lastLine = line
		r.printf("job %s %s", s.JobID, line)
	}
}

func (r *lineReporter) downloading(path string, size int64) {
	r.lastQuarter = 0
	r.printf("downloading %s to %s", humanize.IBytes(uint64(size)), path)
}

func (r *lineReporter) downloaded(done, total int64) {
	if total <= 0 {
		return
	}
	if quarter := 4 * done / total; quarter > r.lastQuarter && quarter < 4 {
		r.lastQuarter = quarter
		r.printf("downloaded %d%%", 25*quarter)
	}
}

func (r *lineReporter) resumed(resume client.Resume) {
	if resume.Restarted {
		r.lastQuarter = 0
	}
	r.printf("%s", resumedLine(resume))
}

func (r *lineReporter) saved(path string, size int64, sha256 string, contents *manifest.Manifest) {
	r.printf("%s", savedLine(path, size, sha256, contents))
}

func (r *lineReporter) done() {}

// barReporter draws one bar for the preparation, in percent, and one for the download, in bytes.
type barReporter struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (r *barReporter) newBar(max int64, description string, bytes bool) {
	r.bar = progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(r.w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowBytes(bytes),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetPredictTime(bytes),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
	)
}

func (r *barReporter) accepted(job *client.Initiated) {
	_, _ = fmt.Fprintln(r.w, acceptedLine(job))
	r.newBar(100, "preparing", false)
}

func (r *barReporter) update(s client.Status) {
	if r.bar == nil {
		return
	}
	r.bar.Describe(describe(s))
	switch s.Status {
	case client.StateProcessing:
		_ = r.bar.Set(s.Progress)
	case client.StateCompleted:
		_ = r.bar.Finish()
	}
}

func (r *barReporter) downloading(path string, size int64) {
	r.newBar(size, "downloading "+path, true)
}

func (r *barReporter) downloaded(done, _ int64) {
	if r.bar != nil {
		_ = r.bar.Set64(done)
	}
}

func (r *barReporter) resumed(resume client.Resume) {
	if r.bar != nil {
		// The line goes above the bar, which the next chunk draws again.
		_ = r.bar.Clear()
	}
	_, _ = fmt.Fprintln(r.w, resumedLine(resume))
}

func (r *barReporter) saved(path string, size int64, sha256 string, contents *manifest.Manifest) {
	_, _ = fmt.Fprintln(r.w, savedLine(path, size, sha256, contents))
}

func (r *barReporter) done() {
	if r.bar != nil {
		_ = r.bar.Exit()
		_, _ = fmt.Fprintln(r.w)
		r.bar = nil
	}
}
