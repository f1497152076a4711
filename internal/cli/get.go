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

// Package cli holds the user-facing subcommands of download-operator that talk to the HTTP API
// rather than to Kubernetes: `download-operator get` asks for an archive, follows its
// preparation and saves it, verified.
//
// # Output
//
// Progress goes to stdout: two bars (preparation in percent, then the download in bytes) when
// stdout is a terminal, otherwise one plain line per change of state, so logs of scripts and CI
// stay short and readable. --no-progress forces the plain lines. Errors go to stderr, prefixed
// with "download-operator get:" and carrying the server's error code and message.
//
// # Ctrl-C
//
// The first SIGINT stops whatever phase is running. While the archive is being prepared, the
// job on the server is what matters: with a terminal on stdin and stdout the user is asked
// "cancel the download on the server? [y/N]", and anything but y keeps it, since it may be
// nearly done and the same command with the printed --idempotency-key picks it up again; a
// second Ctrl-C at the prompt also keeps it. Without a terminal (a script, CI) no one is left
// to pick the job up, so it is cancelled and stderr says so. During the download of a finished
// archive only the partial file is removed; the archive stays on the server until it expires.
// Every interrupt exits 130.
//
// # Integrity
//
// The archive is written to a temporary file beside --output and renamed only after its
// sha256 and size matched what the server reported, so --output never holds unverified bytes;
// on a mismatch the temporary file is deleted and the command exits 1.
//
// # Resuming
//
// The archive is fetched through the job's stable link (GET /v1/download/{jobId}/archive), which
// redirects to a URL signed at that moment. When the connection breaks, `get` asks the link
// again and resumes with Range from the bytes it has, so an expired URL never matters and
// nothing is fetched twice; it says so on stdout. If storage sends the whole archive instead (it
// changed), the download starts over once; the second time `get` gives up (pkg/client
// DownloadArchive).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/download-operator/download-operator/pkg/client"
)

// Exit codes of GetCommand.
const (
	ExitOK = 0
	// ExitFailed: the job failed on the server, the archive's checksum did not match, the
	// server could not be reached, or --timeout ran out.
	ExitFailed = 1
	// ExitUsage: bad flags or arguments, or a request the server rejected as invalid.
	ExitUsage = 2
	// ExitInterrupted: SIGINT, as shells report it (128 + 2).
	ExitInterrupted = 130
)

// EnvServer names the environment variable that overrides the default --server.
const EnvServer = "DOWNLOAD_OPERATOR_SERVER"

const defaultServer = "http://localhost:8080"

// cancelTimeout bounds the DELETE sent after an interrupt, so a dead server cannot keep a
// user who pressed Ctrl-C waiting.
const cancelTimeout = 10 * time.Second

const getUsage = `usage: download-operator get [flags] FILE_ID...

Asks the server to bundle the files into one zip archive, follows its preparation (server-sent
events, or polling where they do not get through), downloads the archive and verifies its
sha256. The archive is written next to --output under a temporary name and renamed only once
its checksum matched. A download cut short resumes where it stopped, from a freshly signed URL.

Ctrl-C while the archive is being prepared asks whether to cancel the job on the server too
(on a terminal); without a terminal to ask on, the job is cancelled. Ctrl-C during the download
of a finished archive only stops the download.

Exit codes: 0 saved, 1 failed (job failed, checksum mismatch, network, timeout),
2 usage or a request the server rejected, 130 interrupted.

flags:
`

// GetCommand implements `download-operator get --server URL FILE_ID... [-o out.zip]`. It
// returns the process exit code. It reads answers to its Ctrl-C prompt from os.Stdin.
func GetCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)
	tty := isTerminal(stdout)
	g := &getCmd{
		stdin: os.Stdin, stdout: stdout, stderr: stderr, interrupts: interrupts,
		tty: tty, canPrompt: tty && isTerminal(os.Stdin),
	}
	return g.run(ctx, args)
}

// getCmd is one run of `get`, with its terminal and signals made explicit so that tests can
// play the user.
type getCmd struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	interrupts     <-chan os.Signal
	// tty draws progress bars on stdout; otherwise progress is logged as plain lines.
	tty bool
	// canPrompt asks before cancelling the server job on Ctrl-C; otherwise it is cancelled.
	canPrompt bool
	// httpClient, when set, carries every request (tests put a proxy in the way).
	httpClient *http.Client
}

type getFlags struct {
	server, output, idempotencyKey string
	timeout                        time.Duration
	noProgress, skipMissing        bool
	fileIDs                        []int64
}

func (g *getCmd) parse(args []string) (*getFlags, error) {
	var f getFlags
	fs := pflag.NewFlagSet("get", pflag.ContinueOnError)
	fs.SetOutput(g.stderr)
	fs.Usage = func() {
		_, _ = io.WriteString(g.stderr, getUsage)
		fs.PrintDefaults()
	}
	server := os.Getenv(EnvServer)
	if server == "" {
		server = defaultServer
	}
	fs.StringVar(&f.server, "server", server, "base URL of the download-operator API; $"+EnvServer+" sets the default")
	fs.StringVarP(&f.output, "output", "o", "", "where to save the archive (default download-<jobId>.zip)")
	fs.StringVar(&f.idempotencyKey, "idempotency-key", "",
		"makes a repeated run with the same files return the same job instead of a new one (default: a random key per run)")
	fs.DurationVar(&f.timeout, "timeout", 0, "give up after this long, for example 10m (default: no limit)")
	fs.BoolVar(&f.noProgress, "no-progress", false, "log plain lines instead of progress bars, even on a terminal")
	fs.BoolVar(&f.skipMissing, "skip-missing", false,
		"leave out requested files that do not exist instead of failing (the output names them)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() == 0 {
		return nil, errors.New("no file ids given")
	}
	for _, arg := range fs.Args() {
		id, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("file id %q is not a positive integer", arg)
		}
		f.fileIDs = append(f.fileIDs, id)
	}
	return &f, nil
}

