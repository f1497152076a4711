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
	"archive/zip"
	"errors"
	"fmt"
	"io"

	"github.com/download-operator/download-operator/internal/manifest"
)

// VerifyArchive checks a downloaded archive against the manifest its worker wrote into it
// (internal/manifest): every entry but the manifest is listed there, every listed file is an
// entry, and each entry's content has the listed size, SHA-256 and CRC-32. It reads each entry
// once, never more of it than the manifest lists plus one byte, and returns the manifest, whose
// Skipped list tells which requested files the archive leaves out.
//
// The error names every entry that fails, one per line, as "entry <name>: <problem>". An
// archive without a manifest fails too: its entries cannot be checked.
func VerifyArchive(path string) (*manifest.Manifest, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("opening archive %s: %w", path, err)
	}
	defer func() { _ = zr.Close() }()
	m, err := readManifest(&zr.Reader)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", path, err)
	}
	listed := make(map[string]manifest.FileRecord, len(m.Files))
	for _, f := range m.Files {
		if _, twice := listed[f.Name]; twice || f.Name == manifest.Name {
			return nil, fmt.Errorf("archive %s: %s lists entry %s twice", path, manifest.Name, f.Name)
		}
		listed[f.Name] = f
	}
	var problems []error
	seen := make(map[string]bool, len(zr.File))
	for _, f := range zr.File {
		if f.Name == manifest.Name {
			continue
		}
		if seen[f.Name] {
			problems = append(problems, fmt.Errorf("entry %s: appears twice in the archive", f.Name))
			continue
		}
		seen[f.Name] = true
		record, ok := listed[f.Name]
		if !ok {
			problems = append(problems, fmt.Errorf("entry %s: not listed in %s", f.Name, manifest.Name))
			continue
		}
		if err := verifyEntry(f, record); err != nil {
			problems = append(problems, fmt.Errorf("entry %s: %w", f.Name, err))
		}
	}
	for _, f := range m.Files {
		if !seen[f.Name] {
			problems = append(problems, fmt.Errorf("entry %s: listed in %s but missing from the archive", f.Name, manifest.Name))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("archive %s does not match its %s:\n%w", path, manifest.Name, err)
	}
	return m, nil
}

// readManifest finds the one manifest entry and decodes it.
func readManifest(zr *zip.Reader) (*manifest.Manifest, error) {
	var found *zip.File
	for _, f := range zr.File {
		if f.Name != manifest.Name {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("holds %s twice", manifest.Name)
		}
		found = f
	}
	if found == nil {
		return nil, fmt.Errorf("holds no %s, so its entries cannot be verified", manifest.Name)
	}
	rc, err := found.Open()
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", manifest.Name, err)
	}
	defer func() { _ = rc.Close() }()
	return manifest.Decode(rc)
}

// verifyEntry reads an entry's content once and compares it with its record.
func verifyEntry(f *zip.File, record manifest.FileRecord) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("opening: %w", err)
	}
	defer func() { _ = rc.Close() }()
	digest := manifest.NewDigest()
	// One byte past the listed size shows an entry too long without inflating all of it.
	_, err = io.Copy(digest, io.LimitReader(rc, record.Size+1))
	// archive/zip checks the zip's own CRC-32 at the end of the content; content that was
	// changed shows as a mismatch with the manifest, which says more.
	if err != nil && !errors.Is(err, zip.ErrChecksum) {
		return fmt.Errorf("reading: %w", err)
	}
	if mismatch := record.Mismatch(digest.Record(record.ID, f.Name)); mismatch != nil {
		return mismatch
	}
	if err != nil {
		return fmt.Errorf("content matches %s, but not the archive's own CRC-32: %w", manifest.Name, err)
	}
	return nil
}
