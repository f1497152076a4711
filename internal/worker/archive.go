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

package worker

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/download-operator/download-operator/internal/manifest"
)

const (
	// peekSize is how much of each file decides its compression: enough to see past headers,
	// small enough to keep in memory.
	peekSize = 64 << 10
	// minDeflateSaving is the share of the peeked bytes that Deflate must save to be chosen.
	minDeflateSaving = 0.10
	// outputBufferSize batches the zip writer's small writes into few hand-offs through the
	// upload pipe and large blocks for SHA-256.
	outputBufferSize = 256 << 10
)

// archiveWriter writes a zip archive to a stream, hashing and counting what it writes, and ends
// it with a manifest (internal/manifest) of the entries' sizes and digests, taken as they were
// copied, so no source is read twice.
//
// Each entry is stored or deflated depending on a trial compression of its first 64 KiB at
// BestSpeed: incompressible data (media, archives, encrypted files) only burns CPU under Deflate
// and may even grow, while text and CSV shrink severalfold. BestSpeed because the worker should be
// limited by the network, not by the compressor; the archive is for transfer, not long-term
// storage.
type archiveWriter struct {
	zw   *zip.Writer
	sum  hash.Hash
	size byteCounter
	// head peeks at each source; one buffer serves all entries in turn.
	head *bufio.Reader
	// probe runs the trial compression. It is separate from deflate because the previous entry's
	// compressor stays open until the next entry is created, which happens after the trial.
	probe   *flate.Writer
	deflate *flate.Writer
	// files are the manifest's records of the entries so far: a few hundred bytes each, so a
	// thousand files keep well under a part's size in memory.
	files []manifest.FileRecord
	// newest is the latest modification time of an entry, the manifest's own: the archive stays
	// the same bytes for the same sources.
	newest time.Time
}

// archiveSummary is what a client needs to verify the archive it downloads.
type archiveSummary struct {
	size   int64
	sha256 string
}

// entrySummary describes one written entry.
type entrySummary struct {
	size     int64
	deflated bool
}

func newArchiveWriter(w io.Writer) (*archiveWriter, error) {
	probe, err := flate.NewWriter(io.Discard, flate.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("creating trial compressor: %w", err)
	}
	deflate, err := flate.NewWriter(io.Discard, flate.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("creating compressor: %w", err)
	}
	aw := &archiveWriter{
		sum:     sha256.New(),
		head:    bufio.NewReaderSize(nil, peekSize),
		probe:   probe,
		deflate: deflate,
	}
	// zip.NewWriter reuses a *bufio.Writer it is given instead of wrapping it in a 4 KiB one.
	out := bufio.NewWriterSize(io.MultiWriter(w, aw.sum, &aw.size), outputBufferSize)
	aw.zw = zip.NewWriter(out)
	// Entries are written one after another and zip closes an entry's compressor before it
	// creates the next entry, so one compressor, reset per entry, serves them all.
	aw.zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		aw.deflate.Reset(w)
		return aw.deflate, nil
	})
	return aw, nil
}

// add writes src as the entry of file id, named EntryName(id), and records it for the manifest.
// The entry is complete only when the next one is added or the archive closed.
func (aw *archiveWriter) add(id int64, modified time.Time, src io.Reader) (entrySummary, error) {
	name := EntryName(id)
	aw.head.Reset(src)
	head, err := aw.head.Peek(peekSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return entrySummary{}, fmt.Errorf("reading start of %s: %w", name, err)
	}
	deflated, err := aw.worthDeflating(head)
	if err != nil {
		return entrySummary{}, err
	}
	header := &zip.FileHeader{Name: name, Method: zip.Store, Modified: modified}
	if deflated {
		header.Method = zip.Deflate
	}
	entry, err := aw.zw.CreateHeader(header)
	if err != nil {
		return entrySummary{}, fmt.Errorf("creating entry %s: %w", name, err)
	}
	// The digests see the content in the same pass that zip compresses and checksums it.
	digest := manifest.NewDigest()
	n, err := io.Copy(io.MultiWriter(entry, digest), aw.head)
	if err != nil {
		return entrySummary{}, fmt.Errorf("writing entry %s: %w", name, err)
	}
	aw.files = append(aw.files, digest.Record(id, name))
	if modified.After(aw.newest) {
		aw.newest = modified
	}
	return entrySummary{size: n, deflated: deflated}, nil
}

// maxArchiveSize bounds the size of an archive of ids requested files holding total bytes. A
// stored entry is as large as its source. A deflated one is at most 5 bytes per block larger,
// since Deflate stores a block of up to 64 KiB that it cannot shrink; one byte per KiB covers
// that. One KiB per requested id covers its entry's headers (local, data descriptor, central
// directory, Zip64 extras, about 200 bytes) and its manifest record (about 200 bytes, or 40 for a
// skipped id); two more the manifest's own entry and the end of the archive.
func maxArchiveSize(total int64, ids int) int64 {
	return total + total>>10 + int64(ids+2)<<10
}

// worthDeflating compresses head on trial and tells whether that saved enough.
func (aw *archiveWriter) worthDeflating(head []byte) (bool, error) {
	if len(head) == 0 {
		return false, nil
	}
	var compressed byteCounter
	aw.probe.Reset(&compressed)
	if _, err := aw.probe.Write(head); err != nil {
		return false, fmt.Errorf("trial compression: %w", err)
	}
	if err := aw.probe.Close(); err != nil {
		return false, fmt.Errorf("trial compression: %w", err)
	}
	return float64(compressed.Load()) <= (1-minDeflateSaving)*float64(len(head)), nil
}

// close writes the manifest, listing the entries added and the skipped files, as the last entry,
// then finishes the archive and flushes it to the stream.
func (aw *archiveWriter) close(skipped []manifest.SkippedRecord) (archiveSummary, error) {
	raw, err := manifest.Encode(manifest.Manifest{Version: manifest.Version, Files: aw.files, Skipped: skipped})
	if err != nil {
		return archiveSummary{}, err
	}
	// JSON of hex digests deflates to about half.
	entry, err := aw.zw.CreateHeader(&zip.FileHeader{Name: manifest.Name, Method: zip.Deflate, Modified: aw.newest})
	if err != nil {
		return archiveSummary{}, fmt.Errorf("creating entry %s: %w", manifest.Name, err)
	}
	if _, err := entry.Write(raw); err != nil {
		return archiveSummary{}, fmt.Errorf("writing entry %s: %w", manifest.Name, err)
	}
	if err := aw.zw.Close(); err != nil {
		return archiveSummary{}, fmt.Errorf("finishing archive: %w", err)
	}
	return archiveSummary{size: aw.size.Load(), sha256: hex.EncodeToString(aw.sum.Sum(nil))}, nil
}
