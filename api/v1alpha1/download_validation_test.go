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
package v1alpha1_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	. "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/testenv"
)

const namespace = "default"

func newDownload(fileIDs ...int64) *Download {
	return &Download{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "dl-", Namespace: namespace},
		Spec:       DownloadSpec{FileIDs: fileIDs},
	}
}

// fileIDRange returns n consecutive ids starting at MinFileID.
func fileIDRange(n int) []int64 {
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = MinFileID + int64(i)
	}
	return ids
}

func create(download *Download) error {
	err := env.Client.Create(ctx, download)
	if err == nil {
		DeferCleanup(env.Client.Delete, ctx, download)
	}
	return err
}

// expectRejected asserts that the apiserver refused the object as Invalid, with every fragment
// of the message a person would need to fix it.
func expectRejected(err error, fragments ...string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the apiserver accepted an invalid Download")
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got %v", err)
	GinkgoWriter.Printf("rejected as expected: %v\n", err)
	for _, fragment := range fragments {
		Expect(err.Error()).To(ContainSubstring(fragment))
	}
}

var _ = Describe("Download schema", func() {
	Context("valid Downloads", func() {
		It("accepts one file id and fills in every default", func() {
			download := newDownload(70000)
			Expect(create(download)).To(Succeed())

			var stored Download
			Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(download), &stored)).To(Succeed())
			Expect(stored.Spec.FileIDs).To(Equal([]int64{70000}))
			Expect(stored.Spec.TTLSecondsAfterFinished).To(HaveValue(BeEquivalentTo(DefaultTTLSecondsAfterFinished)))
			Expect(stored.Spec.URLExpirySeconds).To(HaveValue(BeEquivalentTo(DefaultURLExpirySeconds)))
			Expect(stored.Spec.ActiveDeadlineSeconds).To(HaveValue(BeEquivalentTo(DefaultActiveDeadlineSeconds)))
			Expect(stored.Spec.BackoffLimit).To(HaveValue(BeEquivalentTo(DefaultBackoffLimit)))
			Expect(stored.Spec.MaxBytesPerSecond).To(HaveValue(BeZero()))
		})

		It("accepts the bounds themselves: 1000 ids, the smallest and largest id, explicit limits", func() {
			ids := fileIDRange(MaxFileIDs - 1)
			ids = append(ids, MaxFileID)
			download := newDownload(ids...)
			download.Spec.TTLSecondsAfterFinished = ptr.To[int32](MaxURLExpirySeconds)
			download.Spec.URLExpirySeconds = ptr.To[int32](MaxURLExpirySeconds)
			download.Spec.ActiveDeadlineSeconds = ptr.To[int64](1)
			download.Spec.BackoffLimit = ptr.To[int32](0)
			download.Spec.MaxBytesPerSecond = ptr.To[int64](1 << 20)
			Expect(create(download)).To(Succeed())
			Expect(download.Spec.FileIDs).To(HaveLen(MaxFileIDs))
			Expect(download.Spec.FileIDs[0]).To(Equal(MinFileID))
		})

		It("accepts the sample in config/samples", func() {
			raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "download_v1alpha1_download.yaml"))
			Expect(err).NotTo(HaveOccurred())
			var sample Download
			Expect(yaml.UnmarshalStrict(raw, &sample)).To(Succeed())
			sample.Namespace = namespace
			Expect(create(&sample)).To(Succeed())
			Expect(sample.Spec.FileIDs).To(Equal([]int64{70000, 70007, 14000}))
		})

		It("allows metadata changes after creation", func() {
			download := newDownload(70000)
			Expect(create(download)).To(Succeed())
			download.Labels = map[string]string{"team": "reports"}
			Expect(env.Client.Update(ctx, download)).To(Succeed())
		})
	})

	Context("invalid Downloads are rejected by the apiserver with a readable message", func() {
		It("rejects an empty fileIds list", func() {
			download := newDownload()
			download.Spec.FileIDs = []int64{}
			expectRejected(create(download), "spec.fileIds", "should have at least 1 items")
		})

		It("rejects a missing fileIds list", func() {
			download := newDownload()
			download.Spec.FileIDs = nil
			expectRejected(create(download), "spec.fileIds", "Required value")
		})

		It("rejects 1001 file ids", func() {
			expectRejected(create(newDownload(fileIDRange(MaxFileIDs+1)...)),
				"spec.fileIds", "must have at most 1000 items")
		})

		It("rejects id 9999, below the smallest file id", func() {
			expectRejected(create(newDownload(70000, 9999)),
				"spec.fileIds[1]", "should be greater than or equal to 10000")
		})

		It("rejects id 100000001, above the largest file id", func() {
			expectRejected(create(newDownload(100000001)),
				"spec.fileIds[0]", "should be less than or equal to 100000000")
		})

		It("rejects duplicate file ids, naming the duplicate", func() {
			expectRejected(create(newDownload(70000, 70001, 70000)),
				"spec.fileIds[2]", "Duplicate value: 70000")
		})

		It("rejects a negative ttlSecondsAfterFinished", func() {
			download := newDownload(70000)
			download.Spec.TTLSecondsAfterFinished = ptr.To[int32](-1)
			expectRejected(create(download), "spec.ttlSecondsAfterFinished", "should be greater than or equal to 0")
		})

		It("rejects urlExpirySeconds outside 60..604800", func() {
			tooShort := newDownload(70000)
			tooShort.Spec.URLExpirySeconds = ptr.To[int32](59)
			expectRejected(create(tooShort), "spec.urlExpirySeconds", "should be greater than or equal to 60")

			tooLong := newDownload(70000)
			tooLong.Spec.URLExpirySeconds = ptr.To[int32](604801)
			tooLong.Spec.TTLSecondsAfterFinished = ptr.To[int32](700000)
			expectRejected(create(tooLong), "spec.urlExpirySeconds", "should be less than or equal to 604800")
		})

		It("rejects a URL that would outlive its archive", func() {
			download := newDownload(70000)
			download.Spec.URLExpirySeconds = ptr.To[int32](7200)
			expectRejected(create(download), "urlExpirySeconds must not exceed ttlSecondsAfterFinished")
		})

		It("rejects a zero activeDeadlineSeconds and negative backoff or bandwidth", func() {
			noDeadline := newDownload(70000)
			noDeadline.Spec.ActiveDeadlineSeconds = ptr.To[int64](0)
			expectRejected(create(noDeadline), "spec.activeDeadlineSeconds", "should be greater than or equal to 1")

			negativeBackoff := newDownload(70000)
			negativeBackoff.Spec.BackoffLimit = ptr.To[int32](-1)
			expectRejected(create(negativeBackoff), "spec.backoffLimit", "should be greater than or equal to 0")

			negativeBandwidth := newDownload(70000)
			negativeBandwidth.Spec.MaxBytesPerSecond = ptr.To[int64](-1)
			expectRejected(create(negativeBandwidth), "spec.maxBytesPerSecond", "should be greater than or equal to 0")
		})

		It("rejects any spec change after creation", func() {
			download := newDownload(70000)
			Expect(create(download)).To(Succeed())

			download.Spec.FileIDs = []int64{70000, 70001}
			expectRejected(env.Client.Update(ctx, download), "spec is immutable after creation")

			var stored Download
			Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(download), &stored)).To(Succeed())
			stored.Spec.MaxBytesPerSecond = ptr.To[int64](1024)
			expectRejected(env.Client.Update(ctx, &stored), "spec is immutable after creation")
		})
	})

	Context("status", func() {
		It("is written only through the status subresource", func() {
			download := newDownload(70000)
			Expect(create(download)).To(Succeed())

			download.Status.Phase = PhaseProcessing
			Expect(env.Client.Update(ctx, download)).To(Succeed())
			var stored Download
			Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(download), &stored)).To(Succeed())
			Expect(stored.Status.Phase).To(BeEmpty(), "a main-resource update must not change status")

			stored.Status.Phase = PhaseProcessing
			Expect(env.Client.Status().Update(ctx, &stored)).To(Succeed())
			Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(download), &stored)).To(Succeed())
			Expect(stored.Status.Phase).To(Equal(PhaseProcessing))
		})

		It("rejects an unknown phase and a progress above 100", func() {
			download := newDownload(70000)
			Expect(create(download)).To(Succeed())

			download.Status.Phase = "Done"
			expectRejected(env.Client.Status().Update(ctx, download), "status.phase", "Unsupported value")

			download.Status.Phase = PhaseProcessing
			download.Status.Progress = 101
			expectRejected(env.Client.Status().Update(ctx, download), "status.progress", "less than or equal to 100")
		})
	})
})

