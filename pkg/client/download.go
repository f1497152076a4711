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
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Download fetches a completed job's archive from its presigned URL and streams it into w,
// hashing it on the way; nothing is held in memory. onProgress, if not nil, is called after
// each chunk with the bytes written so far and the archive size (-1 when unknown).
//
// It returns the sha256 (hex) and length of what it wrote. If they differ from status.SHA256
// and status.Size the error is a *ChecksumError and the bytes in w must be thrown away; callers
// writing to a file should write to a temporary one and rename it only on success.
func (c *Client) Download(ctx context.Context, status *Status, w io.Writer, onProgress func(done, total int64)) (string, int64, error) {
	if err := downloadable(status); err != nil {
		return "", 0, err
	}
	if status.DownloadURL == "" {
		return "", 0, fmt.Errorf("downloading job %s: the status has no download URL", status.JobID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, status.DownloadURL, nil)
	if err != nil {
		return "", 0, fmt.Errorf("downloading job %s: building request: %w", status.JobID, err)
	}
	// Only the User-Agent: the URL is presigned for storage, which has no use for API headers.
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("downloading job %s: %w", status.JobID, err)
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("downloading job %s: storage answered %s", status.JobID, storageError(resp))
	}

	total := status.Size
	if total <= 0 {
		total = resp.ContentLength
	}
	hash := sha256.New()
	counter := &progressWriter{total: total, onProgress: onProgress}
	n, err := io.Copy(io.MultiWriter(w, hash, counter), resp.Body)
	sum := hex.EncodeToString(hash.Sum(nil))
	if err != nil {
		return sum, n, fmt.Errorf("downloading job %s after %d bytes: %w", status.JobID, n, err)
	}
	return sum, n, verify(status, sum, n)
}

// downloadable refuses a status whose archive cannot be downloaded and verified.
func downloadable(status *Status) error {
	switch {
	case status == nil || status.Status != StateCompleted:
		return errors.New("downloading: the job has not completed")
	case status.SHA256 == "":
		// Refusing beats handing out bytes nobody can vouch for.
		return fmt.Errorf("downloading job %s: the status has no sha256 to verify against", status.JobID)
	}
	return nil
}

// verify is a *ChecksumError when the n bytes with digest sum are not the archive status
// describes.
func verify(status *Status, sum string, n int64) error {
	if !strings.EqualFold(sum, status.SHA256) || (status.Size > 0 && n != status.Size) {
		return &ChecksumError{WantSHA256: strings.ToLower(status.SHA256), GotSHA256: sum, WantSize: status.Size, GotSize: n}
	}
	return nil
}

type progressWriter struct {
	done, total int64
	onProgress  func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.onProgress != nil {
		p.onProgress(p.done, p.total)
	}
	return len(b), nil
}

// storageError describes an S3 error response by its status and, when the body is the usual
// XML, its code and message (an expired URL is "403 Forbidden: AccessDenied: Request has
// expired"), so that the reader knows whether fetching a fresh URL helps.
func storageError(resp *http.Response) string {
	var body struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if xml.Unmarshal(raw, &body) == nil && body.Code != "" {
		return fmt.Sprintf("%s: %s: %s", resp.Status, body.Code, body.Message)
	}
	return resp.Status
}
