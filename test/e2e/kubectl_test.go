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
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/cluster"
)

var _ = Describe("kubectl", func() {
	It("prepares the sample Download: kubectl wait, kubectl get dl and a verified archive", func(ctx SpecContext) {
		path := filepath.Join(cluster.RepoRoot, cluster.SamplePath)
		sample, err := readSample(path)
		Expect(err).NotTo(HaveOccurred())
		ids := sample.Spec.FileIDs
		for _, id := range ids {
			_, err := cluster.S3.StatObject(ctx, cluster.Env.SourceBucket, cluster.SourceKey(id), minio.StatObjectOptions{})
			Expect(err).NotTo(HaveOccurred(), "the sample asks for file %d, which hack/demo/up does not seed", id)
		}

		By("removing a sample Download an earlier run may have left")
		// The spec is immutable and a finished Download never runs again, so an old one would
		// make `kubectl apply` a no-op (or an error) instead of a new archive.
		_, err = cluster.Kubectl(ctx, "", "delete", "-f", path, "--ignore-not-found", "--wait", "--timeout=2m")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			_, err := cluster.Kubectl(ctx, "", "delete", "-f", path, "--ignore-not-found", "--wait", "--timeout=2m")
			Expect(err).NotTo(HaveOccurred())
		}, NodeTimeout(3*time.Minute))

		By("kubectl apply -f " + cluster.SamplePath)
		_, err = cluster.Kubectl(ctx, "", "apply", "-f", path)
		Expect(err).NotTo(HaveOccurred())

		By("kubectl wait --for=condition=Ready, the kstatus condition Helm, Flux and Argo CD read")
		_, err = cluster.Kubectl(ctx, "", "wait", "--for=condition=Ready", "download/"+sample.Name, "--timeout=3m")
		Expect(err).NotTo(HaveOccurred())
		By("kubectl wait --for=condition=Complete, and kstatus's abnormal-true conditions false")
		// Ready is set in the same status write as Complete, so these hold at once.
		for _, condition := range []string{"Complete", "Reconciling=false", "Stalled=false"} {
			_, err = cluster.Kubectl(ctx, "", "wait", "--for=condition="+condition, "download/"+sample.Name, "--timeout=10s")
			Expect(err).NotTo(HaveOccurred(), "condition %s", condition)
		}

		By("kubectl get dl")
		out, err := cluster.Kubectl(ctx, "", "get", "dl")
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Print(out)
		row, err := tableRow(out, sample.Name)
		Expect(err).NotTo(HaveOccurred())
		Expect(row).To(HaveKeyWithValue("PHASE", "Completed"))
		// The CRD's Progress column is an integer, so kubectl prints 100; a "%" is accepted in
		// case the column turns into a formatted string.
		Expect(row).To(HaveKeyWithValue("PROGRESS", MatchRegexp(`^100%?$`)))
		Expect(row).To(HaveKeyWithValue("FILES", strconv.Itoa(len(ids))))

		By("downloading status.downloadURL from the host and checking every entry")
		url, err := cluster.Kubectl(ctx, "", "get", "dl", sample.Name, "-o", "jsonpath={.status.downloadURL}")
		Expect(err).NotTo(HaveOccurred())
		got, err := cluster.VerifyArchive(ctx, strings.TrimSpace(url), ids)
		Expect(err).NotTo(HaveOccurred())
		dl, err := cluster.GetDownload(ctx, sample.Name)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(cluster.Digest{Size: dl.Status.Archive.Size, SHA256: dl.Status.Archive.SHA256}),
			"the archive served differs from status.archive")

		By("checking the worker ran once and succeeded")
		pods, err := cluster.WorkerPods(ctx, sample.Name)
		Expect(err).NotTo(HaveOccurred())
		Expect(pods).To(HaveLen(1))
		Expect(pods[0].Status.Phase).To(Equal(corev1.PodSucceeded))
	}, SpecTimeout(8*time.Minute))
})

// readSample parses the sample manifest, so that the spec follows whatever ids it names.
func readSample(path string) (*downloadv1alpha1.Download, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading sample: %w", err)
	}
	var dl downloadv1alpha1.Download
	if err := yaml.UnmarshalStrict(raw, &dl); err != nil {
		return nil, fmt.Errorf("parsing sample %s: %w", path, err)
	}
	if dl.Name == "" || len(dl.Spec.FileIDs) == 0 {
		return nil, fmt.Errorf("sample %s has no name or no fileIds", path)
	}
	return &dl, nil
}

var columnSeparator = regexp.MustCompile(`\s{2,}|\t`)

// tableRow finds name's row in kubectl's table output and maps each header to its cell. Cells
// are split on runs of blanks because kubectl pads columns with at least two spaces.
func tableRow(table, name string) (map[string]string, error) {
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	if len(lines) < 2 {
		return nil, fmt.Errorf("no rows in kubectl output:\n%s", table)
	}
	headers := columnSeparator.Split(strings.TrimSpace(lines[0]), -1)
	for _, line := range lines[1:] {
		cells := columnSeparator.Split(strings.TrimSpace(line), -1)
		if len(cells) == 0 || cells[0] != name {
			continue
		}
		if len(cells) != len(headers) {
			return nil, fmt.Errorf("row %q has %d cells for headers %v", line, len(cells), headers)
		}
		row := make(map[string]string, len(headers))
		for i, h := range headers {
			row[h] = cells[i]
		}
		return row, nil
	}
	return nil, fmt.Errorf("no row for %s in kubectl output:\n%s", name, table)
}
