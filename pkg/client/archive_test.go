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

package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/download-operator/download-operator/pkg/client"
)

// linkFake is the stable link and the storage behind it on one server: the link redirects to a
// URL signed anew each time, and storage serves the archive with an ETag, cutting the
// connection or changing the ETag when the test's script says so.
type linkFake struct {
	t       *testing.T
	content []byte
	// cutAfter, when it returns n >= 0 for a storage request (numbered from 0), ends the
	// connection after n body bytes; etag names the archive's ETag at each storage request.
	cutAfter func(request int) int
	etag     func(request int) string
	// linkStatus, when not 0, is the link's error answer.
	linkStatus int
	// ignoreIfRange serves ranges whatever If-Range says, as MinIO does.
	ignoreIfRange bool

	srv      *httptest.Server
	mu       sync.Mutex
	links    int
	requests []*http.Request
	// received counts the archive bytes the client read: what storage pushed into socket
	// buffers before the client hung up on it does not count.
	received int64
}

// finish waits for every handler to end (a cut one may still be unwinding after the client
// moved on), so that the counts are final.
func (f *linkFake) finish() {
	f.srv.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
}

func (f *linkFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/v1/download/job-1/archive":
		f.links++
		if f.linkStatus != 0 {
			writeAPIError(w, f.linkStatus, "ArchiveExpired", "the archive of job job-1 has expired")
			return
		}
		signed := fmt.Sprintf("http://%s/archives/a.zip?signature=%d", r.Host, f.links)
		w.Header().Set("Location", signed)
		expires := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
		writeJSON(w, http.StatusFound, map[string]string{"url": signed, "expiresAt": expires})
	case "/archives/a.zip":
		n := len(f.requests)
		f.requests = append(f.requests, r.Clone(r.Context()))
		if f.ignoreIfRange {
			r.Header.Del("If-Range")
		}
		w.Header().Set("ETag", f.etag(n))
		cut := -1
		if f.cutAfter != nil {
			cut = f.cutAfter(n)
		}
		http.ServeContent(&cuttingWriter{ResponseWriter: w, left: cut}, r, "a.zip", time.Time{}, bytes.NewReader(f.content))
	default:
		http.NotFound(w, r)
	}
}

// cuttingWriter aborts the connection once left body bytes are written (left < 0: never).
type cuttingWriter struct {
	http.ResponseWriter
	left int
}

