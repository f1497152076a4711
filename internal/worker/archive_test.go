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
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/manifest"
)

// TestMaxArchiveSizeBoundsTheWorstArchive writes what grows most: random entries, stored and so
// as large as their sources plus headers; entries deflated because they start compressible, then
// incompressible to the end, which Deflate stores block by block; empty entries, all headers; the
// longest ids, whose names and manifest records are longest; and skipped ids, which only add
// manifest records.
func TestMaxArchiveSizeBoundsTheWorstArchive(t *testing.T) {
	var out byteCounter
	aw, err := newArchiveWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	var total int64
	const entries, skippedIDs = 40, 25
	for i := range entries {
		size := peekSize + int64(i)<<14 + int64(i)
		var src io.Reader
		switch i % 4 {
		case 0:
			size, src = 0, bytes.NewReader(nil)
		case 1:
			src = io.MultiReader(bytes.NewReader(make([]byte, peekSize)), io.LimitReader(rng, size-peekSize))
		default:
			src = io.LimitReader(rng, size)
		}
		entry, err := aw.add(1<<62+int64(i), time.Now(), src)
		if err != nil {
			t.Fatal(err)
		}
		if entry.deflated != (i%4 == 1) {
			t.Fatalf("entry %d: deflated %v, which the test did not mean", i, entry.deflated)
		}
		total += size
	}
	skipped := make([]manifest.SkippedRecord, skippedIDs)
	for i := range skipped {
		skipped[i] = manifest.SkippedRecord{ID: 1<<62 + entries + int64(i), Reason: manifest.SkipNotFound}
	}
	summary, err := aw.close(skipped)
	if err != nil {
		t.Fatal(err)
	}
	bound := maxArchiveSize(total, entries+skippedIDs)
	t.Logf("%d source bytes in %d entries (%d ids skipped) made an archive of %d bytes; bound %d",
		total, entries, skippedIDs, summary.size, bound)
	if summary.size > bound {
		t.Errorf("archive of %d bytes in %d entries is %d bytes, over the bound %d", total, entries, summary.size, bound)
	}
}

