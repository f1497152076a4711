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
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/download-operator/download-operator/internal/manifest"
)

// testEntry is one entry of a test archive.
type testEntry struct {
	name   string
	data   []byte
	method uint16
}

// verifyFixture is the content of a good archive: a deflated, a stored and an empty file, and
// the manifest that describes them, its digests computed here.
func verifyFixture() ([]testEntry, manifest.Manifest) {
	random := make([]byte, 100<<10)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(random)
	entries := []testEntry{
		{"file-70000.bin", bytes.Repeat([]byte("id,name,total\n1,alice,12.50\n"), 2000), zip.Deflate},
		{"file-70001.bin", random, zip.Store},
		{"file-70002.bin", nil, zip.Store},
	}
	m := manifest.Manifest{Version: manifest.Version,
		Skipped: []manifest.SkippedRecord{{ID: 99_999, Reason: manifest.SkipNotFound}}}
	for i, e := range entries {
		sum := sha256.Sum256(e.data)
		m.Files = append(m.Files, manifest.FileRecord{ID: 70_000 + int64(i), Name: e.name, Size: int64(len(e.data)),
			SHA256: hex.EncodeToString(sum[:]), CRC32: fmt.Sprintf("%08x", crc32.ChecksumIEEE(e.data))})
	}
	return entries, m
}

// writeArchive writes entries, then, unless m is nil, its JSON as the manifest, to a file.
func writeArchive(t *testing.T, entries []testEntry, m any) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	if m != nil {
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, testEntry{manifest.Name, raw, zip.Deflate})
	}
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "download.zip")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerifyArchiveAcceptsAnArchiveThatMatchesItsManifest(t *testing.T) {
	entries, want := verifyFixture()
	got, err := VerifyArchive(writeArchive(t, entries, want))
	if err != nil {
		t.Fatalf("VerifyArchive: %v", err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("manifest = %+v, want %+v", *got, want)
	}
}

func TestVerifyArchiveNamesEveryEntryThatDoesNotMatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		// change alters the good archive's entries or manifest.
		change func(entries []testEntry, m *manifest.Manifest) []testEntry
		// corrupt alters the written file's bytes, after the zip was written consistently.
		corrupt func(t *testing.T, path string)
		want    []string
	}{
		{
			name: "a tampered entry",
			change: func(entries []testEntry, _ *manifest.Manifest) []testEntry {
				entries[1].data = bytes.Clone(entries[1].data)
				entries[1].data[500] ^= 1
				return entries
			},
			want: []string{"entry file-70001.bin: sha256 mismatch"},
		},
		{
			name: "an entry corrupted on the wire, which also fails the zip's own CRC-32",
			corrupt: func(t *testing.T, path string) {
				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				// The stored random entry's bytes appear in the file as they are.
				entries, _ := verifyFixture()
				at := bytes.Index(raw, entries[1].data)
				if at < 0 {
					t.Fatal("stored entry not found in the archive")
				}
				raw[at+1000] ^= 0x80
				if err := os.WriteFile(path, raw, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"entry file-70001.bin: sha256 mismatch"},
		},
		{
			name: "an entry longer than listed",
			change: func(entries []testEntry, _ *manifest.Manifest) []testEntry {
				entries[2].data = []byte("x")
				return entries
			},
			want: []string{"entry file-70002.bin: size 1, manifest.json says 0"},
		},
		{
			name: "a missing entry",
			change: func(entries []testEntry, _ *manifest.Manifest) []testEntry {
				return entries[:2]
			},
			want: []string{"entry file-70002.bin: listed in manifest.json but missing from the archive"},
		},
		{
			name: "an extra entry",
			change: func(entries []testEntry, _ *manifest.Manifest) []testEntry {
				return append(entries, testEntry{"readme.txt", []byte("hello"), zip.Deflate})
			},
			want: []string{"entry readme.txt: not listed in manifest.json"},
		},
		{
			name: "several problems at once",
			change: func(entries []testEntry, m *manifest.Manifest) []testEntry {
				m.Files[0].CRC32 = "00000000"
				return append(entries[:2], testEntry{"readme.txt", nil, zip.Store})
			},
			want: []string{"entry file-70000.bin: crc32 mismatch", "entry readme.txt: not listed in manifest.json",
				"entry file-70002.bin: listed in manifest.json but missing from the archive"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, m := verifyFixture()
			if tc.change != nil {
				entries = tc.change(entries, &m)
			}
			path := writeArchive(t, entries, m)
			if tc.corrupt != nil {
				tc.corrupt(t, path)
			}

			got, err := VerifyArchive(path)

			if err == nil {
				t.Fatalf("VerifyArchive accepted the archive, returning %+v", got)
			}
			t.Logf("error: %v", err)
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want)+1 {
				t.Errorf("error has %d problems, want exactly %d:\n%v", len(lines)-1, len(tc.want), err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), "\n"+want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestVerifyArchiveRefusesWhatItCannotCheck(t *testing.T) {
	entries, good := verifyFixture()
	notZip := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(notZip, []byte("<html>expired</html>"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"an archive without a manifest", writeArchive(t, entries, nil), "holds no manifest.json, so its entries cannot be verified"},
		{"a manifest of a later version", writeArchive(t, entries, map[string]any{"version": 2, "files": good.Files}),
			"manifest.json has version 2, this reader knows only version 1"},
		{"a manifest that is no JSON", writeArchive(t, append(entries, testEntry{manifest.Name, []byte("{"), zip.Store}), nil),
			"decoding manifest.json"},
		{"a file that is no zip", notZip, "opening archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyArchive(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("VerifyArchive = %+v, %v; want an error saying %q", got, err, tc.want)
			}
		})
	}
}