func (g *getCmd) run(ctx context.Context, args []string) int {
	f, err := g.parse(args)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		return ExitOK
	case err != nil:
		g.errorf("%v (see --help)", err)
		return ExitUsage
	}
	opts := []client.Option{client.WithUserAgent("download-operator-cli"), client.WithRequestID(uuid.NewString)}
	if g.httpClient != nil {
		opts = append(opts, client.WithHTTPClient(g.httpClient))
	}
	c, err := client.New(f.server, opts...)
	if err != nil {
		g.errorf("%v", err)
		return ExitUsage
	}
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, f.timeout, fmt.Errorf("--timeout of %s ran out", f.timeout))
		defer cancel()
	}
	key := f.idempotencyKey
	if key == "" {
		// A key per run makes the client's retries of initiate safe, and the user can pass it
		// again to pick the job up after an interrupted run.
		key = uuid.NewString()
	}
	progress := newReporter(g.stdout, g.tty && !f.noProgress)

	var job *client.Initiated
	if g.interruptible(ctx, func(ctx context.Context) { job, err = c.Initiate(ctx, f.fileIDs, key, f.initiateOptions()...) }) {
		// Without an answer there is no job id to cancel; the key still finds the job.
		g.errorf("interrupted before the server answered; if it accepted the request, %s", resumeHint(key))
		return ExitInterrupted
	}
	if err != nil {
		g.errorf("%v", err)
		if rejected(err) {
			return ExitUsage
		}
		return g.exitFor(ctx)
	}
	progress.accepted(job)

	var status *client.Status
	interrupted := g.interruptible(ctx, func(ctx context.Context) {
		status, err = c.Wait(ctx, job.JobID, progress.update)
	})
	progress.done()
	if interrupted {
		g.cancelAfterInterrupt(ctx, c, job.JobID, key)
		return ExitInterrupted
	}
	if err != nil {
		g.errorf("%v", err)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			g.errorf("job %s goes on on the server; %s", job.JobID, resumeHint(key))
		}
		return g.exitFor(ctx)
	}
	if err := status.Err(); err != nil {
		g.errorf("%v", err)
		return ExitFailed
	}

	output := f.output
	if output == "" {
		output = "download-" + job.JobID + ".zip"
	}
	return g.save(ctx, c, status, output, progress)
}

// save downloads the archive into a temporary file beside output and renames it into place
// only once its checksum matched, so that output never holds unverified bytes.
func (g *getCmd) save(ctx context.Context, c *client.Client, status *client.Status, output string, progress reporter) int {
	tmp, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*.part")
	if err != nil {
		g.errorf("creating a temporary file for %s: %v", output, err)
		return ExitFailed
	}
	keep := false
	defer func() {
		if !keep {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()

	progress.downloading(output, status.Size)
	var (
		sum string
		n   int64
	)
	interrupted := g.interruptible(ctx, func(ctx context.Context) {
		sum, n, err = c.DownloadArchive(ctx, status, tmp, &client.DownloadOptions{OnProgress: progress.downloaded, OnResume: progress.resumed})
	})
	progress.done()
	var mismatch *client.ChecksumError
	switch {
	case interrupted:
		g.errorf("interrupted: the partial download was removed; job %s stays complete on the server until it expires", status.JobID)
		return ExitInterrupted
	case errors.As(err, &mismatch):
		g.errorf("%v: the archive is not what the server prepared, so it was deleted and %s was not written", err, output)
		return ExitFailed
	case err != nil:
		g.errorf("%v", err)
		return g.exitFor(ctx)
	}
	// The bytes are the archive the server prepared (sha256 and size); the manifest then says
	// whether that archive holds the files it claims to, entry by entry.
	contents, err := VerifyArchive(tmp.Name())
	if err != nil {
		g.errorf("%v\nthe archive does not match its manifest, so it was deleted and %s was not written", err, output)
		return ExitFailed
	}

	// CreateTemp makes the file private; a downloaded archive is as readable as any other file.
	if err := errors.Join(tmp.Chmod(0o644), tmp.Sync(), tmp.Close()); err != nil {
		g.errorf("writing %s: %v", tmp.Name(), err)
		return ExitFailed
	}
	if err := os.Rename(tmp.Name(), output); err != nil {
		g.errorf("saving %s: %v", output, err)
		return ExitFailed
	}
	keep = true
	progress.saved(output, n, sum, contents)
	return ExitOK
}

// initiateOptions are what the flags ask of the job beyond its files.
func (f *getFlags) initiateOptions() []client.InitiateOption {
	if f.skipMissing {
		return []client.InitiateOption{client.SkipMissingFiles()}
	}
	return nil
}

// exitFor picks the exit code of an error that may have come from the end of ctx.
func (g *getCmd) exitFor(ctx context.Context) int {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ExitInterrupted
	}
	return ExitFailed
}

// rejected reports whether the server refused the request itself, which running it again
// unchanged cannot fix.
func rejected(err error) bool {
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.StatusCode {
	case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType,
		http.StatusUnprocessableEntity:
		return true
	}
	return false
}

func (g *getCmd) errorf(format string, args ...any) {
	_, _ = fmt.Fprintf(g.stderr, "download-operator get: "+format+"\n", args...)
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
