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

package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/download-operator/download-operator/internal/worker"
)

// The benchmarks share one bucket of sources, uploaded once per process: the 1 GiB one is not
// cheap to make.
var (
	benchMu      sync.Mutex
	benchBucket  string
	benchSources = map[string]bool{}
)

// benchSource uploads a source object of size bytes, random or CSV, unless it already exists,
// and returns its bucket. Its id is the key's {id}.
func benchSource(b *testing.B, client *minio.Client, id int64, size int64, csv bool) string {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if benchBucket == "" {
		benchBucket = newBucket(b, client)
	}
	if key := sourceKey(id); !benchSources[key] {
		_, err := client.PutObject(context.Background(), benchBucket, key, benchContent(uint64(id), size, csv), size,
			minio.PutObjectOptions{PartSize: 16 << 20})
		if err != nil {
			b.Fatalf("uploading %d byte source: %v", size, err)
		}
		benchSources[key] = true
	}
	return benchBucket
}

// benchContent generates size bytes fast and reproducibly: ChaCha8 output, which nothing
// compresses, or CSV rows, which deflate shrinks about fourfold.
func benchContent(seed uint64, size int64, csv bool) io.Reader {
	if csv {
		return io.LimitReader(&repeatReader{block: csvBytes(seed, 1<<20)}, size)
	}
	return io.LimitReader(rand.NewChaCha8(seedOf(seed)), size)
}

// repeatReader cycles through block forever.
type repeatReader struct {
	block []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	return n, nil
}

func benchConfig(srcBucket string, ids ...int64) worker.Config {
	return worker.Config{
		FileIDs:           ids,
		SourceBucket:      srcBucket,
		SourceKeyTemplate: sourceKeyTemplate,
		ArchiveBucket:     srcBucket,
		ArchiveKey:        fmt.Sprintf("archives/bench-%d.zip", ids[0]),
		PartSize:          worker.DefaultPartSize,
		ProgressInterval:  worker.DefaultProgressInterval,
	}
}

func mbPerSecond(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

// BenchmarkBundleThroughput compares bundling 64 MiB with a plain minio-go PutObject of the same
// bytes (streamed, same part size) against the same server in the same run. Bundling also reads
// the sources from that server, so the ratio bounds the worker's overhead from above.
func BenchmarkBundleThroughput(b *testing.B) {
	const size = 64 << 20
	client := storageClient(b, minioServer(b))
	for _, tc := range []struct {
		name string
		id   int64
		csv  bool
	}{{"incompressible", 1_000_001, false}, {"csv", 1_000_002, true}} {
		b.Run(tc.name, func(b *testing.B) {
			bucket := benchSource(b, client, tc.id, size, tc.csv)
			cfg := benchConfig(bucket, tc.id)
			var bundleTime, rawTime time.Duration
			var archiveSize int64
			for b.Loop() {
				start := time.Now()
				result, err := worker.Run(context.Background(), cfg, worker.Deps{Source: client, Reporter: discardReporter{}})
				if err != nil {
					b.Fatalf("bundling: %v", err)
				}
				bundleTime += time.Since(start)
				archiveSize = result.Size

				start = time.Now()
				_, err = client.PutObject(context.Background(), bucket, "raw", benchContent(uint64(tc.id), size, tc.csv), -1,
					minio.PutObjectOptions{PartSize: worker.DefaultPartSize})
				if err != nil {
					b.Fatalf("raw upload: %v", err)
				}
				rawTime += time.Since(start)
			}
			bundle, raw := mbPerSecond(int64(b.N)*size, bundleTime), mbPerSecond(int64(b.N)*size, rawTime)
			b.ReportMetric(bundle, "bundle-MB/s")
			b.ReportMetric(raw, "raw-put-MB/s")
			b.ReportMetric(bundle/raw, "bundle/raw")
			b.ReportMetric(float64(archiveSize)/size, "archive/source")
		})
	}
}

// BenchmarkPeakRSS bundles half random, half CSV data in a child process that runs nothing but
// the worker (testdata/bundler) and reports its peak RSS, which must stay under 64 MiB and not
// grow with the bundle. idle-RSS-MiB is the same binary doing nothing: the Go runtime and the
// initialisation of client-go, minio-go and the API types, which no bundle size changes.
func BenchmarkPeakRSS(b *testing.B) {
	const limitMiB = 64
	server := minioServer(b)
	client := storageClient(b, server)
	bundler := filepath.Join(b.TempDir(), "bundler")
	if out, err := exec.Command("go", "build", "-o", bundler, "./testdata/bundler").CombinedOutput(); err != nil {
		b.Fatalf("building bundler: %v\n%s", err, out)
	}
	idle := peakRSS(b, exec.Command(bundler))
	var smallRSS float64
	for _, tc := range []struct {
		name string
		size int64
		ids  []int64
	}{
		{"10MiB", 10 << 20, []int64{2_000_001, 2_000_002}},
		{"1GiB", 1 << 30, []int64{3_000_001, 3_000_002}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bucket := benchSource(b, client, tc.ids[0], tc.size/2, false)
			benchSource(b, client, tc.ids[1], tc.size/2, true)
			cfg, err := json.Marshal(benchConfig(bucket, tc.ids...))
			if err != nil {
				b.Fatal(err)
			}
			var peak float64
			var took time.Duration
			for b.Loop() {
				cmd := exec.Command(bundler)
				cmd.Env = append(os.Environ(), "BUNDLER_CONFIG="+string(cfg), "BUNDLER_ENDPOINT="+server.Endpoint,
					worker.EnvAccessKey+"="+server.AccessKey, worker.EnvSecretKey+"="+server.SecretKey)
				start := time.Now()
				peak = max(peak, peakRSS(b, cmd))
				took += time.Since(start)
			}
			b.ReportMetric(peak, "peak-RSS-MiB")
			b.ReportMetric(idle, "idle-RSS-MiB")
			b.ReportMetric(mbPerSecond(int64(b.N)*tc.size, took), "MB/s")
			if smallRSS > 0 {
				b.ReportMetric(peak/smallRSS, "RSS-vs-10MiB")
			} else {
				smallRSS = peak
			}
			if peak > limitMiB {
				b.Errorf("peak RSS %.1f MiB exceeds %d MiB", peak, limitMiB)
			}
		})
	}
}

// peakRSS runs a bundler and returns the peak RSS it printed, in MiB.
func peakRSS(b *testing.B, cmd *exec.Cmd) float64 {
	b.Helper()
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("bundler: %v", err)
	}
	// The last line reads "VmHWM:   12345 kB".
	fields := strings.Fields(string(out))
	if len(fields) < 3 || fields[len(fields)-3] != "VmHWM:" {
		b.Fatalf("bundler printed no peak RSS: %q", out)
	}
	kib, err := strconv.ParseFloat(fields[len(fields)-2], 64)
	if err != nil {
		b.Fatalf("parsing peak RSS %q: %v", out, err)
	}
	return kib / 1024
}
