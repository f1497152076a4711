//go:build e2e

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

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	dlclient "github.com/download-operator/download-operator/pkg/client"
	"github.com/download-operator/download-operator/test/cluster"
)

var _ = Describe("Stable archive link", func() {
	It("redirects to a freshly signed URL of an archive whose ETag, ranges and file name hold", func(ctx SpecContext) {
		jobID := cluster.CompletedJob(ctx, cluster.File1MiB)
		status, err := cluster.API.Status(ctx, jobID)
		Expect(err).NotTo(HaveOccurred())
		Expect(status.ArchiveURL).To(Equal("/v1/download/" + jobID + "/archive"))

		By("asking the stable link twice, a second apart")
		first, err := cluster.API.ArchiveURL(ctx, jobID, "")
		Expect(err).NotTo(HaveOccurred())
		time.Sleep(1100 * time.Millisecond) // signatures are dated to the second
		second, err := cluster.API.ArchiveURL(ctx, jobID, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(second.URL).NotTo(Equal(first.URL), "each call must sign anew")
		for _, link := range []*dlclient.ArchiveLink{first, second} {
			Expect(link.ExpiresAt).To(BeTemporally(">", time.Now()))
			Expect(link.ExpiresAt).To(BeTemporally("<=", time.Now().Add(5*time.Minute+time.Second)), "links live 5 minutes at most")
		}

		By("fetching the whole archive through both URLs: same bytes, same ETag, the default file name")
		whole, etag := fetchArchive(ctx, first.URL, "")
		Expect(whole.StatusCode).To(Equal(http.StatusOK))
		Expect(int64(len(whole.body))).To(Equal(status.Size))
		Expect(sha256Of(whole.body)).To(Equal(status.SHA256))
		Expect(whole.Header.Get("Content-Disposition")).To(Equal(`attachment; filename="download-` + jobID + `.zip"`))
		again, etagAgain := fetchArchive(ctx, second.URL, "")
		Expect(again.StatusCode).To(Equal(http.StatusOK))
		Expect(etag).NotTo(BeEmpty())
		Expect(etagAgain).To(Equal(etag), "re-signing must not change the archive's ETag")

		By("following the link itself with Range and a chosen file name, as a browser or curl -L would")
		u := cluster.Env.FacadeURL + status.ArchiveURL + "?filename=e2e-link.zip"
		part, partETag := fetchArchive(ctx, u, "bytes=100-199")
		Expect(part.StatusCode).To(Equal(http.StatusPartialContent))
		Expect(part.body).To(Equal(whole.body[100:200]))
		Expect(part.Header.Get("Content-Range")).To(Equal("bytes 100-199/" + strconv.FormatInt(status.Size, 10)))
		Expect(partETag).To(Equal(etag))
		Expect(part.Header.Get("Content-Disposition")).To(Equal(`attachment; filename="e2e-link.zip"`))

		By("refusing a file name outside the safe set")
		_, err = cluster.API.ArchiveURL(ctx, jobID, "../../etc/passwd")
		var apiErr *dlclient.APIError
		Expect(errors.As(err, &apiErr)).To(BeTrue(), "ArchiveURL with a bad name: %v", err)
		Expect(apiErr.StatusCode).To(Equal(http.StatusBadRequest))
	}, SpecTimeout(6*time.Minute))

	It("lets pkg/client resume a download whose connection breaks, without fetching it twice", func(ctx SpecContext) {
		jobID := cluster.CompletedJob(ctx, cluster.File32MiB)
		status, err := cluster.API.Status(ctx, jobID)
		Expect(err).NotTo(HaveOccurred())

		By("cutting the first two storage answers a third of the way in, below the client")
		cutter := &cuttingTransport{base: http.DefaultTransport, cuts: []int64{status.Size / 3, status.Size / 3}}
		c, err := dlclient.New(cluster.Env.FacadeURL, dlclient.WithUserAgent("download-operator-e2e"),
			dlclient.WithHTTPClient(&http.Client{Transport: cutter}))
		Expect(err).NotTo(HaveOccurred())
		out, err := os.Create(filepath.Join(GinkgoT().TempDir(), "archive.zip"))
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = out.Close() }()
		var resumes []dlclient.Resume
		sum, n, err := c.DownloadArchive(ctx, status, out, &dlclient.DownloadOptions{
			OnResume: func(r dlclient.Resume) {
				GinkgoWriter.Printf("resume: attempt %d from byte %d after %v\n", r.Attempt, r.Offset, r.Cause)
				resumes = append(resumes, r)
			},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(cluster.Digest{Size: n, SHA256: sum}).To(Equal(cluster.Digest{Size: status.Size, SHA256: status.SHA256}))
		Expect(resumes).To(HaveLen(2))
		Expect(resumes[1].Offset).To(Equal(2 * (status.Size / 3)))

		cutter.mu.Lock()
		defer cutter.mu.Unlock()
		GinkgoWriter.Printf("%d storage requests carried %d archive bytes for an archive of %d\n",
			cutter.requests, cutter.read, status.Size)
		Expect(cutter.requests).To(Equal(3))
		Expect(cutter.read).To(Equal(status.Size), "each byte fetched once")
	}, SpecTimeout(6*time.Minute))
})

// fetched is a response with its body read.
type fetched struct {
	*http.Response
	body []byte
}

// fetchArchive GETs u with plain net/http (following redirects), with rangeSpec as Range when
// not empty, and returns the answer and its ETag.
func fetchArchive(ctx context.Context, u, rangeSpec string) (fetched, string) {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	Expect(err).NotTo(HaveOccurred())
	if rangeSpec != "" {
		req.Header.Set("Range", rangeSpec)
	}
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return fetched{Response: resp, body: body}, resp.Header.Get("ETag")
}

func sha256Of(b []byte) string {
	d, err := cluster.DigestOf(bytes.NewReader(b))
	Expect(err).NotTo(HaveOccurred())
	return d.SHA256
}

// cuttingTransport ends the body of the n-th storage answer (a presigned GET, not an API call)
// after cuts[n] bytes, as a dropped connection would, and counts the archive bytes read.
type cuttingTransport struct {
	base http.RoundTripper
	cuts []int64

	mu       sync.Mutex
	requests int
	read     int64
}

func (t *cuttingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || req.URL.Query().Get("X-Amz-Signature") == "" {
		return resp, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	left := int64(-1)
	if t.requests < len(t.cuts) {
		left = t.cuts[t.requests]
	}
	t.requests++
	resp.Body = &cutReader{ReadCloser: resp.Body, left: left, t: t}
	return resp, nil
}

type cutReader struct {
	io.ReadCloser
	left int64
	t    *cuttingTransport
}

func (r *cutReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, fmt.Errorf("connection cut by the test: %w", io.ErrUnexpectedEOF)
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.ReadCloser.Read(p)
	if r.left > 0 {
		r.left -= int64(n)
	}
	r.t.mu.Lock()
	r.t.read += int64(n)
	r.t.mu.Unlock()
	return n, err
}