var _ = Describe("kubectl", func() {
	// completed stores a Download whose status looks like a finished one, as the controller
	// will write it.
	completed := func() *Download {
		GinkgoHelper()
		download := newDownload(70000, 70001, 70002)
		Expect(create(download)).To(Succeed())
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		expires := metav1.NewTime(now.Add(15 * time.Minute))
		download.Status = DownloadStatus{
			ObservedGeneration: download.Generation,
			Phase:              PhaseCompleted,
			FileCount:          3,
			Progress:           100,
			CompletionTime:     &now,
			DownloadURL:        "http://127.0.0.1:9000/downloads/example.zip",
			URLExpiresAt:       &expires,
			ReusedFrom:         "an-identical-download",
		}
		meta.SetStatusCondition(&download.Status.Conditions, metav1.Condition{
			Type: ConditionComplete, Status: metav1.ConditionTrue, Reason: ReasonArchiveReused,
			Message: "archive stored", ObservedGeneration: download.Generation,
		})
		Expect(env.Client.Status().Update(ctx, download)).To(Succeed())
		return download
	}

	It("`kubectl get dl` shows Phase, Progress, Files and Age, and -o wide adds the URL expiry and what it reused", func() {
		download := completed()

		out, err := env.Kubectl("get", "dl", download.Name, "-n", namespace)
		Expect(err).NotTo(HaveOccurred())
		lines := strings.Split(strings.TrimSpace(out), "\n")
		Expect(lines).To(HaveLen(2), out)
		Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "PHASE", "PROGRESS", "FILES", "AGE"}))
		row := strings.Fields(lines[1])
		Expect(row[:4]).To(Equal([]string{download.Name, "Completed", "100", "3"}))

		out, err = env.Kubectl("get", "downloads.download.operator.dev", download.Name, "-n", namespace, "-o", "wide")
		Expect(err).NotTo(HaveOccurred())
		lines = strings.Split(strings.TrimSpace(out), "\n")
		Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "PHASE", "PROGRESS", "FILES", "AGE", "URL-EXPIRES", "REUSED-FROM"}))
		Expect(strings.Fields(lines[1])[5]).To(Equal(download.Status.URLExpiresAt.UTC().Format(time.RFC3339)))
		Expect(strings.Fields(lines[1])[6]).To(Equal("an-identical-download"))
	})

	It("`kubectl wait --for=condition=Complete` returns once the Download is complete", func() {
		download := completed()
		out, err := env.Kubectl("wait", "--for=condition=Complete", "--timeout=20s", "-n", namespace, "dl/"+download.Name)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("condition met"))
	})
})