// TestArchiveEndsWithAManifestOfItsEntries reads an archive back and checks its manifest against
// digests of the sources computed here, and against the zip's own records.
func TestArchiveEndsWithAManifestOfItsEntries(t *testing.T) {
	type file struct {
		id   int64
		data []byte
	}
	var csv bytes.Buffer
	for row := 0; csv.Len() < 200<<10; row++ {
		fmt.Fprintf(&csv, "%d,customer-%d,2026-01-%02d,shipped\n", row, row%97, row%28+1)
	}
	random := make([]byte, 300<<10)
	_, _ = rand.NewChaCha8([32]byte{2}).Read(random)
	files := []file{{70_002, csv.Bytes()}, {70_000, random}, {70_001, nil}}
	skipped := []manifest.SkippedRecord{{ID: 69_999, Reason: manifest.SkipNotFound}, {ID: 70_003, Reason: manifest.SkipNotFound}}
	newest := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

	var out bytes.Buffer
	aw, err := newArchiveWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		if _, err := aw.add(f.id, newest.Add(-time.Duration(i)*time.Hour), bytes.NewReader(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	summary, err := aw.close(skipped)
	if err != nil {
		t.Fatal(err)
	}

	if sum := sha256.Sum256(out.Bytes()); summary.size != int64(out.Len()) || summary.sha256 != hex.EncodeToString(sum[:]) {
		t.Errorf("summary %+v does not describe the %d bytes written", summary, out.Len())
	}
	zr, err := zip.NewReader(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatalf("opening archive: %v", err)
	}
	if len(zr.File) != len(files)+1 || zr.File[len(files)].Name != manifest.Name {
		t.Fatalf("archive holds %d entries, the last %q; want %d files, then %s", len(zr.File), zr.File[len(zr.File)-1].Name,
			len(files), manifest.Name)
	}
	last := zr.File[len(files)]
	if last.Method != zip.Deflate || !last.Modified.Equal(newest) {
		t.Errorf("%s: method %d, modified %s; want deflated, modified as the newest entry, %s", last.Name, last.Method,
			last.Modified, newest)
	}
	m := ReadManifest(t, last)
	want := manifest.Manifest{Version: manifest.Version, Skipped: skipped}
	for i, f := range files {
		sum := sha256.Sum256(f.data)
		want.Files = append(want.Files, manifest.FileRecord{ID: f.id, Name: EntryName(f.id), Size: int64(len(f.data)),
			SHA256: hex.EncodeToString(sum[:]), CRC32: fmt.Sprintf("%08x", crc32.ChecksumIEEE(f.data))})
		if zr.File[i].Name != EntryName(f.id) || fmt.Sprintf("%08x", zr.File[i].CRC32) != want.Files[i].CRC32 {
			t.Errorf("entry %d is %s with CRC-32 %08x, want %s with %s", i, zr.File[i].Name, zr.File[i].CRC32,
				EntryName(f.id), want.Files[i].CRC32)
		}
	}
	if m.Version != want.Version || !slices.Equal(m.Files, want.Files) || !slices.Equal(m.Skipped, want.Skipped) {
		t.Errorf("manifest = %+v\nwant       %+v", *m, want)
	}
}

func TestPartSizeFitsTheArchiveIntoMaxParts(t *testing.T) {
	const (
		mib = 1 << 20
		gib = 1 << 30
	)
	// largest is the most source bytes that ids files may hold and still be stored, found from
	// maxArchiveSize alone: the bound rises with the total.
	largest := func(ids int) int64 {
		lo, hi := int64(0), MaxArchiveSize
		for lo < hi {
			mid := lo + (hi-lo+1)/2
			if maxArchiveSize(mid, ids) <= MaxArchiveSize {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		return lo
	}
	for _, tc := range []struct {
		name       string
		total      int64
		ids        int
		configured uint64
		want       uint64
	}{
		{"1 MiB", 1 * mib, 2, DefaultPartSize, DefaultPartSize},
		{"1 GiB", 1 * gib, 1, DefaultPartSize, DefaultPartSize},
		{"just under 10,000 default parts", 48 * gib, 1, DefaultPartSize, DefaultPartSize},
		{"60 GiB", 60 * gib, 2, DefaultPartSize, 7 * mib},
		{"60 GiB with larger parts configured", 60 * gib, 2, 8 * mib, 8 * mib},
		{"100 GiB in 1000 files", 100 * gib, 1000, DefaultPartSize, 11 * mib},
		{"1 TiB", 1024 * gib, 1, DefaultPartSize, 105 * mib},
		{"the largest archive, in one file", largest(1), 1, DefaultPartSize, 525 * mib},
		{"the largest archive, in 1000 files", largest(1000), 1000, DefaultPartSize, 525 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := partSizeFor(tc.total, tc.ids, tc.configured)
			if err != nil {
				t.Fatalf("partSizeFor(%d, %d, %d): %v", tc.total, tc.ids, tc.configured, err)
			}
			if got != tc.want {
				t.Errorf("part size = %d MiB, want %d MiB", got/mib, tc.want/mib)
			}
			bound := uint64(maxArchiveSize(tc.total, tc.ids))
			if got*maxParts < bound || got > MaxPartSize || got%mib != 0 {
				t.Errorf("%d parts of %d bytes do not hold an archive of up to %d bytes, or the part is no whole MiB within %d",
					maxParts, got, bound, MaxPartSize)
			}
			// No smaller whole MiB would do, or memory grows for nothing.
			if smaller := got - mib; got > tc.configured && smaller*maxParts >= bound {
				t.Errorf("%d parts of %d bytes would hold the archive too", maxParts, smaller)
			}
		})
	}
	t.Run("one byte more than the largest archive", func(t *testing.T) {
		for _, ids := range []int{1, 1000} {
			_, err := partSizeFor(largest(ids)+1, ids, DefaultPartSize)
			if _, ok := errors.AsType[*archiveTooLargeError](err); !ok {
				t.Fatalf("%d ids: error %v, want an archiveTooLargeError", ids, err)
			}
			classified := classify(t.Context(), fmt.Errorf("bundling: %w", err))
			if classified.Exit != jobreport.ExitPermanent || classified.Failure.Reason != downloadv1alpha1.ReasonArchiveTooLarge {
				t.Errorf("classified as exit %d, failure %+v; want permanent %s", classified.Exit, classified.Failure,
					downloadv1alpha1.ReasonArchiveTooLarge)
			}
		}
	})
}

// TestArchiveWriterWritesZip64BeyondFourGiB streams an incompressible entry of more than 4 GiB,
// then a small one, through the archive writer without holding or storing them: the sink keeps
// only the archive's first and last bytes, and the reader serves the stored entry's content,
// which is its source, by regenerating it. So archive/zip reads a real ZIP64 archive: the
// central directory and its end records from the kept tail, the large entry through its data
// descriptor (whose CRC-32 the reader checks), and the small one at an offset past 4 GiB.
func TestArchiveWriterWritesZip64BeyondFourGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED in -short mode: streams 4 GiB through the archive writer and back (about 10 s)")
	}
	const (
		bigID, smallID = 70_000, 70_001
		bigSize        = 4<<30 + 3<<20 + 17
	)
	// A random MiB, repeated: Deflate's 32 KiB window cannot see the repetition, so the trial
	// finds it incompressible, as media or encrypted files are.
	block := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{3}).Read(block)
	bigSource := func() io.Reader { return io.LimitReader(&RepeatReader{Block: block}, bigSize) }
	small := []byte("the entry after the large one starts past 4 GiB\n")

	sink := &headTail{headLen: 64 << 10, tailLen: 4 << 20}
	aw, err := newArchiveWriter(sink)
	if err != nil {
		t.Fatal(err)
	}
	modified := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if entry, err := aw.add(bigID, modified, bigSource()); err != nil || entry.deflated || entry.size != bigSize {
		t.Fatalf("adding the large entry: %+v, %v; want %d bytes stored", entry, err, int64(bigSize))
	}
	if _, err := aw.add(smallID, modified, bytes.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	summary, err := aw.close(nil)
	if err != nil {
		t.Fatal(err)
	}
	if summary.size != sink.size || summary.size <= bigSize {
		t.Fatalf("summary says %d bytes, the sink got %d", summary.size, sink.size)
	}
	if bound := maxArchiveSize(bigSize+int64(len(small)), 2); summary.size > bound {
		t.Errorf("archive of %d bytes is over its bound %d", summary.size, bound)
	}

	archive := sink.readerAt(t, bigSource)
	zr, err := zip.NewReader(archive, summary.size)
	if err != nil {
		t.Fatalf("reading the central directory back: %v", err)
	}
	if len(zr.File) != 3 {
		t.Fatalf("archive holds %d entries, want 3", len(zr.File))
	}
	big, smallEntry := zr.File[0], zr.File[1]
	wantCRC := uint32(0)
	for left := int64(bigSize); left > 0; left -= int64(len(block)) {
		wantCRC = crc32.Update(wantCRC, crc32.IEEETable, block[:min(left, int64(len(block)))])
	}
	if big.Name != EntryName(bigID) || big.Method != zip.Store || big.UncompressedSize64 != bigSize ||
		big.CompressedSize64 != bigSize || big.CRC32 != wantCRC {
		t.Errorf("large entry %s: method %d, sizes %d/%d, CRC-32 %08x; want %s stored, %d bytes, %08x", big.Name, big.Method,
			big.CompressedSize64, big.UncompressedSize64, big.CRC32, EntryName(bigID), int64(bigSize), wantCRC)
	}
	offset, err := smallEntry.DataOffset()
	if err != nil || offset <= 1<<32 {
		t.Errorf("small entry's data at %d (%v), want past 4 GiB", offset, err)
	}
	if got := ReadEntry(t, smallEntry, nil); !bytes.Equal(got, small) {
		t.Errorf("small entry reads %q, want %q", got, small)
	}
	// Streamed entries end with a data descriptor, which must be the ZIP64 one (8-byte sizes)
	// for readers that walk the local headers.
	bigOffset, err := big.DataOffset()
	if err != nil {
		t.Fatal(err)
	}
	descriptor := make([]byte, 24)
	if _, err := archive.ReadAt(descriptor, bigOffset+bigSize); err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint32(descriptor) != 0x08074b50 || binary.LittleEndian.Uint32(descriptor[4:]) != wantCRC ||
		binary.LittleEndian.Uint64(descriptor[8:]) != bigSize || binary.LittleEndian.Uint64(descriptor[16:]) != bigSize {
		t.Errorf("data descriptor of the large entry = %x, want the ZIP64 one with CRC %08x and sizes %d", descriptor, wantCRC,
			int64(bigSize))
	}
	// The end of the archive holds the ZIP64 end of central directory record and its locator.
	if tail := sink.tail; !bytes.Contains(tail[max(0, len(tail)-1024):], []byte{0x50, 0x4b, 0x06, 0x06}) ||
		!bytes.Contains(tail[max(0, len(tail)-1024):], []byte{0x50, 0x4b, 0x06, 0x07}) {
		t.Error("no ZIP64 end of central directory record or locator at the end of the archive")
	}

	// Reading the large entry through archive/zip checks its CRC-32 against the descriptor;
	// its SHA-256, taken here on the way, must be the manifest's.
	digest := sha256.New()
	ReadEntry(t, big, digest)
	m := ReadManifest(t, zr.File[2])
	wantBig := manifest.FileRecord{ID: bigID, Name: EntryName(bigID), Size: bigSize,
		SHA256: hex.EncodeToString(digest.Sum(nil)), CRC32: fmt.Sprintf("%08x", wantCRC)}
	if zr.File[2].Name != manifest.Name || len(m.Files) != 2 || m.Files[0] != wantBig || m.Files[1].Size != int64(len(small)) {
		t.Errorf("manifest %s = %+v, want first %+v", zr.File[2].Name, m.Files, wantBig)
	}
}

// headTail is a sink that counts what it is written and keeps only the first headLen and the
// last (at least) tailLen bytes.
type headTail struct {
	headLen, tailLen int
	head, tail       []byte
	size             int64
}

func (h *headTail) Write(p []byte) (int, error) {
	h.size += int64(len(p))
	if room := h.headLen - len(h.head); room > 0 {
		h.head = append(h.head, p[:min(room, len(p))]...)
	}
	h.tail = append(h.tail, p...)
	if len(h.tail) > 2*h.tailLen {
		h.tail = append(h.tail[:0], h.tail[len(h.tail)-h.tailLen:]...)
	}
	return len(p), nil
}

// readerAt reads the archive back: the kept bytes as written, and between them the first
// entry's content, which for a stored entry is its source. Its data starts after the local
// header (30 bytes, then the name and the extra field, whose lengths the header gives).
func (h *headTail) readerAt(t *testing.T, source func() io.Reader) io.ReaderAt {
	t.Helper()
	if len(h.head) < 30 || binary.LittleEndian.Uint32(h.head) != 0x04034b50 {
		t.Fatal("the archive does not start with a local file header")
	}
	dataStart := int64(30 + int(binary.LittleEndian.Uint16(h.head[26:])) + int(binary.LittleEndian.Uint16(h.head[28:])))
	return &sparseArchive{h: h, dataStart: dataStart, source: source}
}

type sparseArchive struct {
	h         *headTail
	dataStart int64
	source    func() io.Reader
	// src and pos follow the source across sequential reads, which is how entries are read.
	src io.Reader
	pos int64
}

func (s *sparseArchive) ReadAt(p []byte, off int64) (int, error) {
	tailStart := s.h.size - int64(len(s.h.tail))
	done := 0
	for done < len(p) {
		at := off + int64(done)
		var n int
		switch {
		case at >= s.h.size:
			return done, io.EOF
		case at < int64(len(s.h.head)):
			n = copy(p[done:], s.h.head[at:])
		case at >= tailStart:
			n = copy(p[done:], s.h.tail[at-tailStart:])
		default:
			chunk := p[done:]
			if before := tailStart - at; int64(len(chunk)) > before {
				chunk = chunk[:before]
			}
			var err error
			if n, err = s.readSource(chunk, at-s.dataStart); err != nil {
				return done, err
			}
		}
		done += n
	}
	return done, nil
}

// readSource reads the source from pos on; only forward reads are served.
func (s *sparseArchive) readSource(p []byte, pos int64) (int, error) {
	if s.src == nil || pos < s.pos {
		s.src, s.pos = s.source(), 0
	}
	if _, err := io.CopyN(io.Discard, s.src, pos-s.pos); err != nil {
		return 0, fmt.Errorf("skipping to %d in the source: %w", pos, err)
	}
	n, err := io.ReadFull(s.src, p)
	s.pos = pos + int64(n)
	return n, err
}
