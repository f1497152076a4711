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

package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ArchiveLink is a presigned URL of a completed job's archive, as the stable link
// GET /v1/download/{jobId}/archive answers it.
type ArchiveLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// ArchiveURL asks the job's stable link for a URL of its archive signed at this moment (valid
// for a few minutes), without following the redirect. fileName, when not empty, is the name the
// URL makes browsers save the archive as. A job without an archive is an *APIError: 404 with the
// code NotFound, JobPending, JobProcessing or JobFailed, or 410 ArchiveExpired.
func (c *Client) ArchiveURL(ctx context.Context, jobID, fileName string) (*ArchiveLink, error) {
	path, err := jobPath("/v1/download/", jobID)
	if err != nil {
		return nil, err
	}
	return c.archiveURL(ctx, jobID, path+"/archive", fileName)
}

func (c *Client) archiveURL(ctx context.Context, jobID, path, fileName string) (*ArchiveLink, error) {
	if fileName != "" {
		path += "?" + url.Values{"filename": {fileName}}.Encode()
	}
	noRedirects := *c.http
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	isRedirect := func(status int) bool { return status == http.StatusFound }
	resp, err := c.doWith(ctx, &noRedirects, isRedirect, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("getting the archive link of job %s: %w", jobID, err)
	}
	defer closeBody(resp)
	link := ArchiveLink{URL: resp.Header.Get("Location")}
	// The body repeats the URL with its expiry; the Location alone is enough to go on.
	var body ArchiveLink
	if json.NewDecoder(io.LimitReader(resp.Body, 16<<10)).Decode(&body) == nil && body.URL == link.URL {
		link.ExpiresAt = body.ExpiresAt
	}
	if u, err := url.Parse(link.URL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("getting the archive link of job %s: the redirect has no usable Location", jobID)
	}
	return &link, nil
}

// DownloadOptions tune DownloadArchive; the zero value is fine.
type DownloadOptions struct {
	// FileName is the name the signed URL gives the archive; empty is the server's default.
	FileName string
	// OnProgress is called after each chunk with the bytes written so far and the archive size
	// (-1 when unknown). The count goes back to 0 when the download starts over.
	OnProgress func(done, total int64)
	// OnResume is called before each further attempt, and when the download starts over.
	OnResume func(Resume)
}

// Resume tells why and from where DownloadArchive goes on.
type Resume struct {
	// Attempt numbers the attempt about to start (the first is 1), or the running one when it
	// starts over.
	Attempt int
	// Offset is where it starts: the bytes kept so far.
	Offset int64
	// Cause is what ended the previous attempt.
	Cause error
	// Restarted is set when storage answered a Range request with the whole archive, or with
	// another ETag: the archive changed, the bytes kept were thrown away, and the download goes
	// on from 0.
	Restarted bool
}

// Restartable is what DownloadArchive needs of its writer to start over: *os.File has it.
type Restartable interface {
	io.Writer
	io.Seeker
	Truncate(size int64) error
}

// ErrArchiveChanged means storage answered a resume with the whole archive once more after the
// download had already started over once: the archive keeps changing, and DownloadArchive will
// not download it a third time.
var ErrArchiveChanged = errors.New("the archive changed on the server again while it was being downloaded")

