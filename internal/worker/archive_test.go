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
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestMaxArchiveSizeBoundsTheWorstArchive writes what grows most: random entries, stored and so
// as large as their sources plus headers; entries deflated because they start compressible, then
// incompressible to the end, which Deflate stores block by block; and empty entries, all headers.
func TestMaxArchiveSizeBoundsTheWorstArchive(t *testing.T) {
	var out byteCounter
	aw, err := newArchiveWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	var total int64
	const entries = 40
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
		entry, err := aw.add(EntryName(1<<62+int64(i)), time.Now(), src)
		if err != nil {
			t.Fatal(err)
		}
		if entry.deflated != (i%4 == 1) {
			t.Fatalf("entry %d: deflated %v, which the test did not mean", i, entry.deflated)
		}
		total += size
	}
	summary, err := aw.close()
	if err != nil {
		t.Fatal(err)
	}
	bound := maxArchiveSize(total, entries)
	t.Logf("%d source bytes in %d entries made an archive of %d bytes; bound %d", total, entries, summary.size, bound)
	if summary.size > bound {
		t.Errorf("archive of %d bytes in %d entries is %d bytes, over the bound %d", total, entries, summary.size, bound)
	}
}

func TestPartSizeGrowsOnlyForArchivesTooLargeForItsParts(t *testing.T) {
	const gib = 1 << 30
	sources := func(sizes ...int64) []source {
		s := make([]source, len(sizes))
		for i, size := range sizes {
			s[i] = source{info: minio.ObjectInfo{Size: size}}
		}
		return s
	}
	for _, tc := range []struct {
		name       string
		configured uint64
		sources    []source
		want       uint64
	}{
		{"small archive", DefaultPartSize, sources(1<<20, 0), DefaultPartSize},
		{"just under 10,000 parts", DefaultPartSize, sources(48 * gib), DefaultPartSize},
		{"60 GiB", DefaultPartSize, sources(30*gib, 30*gib), 7 << 20},
		{"60 GiB with larger parts configured", 8 << 20, sources(30*gib, 30*gib), 8 << 20},
		{"1 TiB", DefaultPartSize, sources(1024 * gib), 105 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &run{cfg: Config{PartSize: tc.configured}, log: slog.New(slog.DiscardHandler)}
			got := r.partSize(context.Background(), tc.sources)
			if got != tc.want {
				t.Errorf("part size = %d, want %d", got, tc.want)
			}
			var total int64
			for _, s := range tc.sources {
				total += s.info.Size
			}
			if bound := maxArchiveSize(total, len(tc.sources)); got*maxParts < uint64(bound) {
				t.Errorf("%d parts of %d bytes do not hold an archive of up to %d bytes", maxParts, got, bound)
			}
		})
	}
}
