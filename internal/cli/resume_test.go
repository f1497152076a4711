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
	"context"
	"errors"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/stack"
)

// cuttingProxy is a forward HTTP proxy between `get` and everything it talks to: the facade and,
// after the stable link's redirect, MinIO. It counts the archive bytes MinIO sends through it,
// cuts the n-th archive response after cuts[n] body bytes, and can take the Range off the n-th
// archive request so that MinIO answers it with the whole archive.
type cuttingProxy struct {
	cuts       map[int]int64
	stripRange map[int]bool

	mu sync.Mutex
	// archiveRequests are the archive GETs' headers as `get` sent them.
	archiveRequests []http.Header
	// links counts the requests of the facade's stable link.
	links int
	// archiveBytes counts the archive bytes passed on to `get`.
	archiveBytes int64
}

type archiveRequestKey struct{}

var errCut = errors.New("connection cut by the test proxy")

// start serves the proxy and returns a client that sends everything through it.
func (p *cuttingProxy) start(t *testing.T) *http.Client {
	t.Helper()
	storageHost := stk.MinIO.Endpoint
	proxy := &httputil.ReverseProxy{
		// Requests to a proxy carry absolute URLs, which Out keeps: only the test's changes here.
		Rewrite: func(pr *httputil.ProxyRequest) {
			p.mu.Lock()
			defer p.mu.Unlock()
			switch {
			case pr.In.URL.Host == storageHost && strings.HasPrefix(pr.In.URL.Path, "/"+stack.ArchiveBucket+"/"):
				n := len(p.archiveRequests)
				p.archiveRequests = append(p.archiveRequests, pr.In.Header.Clone())
				if p.stripRange[n] {
					pr.Out.Header.Del("Range")
					pr.Out.Header.Del("If-Range")
				}
				pr.Out = pr.Out.WithContext(context.WithValue(pr.Out.Context(), archiveRequestKey{}, n))
			case strings.HasSuffix(pr.In.URL.Path, "/archive"):
				p.links++
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			n, ok := resp.Request.Context().Value(archiveRequestKey{}).(int)
			if !ok {
				return nil
			}
			left, cut := p.cuts[n]
			if !cut {
				left = -1
			}
			resp.Body = &cutBody{ReadCloser: resp.Body, left: left, count: p.count}
			return nil
		},
		// Event streams must reach `get` as they come.
		FlushInterval: -1,
		// A cut is the point; the proxy's complaint about it is noise.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	proxyURL, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
}

func (p *cuttingProxy) count(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.archiveBytes += int64(n)
}

// cutBody passes left bytes on (all when left < 0) and then fails, which makes the proxy
// abort the response mid-body, as a dropped connection would.
type cutBody struct {
	io.ReadCloser
	left  int64
	count func(int)
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, errCut
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.count(n)
	if b.left > 0 {
		b.left -= int64(n)
	}
	return n, err
}

// getCompleted runs `get` in s with args while the cluster plays jobID to completion, fails the
// test unless both succeed, and returns the completed Download.
func getCompleted(ctx context.Context, t *testing.T, s *session, jobID string, args ...string) *downloadv1alpha1.Download {
	t.Helper()
	var completed *downloadv1alpha1.Download
	cluster := drive(ctx, func(ctx context.Context) (err error) {
		completed, err = stk.RunToCompletion(ctx, jobID)
		return err
	})
	exit := <-s.start(ctx, args...)
	if err := cluster(exit != ExitOK); err != nil {
		t.Fatalf("driving job %s: %v\n%s", jobID, err, s)
	}
	if exit != ExitOK {
		t.Fatalf("exit %d\n%s", exit, s)
	}
	return completed
}

func TestGetResumesADownloadCutMidBody(t *testing.T) {
	// 2 MiB that deflate cannot shrink: the archive is a little larger than its sources.
	sources := map[int64][]byte{70600: make([]byte, 1<<20), 70601: make([]byte, 1<<20)}
	for id, content := range sources {
		_, _ = rand.NewChaCha8([32]byte{byte(id)}).Read(content)
	}
	putSources(t, sources)
	for _, tc := range []struct {
		name       string
		cuts       map[int]int64
		stripRange map[int]bool
		// wantRanges are the Range headers of the archive requests, by the bytes `get` had.
		wantRanges []string
		wantShown  []string
		restarted  bool
	}{
		{
			name:       "resuming with Range where each cut left it",
			cuts:       map[int]int64{0: 700_000, 1: 600_000},
			wantRanges: []string{"", "bytes=700000-", "bytes=1300000-"},
			wantShown:  []string{"connection lost", "resuming from 684 KiB with a fresh link (attempt 2)", "(attempt 3)"},
		},
		{
			name:       "starting over once when storage answers a resume with the whole archive",
			cuts:       map[int]int64{0: 700_000},
			stripRange: map[int]bool{1: true},
			wantRanges: []string{"", "bytes=700000-"},
			wantShown:  []string{"resuming from 684 KiB", "with the whole archive: the archive may have changed, so the download starts over, once"},
			restarted:  true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			key := uuid.NewString()
			jobID := idempotentJobID(key)
			proxy := &cuttingProxy{cuts: tc.cuts, stripRange: tc.stripRange}
			dir := t.TempDir()
			out := filepath.Join(dir, "out.zip")

			s := newSession(t, false, "")
			s.cmd.httpClient = proxy.start(t)
			completed := getCompleted(ctx, t, s, jobID, "70600", "70601", "-o", out, "--idempotency-key", key)
			body, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			archive := completed.Status.Archive
			if got := sha256Hex(body); got != archive.SHA256 || int64(len(body)) != archive.Size {
				t.Errorf("saved %d bytes with sha256 %s; the worker reported %d with %s", len(body), got, archive.Size, archive.SHA256)
			}
			onlyFile(t, dir, "out.zip")

			proxy.mu.Lock()
			defer proxy.mu.Unlock()
			if len(proxy.archiveRequests) != len(tc.wantRanges) || proxy.links < len(tc.wantRanges) {
				t.Fatalf("%d archive requests after %d stable-link requests; want %d, each after a link of its own",
					len(proxy.archiveRequests), proxy.links, len(tc.wantRanges))
			}
			for i, want := range tc.wantRanges {
				sent := proxy.archiveRequests[i]
				if sent.Get("Range") != want {
					t.Errorf("archive request %d: Range %q, want %q", i, sent.Get("Range"), want)
				}
				if want != "" && !strings.HasPrefix(sent.Get("If-Range"), `"`) {
					t.Errorf("archive request %d: If-Range %q, want the archive's ETag", i, sent.Get("If-Range"))
				}
			}
			// Never the whole archive twice: what was cut plus at most one whole archive.
			if proxy.archiveBytes >= 2*archive.Size {
				t.Errorf("%d archive bytes went through the proxy for an archive of %d", proxy.archiveBytes, archive.Size)
			}
			if !tc.restarted && proxy.archiveBytes != archive.Size {
				t.Errorf("%d archive bytes went through the proxy; resuming must fetch each of the %d once", proxy.archiveBytes, archive.Size)
			}
			for _, want := range append(tc.wantShown, "saved "+out) {
				if !strings.Contains(s.stdout.String(), want) {
					t.Errorf("stdout lacks %q\n%s", want, s)
				}
			}
			if s.stderr.String() != "" {
				t.Errorf("stderr is not empty\n%s", s)
			}
			t.Logf("%d archive bytes through the proxy for an archive of %d", proxy.archiveBytes, archive.Size)
		})
	}
}
