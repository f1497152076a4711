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

// Package manifest is the table of contents that the worker writes as the last entry of every
// archive, and that clients check the archive's entries against. It is shared by the writer
// (internal/worker) and the readers (the CLI), so both agree on one format.
//
// The document, for an archive of file 70000 where file 99999 was skipped:
//
//	{"version":1,
//	 "files":[{"id":70000,"name":"file-70000.bin","size":123,"sha256":"<64 hex>","crc32":"<8 hex>"}],
//	 "skipped":[{"id":99999,"reason":"not_found"}]}
//
// It names no bucket, key or Download: identical Downloads share one archive, so nothing in
// it may belong to a single request.
package manifest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

const (
	// Name is the manifest's entry name, the last entry of every archive.
	Name = "manifest.json"
	// Version is the format this package writes. A reader refuses other versions rather than
	// checking an archive against fields it may misread.
	Version = 1
	// MaxSize bounds what a reader accepts as a manifest: 1000 files make about 200 KiB, so
	// anything near this is not one of ours, and a reader should not hold it in memory.
	MaxSize = 64 << 20
)

// Skip reasons.
const (
	// SkipNotFound: the file had no source object when the worker looked (missing-file policy
	// Skip).
	SkipNotFound = "not_found"
)

// Manifest lists what an archive holds and what it left out.
type Manifest struct {
	// Version is the format, Version when written by this package.
	Version int `json:"version"`
	// Files are the archive's entries other than the manifest, in archive order.
	Files []FileRecord `json:"files"`
	// Skipped are the requested files that the archive leaves out, by ascending id.
	Skipped []SkippedRecord `json:"skipped"`
}

// FileRecord describes one entry. Size and the digests are of the entry's uncompressed content,
// which is the source file.
type FileRecord struct {
	// ID is the requested file id.
	ID int64 `json:"id"`
	// Name is the entry's name in the archive.
	Name string `json:"name"`
	// Size is the content's length in bytes; int64, as entries may pass 4 GiB (ZIP64).
	Size int64 `json:"size"`
	// SHA256 is the lowercase hex SHA-256 of the content.
	SHA256 string `json:"sha256"`
	// CRC32 is the content's CRC-32 (IEEE, as zip uses) as 8 lowercase hex digits.
	CRC32 string `json:"crc32"`
}

// SkippedRecord is a requested file that the archive does not hold.
type SkippedRecord struct {
	ID int64 `json:"id"`
	// Reason says why, one of the Skip constants.
	Reason string `json:"reason"`
}

// Encode renders m as the manifest entry's content.
func Encode(m Manifest) ([]byte, error) {
	// Empty lists are written as [] rather than null, so that readers need no special case.
	if m.Files == nil {
		m.Files = []FileRecord{}
	}
	if m.Skipped == nil {
		m.Skipped = []SkippedRecord{}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return raw, nil
}

// Decode reads a manifest of a version this package knows, reading at most MaxSize bytes.
func Decode(r io.Reader) (*Manifest, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", Name, err)
	}
	if len(raw) > MaxSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", Name, MaxSize)
	}
	// Unknown fields are ignored: a later writer may add some without changing what these mean.
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", Name, err)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("%s has version %d, this reader knows only version %d", Name, m.Version, Version)
	}
	return &m, nil
}

// Digest computes a FileRecord's size and digests from the content written to it, so that a
// writer or a reader gets them in the same pass that copies the content.
type Digest struct {
	sha  hash.Hash
	crc  hash.Hash32
	size int64
}

// NewDigest returns an empty Digest.
func NewDigest() *Digest {
	return &Digest{sha: sha256.New(), crc: crc32.NewIEEE()}
}

// Write adds p to the content; it never fails.
func (d *Digest) Write(p []byte) (int, error) {
	d.sha.Write(p)
	d.crc.Write(p)
	d.size += int64(len(p))
	return len(p), nil
}

// Record describes the content written so far as the entry name of file id.
func (d *Digest) Record(id int64, name string) FileRecord {
	return FileRecord{ID: id, Name: name, Size: d.size, SHA256: hex.EncodeToString(d.sha.Sum(nil)), CRC32: CRC32Hex(d.crc.Sum32())}
}

// CRC32Hex renders a CRC-32 as the manifest writes it.
func CRC32Hex(sum uint32) string {
	return hex.EncodeToString(binary.BigEndian.AppendUint32(nil, sum))
}

// Mismatch compares a FileRecord with what was read and says which field differs first: the
// size, then the SHA-256, which any change of content alters, then the CRC-32, which then differs
// only if the record contradicts itself.
func (f FileRecord) Mismatch(got FileRecord) error {
	switch {
	case got.Size != f.Size:
		return fmt.Errorf("size %d, %s says %d", got.Size, Name, f.Size)
	case got.SHA256 != f.SHA256:
		return errors.New("sha256 mismatch")
	case got.CRC32 != f.CRC32:
		return errors.New("crc32 mismatch")
	}
	return nil
}
