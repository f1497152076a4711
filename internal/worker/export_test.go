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
	"io"
	"testing"

	"github.com/download-operator/download-operator/internal/manifest"
)

// What the tests of this package share with those of package worker_test.

// RepeatReader repeats Block forever: a source of any size that is never held in memory.
type RepeatReader struct {
	Block []byte
	off   int
}

func (r *RepeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.Block[r.off:])
	r.off = (r.off + n) % len(r.Block)
	return n, nil
}

// ReadEntry reads an entry through archive/zip, which checks its CRC-32 at the end. With a
// non-nil w it streams the content there and returns nothing.
func ReadEntry(t *testing.T, f *zip.File, w io.Writer) []byte {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatalf("opening %s: %v", f.Name, err)
	}
	defer func() { _ = rc.Close() }()
	if w != nil {
		if _, err := io.Copy(w, rc); err != nil {
			t.Fatalf("reading %s: %v", f.Name, err)
		}
		return nil
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", f.Name, err)
	}
	return data
}

// ReadManifest decodes the manifest entry f of an archive.
func ReadManifest(t *testing.T, f *zip.File) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Decode(bytes.NewReader(ReadEntry(t, f, nil)))
	if err != nil {
		t.Fatalf("decoding %s: %v", f.Name, err)
	}
	return m
}
