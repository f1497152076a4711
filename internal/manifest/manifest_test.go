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

package manifest_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/download-operator/download-operator/internal/manifest"
)

func TestEncodeWritesTheDocumentedFormat(t *testing.T) {
	d := manifest.NewDigest()
	_, _ = d.Write([]byte("hello "))
	_, _ = d.Write([]byte("world"))
	m := manifest.Manifest{Version: manifest.Version, Files: []manifest.FileRecord{d.Record(70_000, "file-70000.bin")}}
	raw, err := manifest.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	// The digests of "hello world", from sha256sum and zlib.crc32.
	want := `{"version":1,"files":[{"id":70000,"name":"file-70000.bin","size":11,` +
		`"sha256":"b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9","crc32":"0d4a1185"}],"skipped":[]}`
	if string(raw) != want {
		t.Errorf("Encode = %s\nwant     %s", raw, want)
	}
	got, err := manifest.Decode(bytes.NewReader(raw))
	if err != nil || got.Files[0] != m.Files[0] {
		t.Errorf("Decode = %+v, %v; want %+v back", got, err, m)
	}
}

func TestCRC32HexKeepsLeadingZeros(t *testing.T) {
	if got := manifest.CRC32Hex(0xabcd); got != "0000abcd" {
		t.Errorf("CRC32Hex(0xabcd) = %q, want 0000abcd", got)
	}
}

func TestDecodeRefusesWhatIsNoManifestOfThisVersion(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"no version":    {`{"files":[]}`, "version 0"},
		"later version": {`{"version":2}`, "version 2"},
		"not JSON":      {`PK`, "decoding manifest.json"},
		"too large":     {`{"version":1,"files":[` + strings.Repeat(" ", manifest.MaxSize) + `]}`, "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := manifest.Decode(strings.NewReader(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode error = %v, want one saying %q", err, tc.want)
			}
		})
	}
}
