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

package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/download-operator/download-operator/test/cluster"
)

// Ids of the ZIP64 spec's own sources, which it uploads and removes: no other spec uses them.
const (
	fileBeyond4GiB int64 = 90_000_001
	fileAfter4GiB  int64 = 90_000_002
	// beyond4GiB passes 4 GiB by 200 MiB, so the entry's sizes need ZIP64 fields, and the entry
	// after it starts past 4 GiB, so its offset does too.
	beyond4GiB = 4<<30 + 200<<20
	// zip64PeakRSS is what the worker may reach on this archive: P4's goal for 10 MiB and 1 GiB
	// bundles, plus the 8 MiB by which the shipped binary's resident pages (its own code, counted
	// in RSS) measured over it at 1 GiB. Memory that grew with the archive would pass it at once.
	zip64PeakRSS = 72 << 20
)

var _ = Describe("Archives beyond 4 GiB", Label("zip64"), Serial, func() {
	It("streams a ZIP64 archive at full speed that zipfile, unzip -t and its manifest accept", func(ctx SpecContext) {
		By(fmt.Sprintf("uploading a source of %d bytes of incompressible data, and a small one after it", beyond4GiB))
		putGeneratedSource(ctx, fileBeyond4GiB, beyond4GiB, incompressible(beyond4GiB))
		putGeneratedSource(ctx, fileAfter4GiB, 1<<20, io.LimitReader(strings.NewReader(strings.Repeat("id,name,value\n", 1<<17)), 1<<20))

		ids := []int64{fileBeyond4GiB, fileAfter4GiB}
		dl := cluster.NewDownload("zip64", ids, 0) // no bandwidth cap
		cluster.CreateDownload(ctx, dl)
		started := time.Now()
		done := cluster.WaitForComplete(ctx, dl.Name, 10*time.Minute)
		GinkgoWriter.Printf("archive of %d bytes prepared in %s\n", done.Status.Archive.Size, time.Since(started).Round(time.Second))
		Expect(done.Status.Archive.Size).To(BeNumerically(">", int64(beyond4GiB)))

		By("checking the worker's peak memory, which its log reports")
		Expect(workerPeakRSS(ctx, dl.Name)).To(BeNumerically("<=", zip64PeakRSS))

		By("downloading the archive from the host")
		f, err := os.CreateTemp("", "e2e-zip64-*.zip")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = f.Close(); _ = os.Remove(f.Name()) })
		whole, err := cluster.Fetch(ctx, done.Status.DownloadURL, f)
		Expect(err).NotTo(HaveOccurred())
		Expect(whole).To(Equal(cluster.Digest{Size: done.Status.Archive.Size, SHA256: done.Status.Archive.SHA256}))

		By("opening it with Python's zipfile, which checks every entry's CRC")
		python := exec.CommandContext(ctx, "python3", "-c", pythonZipCheck, f.Name())
		out, err := python.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "python zipfile: %s", out)
		var listed []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
		}
		Expect(json.Unmarshal(bytes.TrimSpace(out), &listed)).To(Succeed(), "python printed %s", out)
		Expect(listed).To(HaveLen(3))
		Expect(listed[0].Size).To(BeEquivalentTo(beyond4GiB))

		By("testing it with unzip -t")
		out, err = exec.CommandContext(ctx, "unzip", "-t", f.Name()).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "unzip -t: %s", out)
		Expect(string(out)).To(ContainSubstring("No errors detected"))

		By("checking every entry against the sources and the manifest")
		zr, err := zip.NewReader(f, whole.Size)
		Expect(err).NotTo(HaveOccurred())
		Expect(cluster.VerifyEntries(ctx, zr, ids, nil)).To(Succeed())
	}, SpecTimeout(20*time.Minute))
})

// pythonZipCheck opens the archive named by argv[1] with zipfile, reads every entry (testzip
// checks each CRC-32) and prints the entries' names and sizes as JSON.
const pythonZipCheck = `
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    if bad is not None:
        sys.exit("bad CRC in " + bad)
    print(json.dumps([{"name": i.filename, "size": i.file_size} for i in z.infolist()]))
`

// putGeneratedSource uploads size bytes from content as source id, and removes it when the spec
// ends: several GiB must not stay in the demo's MinIO.
func putGeneratedSource(ctx context.Context, id, size int64, content io.Reader) {
	GinkgoHelper()
	key := cluster.SourceKey(id)
	_, err := cluster.S3.PutObject(ctx, cluster.Env.SourceBucket, key, content, size, minio.PutObjectOptions{})
	Expect(err).NotTo(HaveOccurred(), "uploading source %d", id)
	DeferCleanup(func(ctx SpecContext) {
		Expect(cluster.S3.RemoveObject(ctx, cluster.Env.SourceBucket, key, minio.RemoveObjectOptions{})).To(Succeed())
	})
}

// incompressible is size bytes of a seeded ChaCha8 stream: fast to make, and what Deflate cannot
// shrink, so the worker stores the entry and the archive really passes 4 GiB.
func incompressible(size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{'z', 'i', 'p', '6', '4'}), size)
}

// workerPeakRSS reads the peak resident memory that the Download's worker logged when it
// stored the archive.
func workerPeakRSS(ctx context.Context, name string) int64 {
	GinkgoHelper()
	pods, err := cluster.WorkerPods(ctx, name)
	Expect(err).NotTo(HaveOccurred())
	Expect(pods).NotTo(BeEmpty(), "the worker Pod of %s is gone", name)
	logs, err := cluster.Kubectl(ctx, "", "logs", pods[len(pods)-1].Name)
	Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(logs, "\n") {
		var record struct {
			Msg     string `json:"msg"`
			PeakRSS int64  `json:"peakRSSBytes"`
		}
		if json.Unmarshal([]byte(line), &record) == nil && record.Msg == "archive stored" && record.PeakRSS > 0 {
			GinkgoWriter.Printf("worker peak RSS %.1f MiB\n", float64(record.PeakRSS)/(1<<20))
			return record.PeakRSS
		}
	}
	Fail("the worker logged no peak RSS with \"archive stored\":\n" + logs)
	return 0
}