// DownloadArchive fetches a completed job's archive through its stable link and streams it
// into w, hashing it on the way; like Download, it returns the sha256 and length, and a
// *ChecksumError when they are not what status describes.
//
// Unlike Download it outlives broken connections and expired URLs: every attempt asks the
// stable link for a freshly signed URL, and after a break it resumes with Range from the bytes
// it already wrote, with If-Range on the archive's ETag so that a changed archive comes whole
// instead of spliced (and where storage ignores If-Range, a range with another ETag is not
// used). If the archive changed, the download starts over once (w must then be Restartable),
// and fails with ErrArchiveChanged the second time, so the archive is never downloaded whole
// twice over. Attempts that bring no new byte are bounded by the RetryPolicy's MaxAttempts and
// spaced by its backoff; an answer of the link other than 429 or 503 (the job expired, say)
// ends the download at once.
func (c *Client) DownloadArchive(ctx context.Context, status *Status, w io.Writer,
	opts *DownloadOptions) (string, int64, error) {
	if err := downloadable(status); err != nil {
		return "", 0, err
	}
	if opts == nil {
		opts = &DownloadOptions{}
	}
	path := status.ArchiveURL
	if !strings.HasPrefix(path, "/") {
		var err error
		if path, err = jobPath("/v1/download/", status.JobID); err != nil {
			return "", 0, err
		}
		path += "/archive"
	}
	d := &archiveDownload{
		c: c, status: status, path: path, opts: opts, w: w, hash: sha256.New(),
		progress: &progressWriter{total: status.Size, onProgress: opts.OnProgress},
	}
	if status.Size <= 0 {
		d.progress.total = -1
	}
	fail := func(err error) (string, int64, error) {
		return d.sum(), d.progress.done, fmt.Errorf("downloading job %s after %d bytes: %w", status.JobID, d.progress.done, err)
	}
	delays := c.backoff()
	stalled := 0
	for attempt := 1; ; attempt++ {
		before := d.progress.done
		d.attempts = attempt
		err := d.attempt(ctx)
		if err == nil || d.complete() {
			break
		}
		if ctx.Err() != nil {
			return fail(context.Cause(ctx))
		}
		if perm, ok := errors.AsType[*permanentError](err); ok {
			return fail(perm.err)
		}
		if errors.Is(err, errStartedOver) {
			// Nothing failed: restart told OnResume, and the next attempt can go at once.
			continue
		}
		if d.progress.done > before {
			stalled = 0
			delays.Reset()
		} else if stalled++; stalled >= c.retry.MaxAttempts {
			return fail(fmt.Errorf("%d attempts in a row brought no data: %w", stalled, err))
		}
		if opts.OnResume != nil {
			opts.OnResume(Resume{Attempt: attempt + 1, Offset: d.progress.done, Cause: err})
		}
		if err := sleep(ctx, delays.NextBackOff()); err != nil {
			return fail(err)
		}
	}
	sum := d.sum()
	return sum, d.progress.done, verify(status, sum, d.progress.done)
}

// archiveDownload is the state DownloadArchive's attempts share.
type archiveDownload struct {
	c      *Client
	status *Status
	path   string
	opts   *DownloadOptions
	w      io.Writer
	hash   hash.Hash
	// progress counts the bytes written to w, which is where a resume starts.
	progress *progressWriter
	// validator is the archive's ETag (or Last-Modified) as the full answer gave it: If-Range
	// sends it, so a resume gets either the rest of that very archive or the whole new one.
	validator string
	restarted bool
	// attempts counts the attempts so far, the one running included.
	attempts int
}

// errStartedOver ends an attempt whose range belongs to a changed archive; the next attempt
// fetches the whole archive at once.
var errStartedOver = errors.New("the archive changed; starting over")

// isETag tells an ETag from a Last-Modified date: only ETags are compared byte for byte.
func isETag(validator string) bool {
	return strings.HasPrefix(validator, `"`) || strings.HasPrefix(validator, `W/"`)
}

// permanentError ends DownloadArchive at once: trying again cannot help.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(format string, args ...any) error {
	return &permanentError{err: fmt.Errorf(format, args...)}
}

func (d *archiveDownload) sum() string { return hex.EncodeToString(d.hash.Sum(nil)) }

// complete reports whether every byte of an archive of known size is written, which makes an
// error after the last byte harmless.
func (d *archiveDownload) complete() bool {
	return d.progress.total > 0 && d.progress.done == d.progress.total
}