func (c *cuttingWriter) Write(b []byte) (int, error) {
	if c.left >= 0 && len(b) > c.left {
		_, _ = c.ResponseWriter.Write(b[:c.left])
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	n, err := c.ResponseWriter.Write(b)
	if c.left >= 0 {
		c.left -= n
	}
	return n, err
}

// RoundTrip sends the client's requests, counting the archive bytes it reads.
func (f *linkFake) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && req.URL.Path == "/archives/a.zip" {
		resp.Body = &countingBody{ReadCloser: resp.Body, f: f}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	f *linkFake
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.f.mu.Lock()
	b.f.received += int64(n)
	b.f.mu.Unlock()
	return n, err
}

func newLinkFake(t *testing.T, size int) (*linkFake, *client.Client, *client.Status) {
	t.Helper()
	f := &linkFake{t: t, content: make([]byte, size), etag: func(int) string { return `"v1"` }}
	_, _ = rand.NewChaCha8([32]byte{7}).Read(f.content)
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	status := &client.Status{JobID: "job-1", Status: client.StateCompleted, Size: int64(size), SHA256: sha256Hex(f.content)}
	return f, newTestClient(t, f.srv.URL, client.WithHTTPClient(&http.Client{Transport: f})), status
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "a.zip.part"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// download runs DownloadArchive into w against f, recording what OnResume is told, and waits
// for the fake's handlers so that its counts are final.
func (f *linkFake) download(c *client.Client, status *client.Status, w io.Writer) (string, int64, []client.Resume, error) {
	var resumes []client.Resume
	record := func(r client.Resume) { resumes = append(resumes, r) }
	sum, n, err := c.DownloadArchive(testContext(f.t), status, w, &client.DownloadOptions{OnResume: record})
	f.finish()
	return sum, n, resumes, err
}

// downloadAll runs download into w and fails the test unless it ends with the whole archive.
func (f *linkFake) downloadAll(c *client.Client, status *client.Status, w io.Writer) []client.Resume {
	f.t.Helper()
	sum, n, resumes, err := f.download(c, status, w)
	if err != nil || sum != status.SHA256 || n != int64(len(f.content)) {
		f.t.Fatalf("DownloadArchive = %s, %d, %v", sum, n, err)
	}
	return resumes
}

// changeOnce cuts the first answer after 100,000 bytes, and the archive has another ETag from
// then on.
func (f *linkFake) changeOnce() {
	f.cutAfter = func(n int) int { return []int{100_000, -1}[min(n, 1)] }
	f.etag = func(n int) string { return fmt.Sprintf(`"v%d"`, min(n, 1)) }
}

// changeEveryTime cuts every answer after 100,000 bytes, and the archive has another ETag each
// time.
func (f *linkFake) changeEveryTime() {
	f.cutAfter = func(int) int { return 100_000 }
	f.etag = func(n int) string { return fmt.Sprintf(`"v%d"`, n) }
}

func TestDownloadArchiveResumesWithRangeFromAFreshLink(t *testing.T) {
	const size = 300_000
	f, c, status := newLinkFake(t, size)
	f.cutAfter = func(n int) int { return []int{100_000, 50_000, -1}[min(n, 2)] }
	var out bytes.Buffer
	resumes := f.downloadAll(c, status, &out)
	if !bytes.Equal(out.Bytes(), f.content) {
		t.Fatal("DownloadArchive wrote other bytes than the archive's")
	}
	if f.links != 3 || len(f.requests) != 3 {
		t.Errorf("%d links asked, %d storage requests; want 3 of each: every attempt asks for a fresh URL", f.links, len(f.requests))
	}
	for i, want := range []string{"", "bytes=100000-", "bytes=150000-"} {
		if got := f.requests[i].Header.Get("Range"); got != want {
			t.Errorf("request %d: Range %q, want %q", i, got, want)
		}
		if want != "" && f.requests[i].Header.Get("If-Range") != `"v1"` {
			t.Errorf("request %d: If-Range %q, want the ETag", i, f.requests[i].Header.Get("If-Range"))
		}
		if signature := f.requests[i].URL.Query().Get("signature"); signature != fmt.Sprint(i+1) {
			t.Errorf("request %d used the URL of link %s", i, signature)
		}
	}
	if f.received != size {
		t.Errorf("the client read %d bytes for an archive of %d; a resume must fetch only the rest", f.received, size)
	}
	if len(resumes) != 2 || resumes[0].Offset != 100_000 || resumes[1].Offset != 150_000 || resumes[1].Attempt != 3 ||
		resumes[0].Cause == nil {
		t.Errorf("resumes %+v", resumes)
	}
}

func TestDownloadArchiveStartsOverOnlyOnceWhenTheArchiveChanges(t *testing.T) {
	const size = 300_000
	t.Run("once, then it completes", func(t *testing.T) {
		f, c, status := newLinkFake(t, size)
		f.changeOnce()
		out := tempFile(t)
		resumes := f.downloadAll(c, status, out)
		written, err := os.ReadFile(out.Name())
		if err != nil || !bytes.Equal(written, f.content) {
			t.Fatalf("the file holds %d bytes (%v), not the archive", len(written), err)
		}
		if len(resumes) != 2 || !resumes[1].Restarted || resumes[1].Offset != 0 {
			t.Errorf("resumes %+v: want a resume, then a start over", resumes)
		}
		if f.received != 100_000+size {
			t.Errorf("the client read %d bytes", f.received)
		}
	})
	t.Run("once, when storage ignores If-Range", func(t *testing.T) {
		f, c, status := newLinkFake(t, size)
		f.ignoreIfRange = true
		f.changeOnce()
		resumes := f.downloadAll(c, status, tempFile(t))
		if len(f.requests) != 3 || f.requests[2].Header.Get("Range") != "" {
			t.Fatalf("%d storage requests; want the cut one, the range of another ETag, and a whole one", len(f.requests))
		}
		if len(resumes) != 2 || !resumes[1].Restarted || f.received >= 2*size {
			t.Errorf("resumes %+v, %d bytes read for %d", resumes, f.received, size)
		}
	})
	t.Run("twice, which it refuses", func(t *testing.T) {
		f, c, status := newLinkFake(t, size)
		f.changeEveryTime()
		_, _, _, err := f.download(c, status, tempFile(t))
		if !errors.Is(err, client.ErrArchiveChanged) {
			t.Fatalf("DownloadArchive = %v, want ErrArchiveChanged", err)
		}
		// The third answer is a whole archive again; only what closing it drains may be read.
		if f.received >= 2*size || len(f.requests) != 3 {
			t.Errorf("the client read %d bytes in %d requests for an archive of %d", f.received, len(f.requests), size)
		}
	})
	t.Run("into a writer that cannot start over", func(t *testing.T) {
		f, c, status := newLinkFake(t, size)
		f.changeEveryTime()
		_, _, _, err := f.download(c, status, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "cannot start over") {
			t.Fatalf("DownloadArchive = %v", err)
		}
	})
}

func TestDownloadArchiveGivesUp(t *testing.T) {
	t.Run("at once when the link says the archive expired", func(t *testing.T) {
		f, c, status := newLinkFake(t, 1000)
		f.linkStatus = http.StatusGone
		_, _, _, err := f.download(c, status, &bytes.Buffer{})
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusGone || apiErr.Code != "ArchiveExpired" || f.links != 1 {
			t.Fatalf("DownloadArchive = %v after %d link requests, want the 410 at once", err, f.links)
		}
	})
	t.Run("after MaxAttempts attempts that bring nothing", func(t *testing.T) {
		f, c, status := newLinkFake(t, 1000)
		f.cutAfter = func(int) int { return 0 }
		_, _, _, err := f.download(c, status, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "3 attempts in a row brought no data") || len(f.requests) != 3 {
			t.Fatalf("DownloadArchive = %v after %d requests; the test client allows 3", err, len(f.requests))
		}
	})
}
