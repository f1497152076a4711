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

package cluster

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/download-operator/download-operator/internal/manifest"
)

// Digest identifies bytes by length and sha256 (hex).
type Digest struct {
	Size   int64
	SHA256 string
}

func (d Digest) String() string { return fmt.Sprintf("%d bytes, sha256 %s", d.Size, d.SHA256) }

// VerifyArchive downloads url with plain net/http from the host, as a browser would, and checks
// the zip entry by entry against the source objects in MinIO: exactly one entry per id, in
// fileIDs order (in the central directory and on disk), each named as users expect, with the
// source's size and sha256. archive/zip also checks every entry's CRC-32 on the way. It returns
// the digest of the whole archive, for comparison with what the status promised.
func VerifyArchive(ctx context.Context, url string, fileIDs []int64) (Digest, error) {
	if url == "" {
		return Digest{}, errors.New("verifying archive: empty URL")
	}
	f, err := os.CreateTemp("", "e2e-archive-*.zip")
	if err != nil {
		return Digest{}, fmt.Errorf("creating temporary file for the archive: %w", err)
	}
	defer func() { _ = f.Close(); _ = os.Remove(f.Name()) }()

	whole, err := Fetch(ctx, url, f)
	if err != nil {
		return Digest{}, err
	}
	zr, err := zip.NewReader(f, whole.Size)
	if err != nil {
		return whole, fmt.Errorf("reading the downloaded archive (%s) as zip: %w", whole, err)
	}
	return whole, VerifyEntries(ctx, zr, fileIDs, nil)
}