// attempt asks the stable link for a fresh URL and streams what storage sends from there.
func (d *archiveDownload) attempt(ctx context.Context) error {
	link, err := d.c.archiveURL(ctx, d.status.JobID, d.path, d.opts.FileName)
	if err != nil {
		if apiErr, ok := errors.AsType[*APIError](err); ok && !apiErr.Temporary() {
			return &permanentError{err: err}
		}
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link.URL, nil)
	if err != nil {
		return permanent("building the archive request: %w", err)
	}
	// Only the User-Agent and the range: the URL is presigned for storage, which has no use for
	// API headers.
	req.Header.Set("User-Agent", d.c.userAgent)
	resuming := d.progress.done > 0
	if resuming {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(d.progress.done, 10)+"-")
		if d.validator != "" {
			req.Header.Set("If-Range", d.validator)
		}
	}
	resp, err := d.c.http.Do(req)
	if err != nil {
		return err
	}
	defer closeBody(resp)
	switch {
	case resp.StatusCode == http.StatusPartialContent && resuming:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != d.progress.done {
			return permanent("storage answered bytes=%d- with Content-Range %q", d.progress.done, resp.Header.Get("Content-Range"))
		}
		// Not every store honours If-Range (MinIO sends the range anyway): the rest of another
		// archive must not be spliced onto this one's start.
		if etag := resp.Header.Get("ETag"); etag != "" && isETag(d.validator) && etag != d.validator {
			if err := d.restart(fmt.Errorf("storage answered a resume from byte %d with a range of another archive (ETag %s, not %s)",
				d.progress.done, etag, d.validator)); err != nil {
				return err
			}
			return errStartedOver
		}
	case resp.StatusCode == http.StatusOK:
		if resuming {
			if err := d.restart(fmt.Errorf("storage answered a resume from byte %d with the whole archive", d.progress.done)); err != nil {
				return err
			}
		}
		d.validator = resp.Header.Get("ETag")
		if d.validator == "" {
			d.validator = resp.Header.Get("Last-Modified")
		}
		if d.progress.total < 0 && resp.ContentLength >= 0 {
			d.progress.total = resp.ContentLength
		}
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusRequestTimeout:
		// A server error or throttling passes; so may a 403 of a URL that expired in transit
		// or of a clock that jumped, since the next attempt signs anew.
		return fmt.Errorf("storage answered %s", storageError(resp))
	default:
		return permanent("storage answered %s", storageError(resp))
	}
	_, err = io.Copy(io.MultiWriter(writeFailure{d.w}, d.hash, d.progress), resp.Body)
	if failed, ok := errors.AsType[*writeError](err); ok {
		return &permanentError{err: failed.err}
	}
	return err
}

// restart throws away what was written, when storage answered a resume with another archive,
// or with the whole of one (why tells which).
func (d *archiveDownload) restart(why error) error {
	if d.restarted {
		return &permanentError{err: ErrArchiveChanged}
	}
	w, ok := d.w.(Restartable)
	if !ok {
		return permanent("the archive changed on the server during the download, and the writer cannot start over")
	}
	if err := w.Truncate(0); err != nil {
		return permanent("starting over: %w", err)
	}
	if _, err := w.Seek(0, io.SeekStart); err != nil {
		return permanent("starting over: %w", err)
	}
	d.restarted = true
	d.hash.Reset()
	d.progress.done = 0
	if d.opts.OnResume != nil {
		d.opts.OnResume(Resume{Attempt: d.attempts, Offset: 0, Restarted: true, Cause: why})
	}
	return nil
}

// rangeStart is the first byte of a Content-Range "bytes first-last/total".
func rangeStart(contentRange string) (int64, bool) {
	spec, ok := strings.CutPrefix(contentRange, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}

// writeFailure marks errors of the destination, which no retry can fix, apart from those of
// the connection.
type writeFailure struct{ w io.Writer }

type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

func (f writeFailure) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if err != nil {
		return n, &writeError{err: fmt.Errorf("writing the archive: %w", err)}
	}
	return n, nil
}