var _ = Describe("generated CRD", func() {
	It("enforces the same bounds as the Go constants the facade validates with", func() {
		raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "download.operator.dev_downloads.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var crd apiextensionsv1.CustomResourceDefinition
		Expect(yaml.Unmarshal(raw, &crd)).To(Succeed())
		Expect(crd.Spec.Names.ShortNames).To(ContainElement("dl"))
		Expect(crd.Spec.Versions).To(HaveLen(1))

		spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties
		fileIDs := spec["fileIds"]
		Expect(fileIDs.MinItems).To(HaveValue(BeEquivalentTo(MinFileIDs)))
		Expect(fileIDs.MaxItems).To(HaveValue(BeEquivalentTo(MaxFileIDs)))
		Expect(fileIDs.Items.Schema.Minimum).To(HaveValue(BeEquivalentTo(MinFileID)))
		Expect(fileIDs.Items.Schema.Maximum).To(HaveValue(BeEquivalentTo(MaxFileID)))
		Expect(spec["urlExpirySeconds"].Minimum).To(HaveValue(BeEquivalentTo(MinURLExpirySeconds)))
		Expect(spec["urlExpirySeconds"].Maximum).To(HaveValue(BeEquivalentTo(MaxURLExpirySeconds)))

		defaults := map[string]int64{
			"ttlSecondsAfterFinished": DefaultTTLSecondsAfterFinished,
			"urlExpirySeconds":        DefaultURLExpirySeconds,
			"activeDeadlineSeconds":   DefaultActiveDeadlineSeconds,
			"backoffLimit":            DefaultBackoffLimit,
			"maxBytesPerSecond":       0,
		}
		for field, want := range defaults {
			Expect(spec[field].Default).NotTo(BeNil(), field)
			Expect(string(spec[field].Default.Raw)).To(Equal(strconv.FormatInt(want, 10)), field)
		}
	})
})