// VerifyEntries checks an archive's entries: one per id of fileIDs, in that order, then
// manifest.json, whose records must match the sources and which must list skipped (and only
// those) as skipped.
func VerifyEntries(ctx context.Context, zr *zip.Reader, fileIDs, skipped []int64) error {
	if len(zr.File) != len(fileIDs)+1 {
		names := make([]string, len(zr.File))
		for i, zf := range zr.File {
			names[i] = zf.Name
		}
		return fmt.Errorf("archive has %d entries %v, want %d for file ids %v and the manifest",
			len(zr.File), names, len(fileIDs)+1, fileIDs)
	}
	var errs []error
	lastOffset := int64(-1)
	for i, id := range fileIDs {
		if err := verifyEntry(ctx, zr.File[i], id, &lastOffset); err != nil {
			errs = append(errs, fmt.Errorf("entry %d: %w", i, err))
		}
	}
	if err := verifyManifest(ctx, zr.File[len(fileIDs)], fileIDs, skipped); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// verifyManifest checks the archive's last entry: manifest.json, with one record per id in
// archive order that matches the source the test reads itself, and the skipped ids.
func verifyManifest(ctx context.Context, zf *zip.File, fileIDs, skipped []int64) error {
	if zf.Name != manifest.Name {
		return fmt.Errorf("last entry is %q, want %s", zf.Name, manifest.Name)
	}
	r, err := zf.Open()
	if err != nil {
		return fmt.Errorf("opening %s: %w", manifest.Name, err)
	}
	defer func() { _ = r.Close() }()
	m, err := manifest.Decode(r)
	if err != nil {
		return err
	}
	if len(m.Files) != len(fileIDs) {
		return fmt.Errorf("%s lists %d files, want %d", manifest.Name, len(m.Files), len(fileIDs))
	}
	var errs []error
	for i, id := range fileIDs {
		record := m.Files[i]
		want, err := sourceDigest(ctx, id)
		if err != nil {
			return err
		}
		if record.ID != id || record.Name != entryName(id) || record.Size != want.Size || record.SHA256 != want.SHA256 {
			errs = append(errs, fmt.Errorf("%s record %d is %+v, want id %d, name %s, %s", manifest.Name, i, record, id, entryName(id), want))
		}
	}
	gotSkipped := make([]int64, len(m.Skipped))
	for i, s := range m.Skipped {
		gotSkipped[i] = s.ID
		if s.Reason != manifest.SkipNotFound {
			errs = append(errs, fmt.Errorf("%s skips %d for %q, want %q", manifest.Name, s.ID, s.Reason, manifest.SkipNotFound))
		}
	}
	if !slices.Equal(gotSkipped, skipped) && len(gotSkipped)+len(skipped) > 0 {
		errs = append(errs, fmt.Errorf("%s skips %v, want %v", manifest.Name, gotSkipped, skipped))
	}
	return errors.Join(errs...)
}

// Fetch GETs url into w and returns the digest of what it wrote.
func Fetch(ctx context.Context, url string, w io.Writer) (Digest, error) {
	resp, err := Get(ctx, http.DefaultClient, url)
	if err != nil {
		return Digest{}, fmt.Errorf("downloading archive: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2<<10))
		return Digest{}, fmt.Errorf("downloading archive: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mediaType != "application/zip" {
		return Digest{}, fmt.Errorf("downloading archive: Content-Type %q, want application/zip",
			resp.Header.Get("Content-Type"))
	}
	hash := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, hash), resp.Body)
	if err != nil {
		return Digest{}, fmt.Errorf("downloading archive after %d bytes: %w", n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return Digest{}, fmt.Errorf("downloading archive: got %d bytes, Content-Length said %d", n, resp.ContentLength)
	}
	return Digest{Size: n, SHA256: hex.EncodeToString(hash.Sum(nil))}, nil
}

// verifyEntry checks one zip entry against the source object of id. lastOffset is the data
// offset of the previous entry: entries must also lie in the archive in request order.
func verifyEntry(ctx context.Context, zf *zip.File, id int64, lastOffset *int64) error {
	if zf.Name != entryName(id) {
		return fmt.Errorf("named %q, want %q", zf.Name, entryName(id))
	}
	offset, err := zf.DataOffset()
	if err != nil {
		return fmt.Errorf("%s: locating data: %w", zf.Name, err)
	}
	if offset <= *lastOffset {
		return fmt.Errorf("%s: data at offset %d, not after the previous entry's (%d)", zf.Name, offset, *lastOffset)
	}
	*lastOffset = offset

	want, err := sourceDigest(ctx, id)
	if err != nil {
		return err
	}
	if zf.UncompressedSize64 != uint64(want.Size) {
		return fmt.Errorf("%s: header says %d bytes, source %d is %d", zf.Name, zf.UncompressedSize64, id, want.Size)
	}
	r, err := zf.Open()
	if err != nil {
		return fmt.Errorf("%s: opening: %w", zf.Name, err)
	}
	defer func() { _ = r.Close() }()
	got, err := DigestOf(r)
	if err != nil {
		return fmt.Errorf("%s: reading: %w", zf.Name, err)
	}
	if got != want {
		return fmt.Errorf("%s: %s, source %d is %s", zf.Name, got, id, want)
	}
	return nil
}

var (
	sourceDigestsMu sync.Mutex
	// sourceDigests caches source digests by key and ETag: the seed never changes during a
	// run, and hashing hundreds of MiB per spec would only slow the suite down.
	sourceDigests = map[string]Digest{}
)

// sourceDigest is the digest of source file id, read from MinIO by the test itself.
func sourceDigest(ctx context.Context, id int64) (Digest, error) {
	key := SourceKey(id)
	info, err := S3.StatObject(ctx, Env.SourceBucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Digest{}, fmt.Errorf("stat source %s/%s: %w", Env.SourceBucket, key, err)
	}
	cacheKey := key + "@" + info.ETag
	sourceDigestsMu.Lock()
	defer sourceDigestsMu.Unlock()
	if d, ok := sourceDigests[cacheKey]; ok {
		return d, nil
	}
	obj, err := S3.GetObject(ctx, Env.SourceBucket, key, minio.GetObjectOptions{})
	if err != nil {
		return Digest{}, fmt.Errorf("opening source %s/%s: %w", Env.SourceBucket, key, err)
	}
	defer func() { _ = obj.Close() }()
	d, err := DigestOf(obj)
	if err != nil {
		return Digest{}, fmt.Errorf("reading source %s/%s: %w", Env.SourceBucket, key, err)
	}
	sourceDigests[cacheKey] = d
	return d, nil
}

// DigestOf is the digest of everything r yields.
func DigestOf(r io.Reader) (Digest, error) {
	hash := sha256.New()
	n, err := io.Copy(hash, r)
	if err != nil {
		return Digest{}, err
	}
	return Digest{Size: n, SHA256: hex.EncodeToString(hash.Sum(nil))}, nil
}

// IncompleteUploads lists the multipart uploads of exactly key that are still open in the
// archive bucket: parts nobody completed or aborted, which cost storage until reaped. Each is
// described by its upload id and when it was initiated, to tell one attempt's from another's.
func IncompleteUploads(ctx context.Context, key string) ([]string, error) {
	open, err := OpenUploads(ctx, key)
	if err != nil {
		return nil, err
	}
	var uploads []string
	for _, upload := range open {
		if upload.Key == key {
			uploads = append(uploads, fmt.Sprintf("%s initiated %s",
				upload.UploadID, upload.Initiated.UTC().Format(time.RFC3339)))
		}
	}
	return uploads, nil
}

// OpenUploads lists every incomplete multipart upload in the archive bucket under prefix
// ("" for all).
func OpenUploads(ctx context.Context, prefix string) ([]minio.ObjectMultipartInfo, error) {
	var uploads []minio.ObjectMultipartInfo
	for upload := range S3.ListIncompleteUploads(ctx, Env.ArchiveBucket, prefix, true) {
		if upload.Err != nil {
			return nil, fmt.Errorf("listing incomplete uploads of %s/%s: %w", Env.ArchiveBucket, prefix, upload.Err)
		}
		uploads = append(uploads, upload)
	}
	return uploads, nil
}

// ArchiveExists tells whether the archive bucket holds an object at key.
func ArchiveExists(ctx context.Context, key string) (bool, error) {
	_, err := S3.StatObject(ctx, Env.ArchiveBucket, key, minio.StatObjectOptions{})
	switch {
	case err == nil:
		return true, nil
	case IsNoSuchKey(err):
		return false, nil
	default:
		return false, fmt.Errorf("stat archive %s/%s: %w", Env.ArchiveBucket, key, err)
	}
}

// IsNoSuchKey tells whether err is S3's answer for a key that does not exist.
func IsNoSuchKey(err error) bool {
	var resp minio.ErrorResponse
	return errors.As(err, &resp) && resp.Code == minio.NoSuchKey
}
