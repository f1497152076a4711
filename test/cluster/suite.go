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

// Package cluster is what the suites on the demo stack share: test/e2e, which tests
// download-operator as a user meets it, and test/drills, which break the stack on purpose
// (docs/reliability.md). Both are Ginkgo suites behind the build tag e2e. Each calls SetUp from
// its BeforeSuite and RegisterChecks once at its top level, then reaches the stack through Env,
// K8s, S3 and API and the helpers here.
//
// SetUp runs hack/demo/up (idempotent) and never tears the stack down: whoever started the
// suite runs hack/demo/down. Each spec removes the Downloads it creates.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	dlclient "github.com/download-operator/download-operator/pkg/client"
	"github.com/download-operator/download-operator/test/demoenv"
	"github.com/download-operator/download-operator/test/testenv"
)

// SetUp fills these; the specs only read them.
var (
	// RepoRoot is the repository's root, where scripts, charts and samples are found.
	RepoRoot string
	Env      demoenv.Env
	// K8s is a cluster-admin client (the demo kubeconfig) that knows the Download kind.
	K8s client.Client
	// S3 reaches MinIO from the host, as the test's independent view of both buckets.
	S3 *minio.Client
	// API is the facade's Go client, the way API users integrate.
	API *dlclient.Client
)

// Slow 2-core machines start Pods in seconds, not milliseconds: waits are generous, and polls
// frequent enough to catch short-lived states such as a worker mid-upload.
const (
	DefaultWait = 3 * time.Minute
	DefaultPoll = 500 * time.Millisecond
)

// SetUpTimeout bounds SetUp: hack/demo/up builds and starts the whole stack when none runs.
const SetUpTimeout = 25 * time.Minute

// SetUp is the common part of each suite's BeforeSuite: it brings the demo stack up, loads its
// environment (.demo/env, or the file DEMO_ENV names), builds the clients, waits for the facade,
// checks the seeded sources and removes the Downloads an aborted earlier run left behind.
func SetUp(ctx context.Context) {
	GinkgoHelper()
	SetDefaultEventuallyTimeout(DefaultWait)
	SetDefaultEventuallyPollingInterval(DefaultPoll)
	SetDefaultConsistentlyDuration(5 * time.Second)
	SetDefaultConsistentlyPollingInterval(DefaultPoll)

	RepoRoot = testenv.RepoRoot()

	By("bringing the demo stack up with hack/demo/up (idempotent)")
	Expect(runDemoUp(ctx)).To(Succeed())

	envPath := demoenv.Path()
	By("loading " + envPath)
	var err error
	Env, err = demoenv.Load(envPath)
	Expect(err).NotTo(HaveOccurred())

	cfg, err := NewRESTConfig()
	Expect(err).NotTo(HaveOccurred())
	K8s, err = NewClient(cfg)
	Expect(err).NotTo(HaveOccurred())
	S3, err = NewMinioClient(credentials.NewStaticV4(Env.MinioAccessKey, Env.MinioSecretKey, ""))
	Expect(err).NotTo(HaveOccurred())
	API, err = dlclient.New(Env.FacadeURL, dlclient.WithUserAgent("download-operator-e2e"))
	Expect(err).NotTo(HaveOccurred())

	By("waiting for the facade to be ready")
	// /readyz is on the probe port, which the demo does not publish; /health is on the API's.
	Eventually(ctx, func() error { return GetOK(ctx, Env.FacadeURL+"/health") }).Should(Succeed())

	By("checking the seeded source files")
	Expect(checkSeed(ctx)).To(Succeed())

	By("removing Downloads left by an earlier, aborted run")
	Expect(deleteLeftoverDownloads(ctx)).To(Succeed())
}

// RegisterChecks registers the nodes that run around every spec of a suite on the demo stack:
// the restricted-admission check of the spec's Pods, the diagnostics dump of a failed spec, and
// the check of every Pod left at the end. Each suite calls it once, at its top level.
func RegisterChecks() bool {
	// Every Pod a suite caused (worker Pods included) must have been admitted by the
	// restricted profile and started. Each spec's own Pods are checked here, after the spec and
	// before its cleanup deletes them; AfterSuite checks whatever is left at the end.
	AfterEach(func(ctx SpecContext) {
		if K8s == nil {
			return
		}
		Expect(NamespacePodProblems(ctx, false)).To(BeEmpty(),
			"Pods in namespace %s that are not proof of restricted admission", Env.Namespace)
	}, NodeTimeout(time.Minute))

	// Registered after the Pod check so that a failing check also gets the dump; cleanup runs
	// only after this, so the dump shows the spec's objects as they were when it failed.
	AfterEach(func() {
		if CurrentSpecReport().Failed() && K8s != nil {
			dumpDiagnostics()
		}
	})

	AfterSuite(func(ctx SpecContext) {
		if K8s == nil {
			return
		}
		By("checking every Pod left in the namespace at the end of the run")
		Expect(NamespacePodProblems(ctx, true)).To(BeEmpty())
	}, NodeTimeout(2*time.Minute))
	return true
}

// runDemoUp runs hack/demo/up (idempotent), which brings the whole stack up.
func runDemoUp(ctx context.Context) error { return RunRepoScript(ctx, "hack/demo/up") }

// RunRepoScript runs a script of the repository (path relative to its root) from the root,
// streaming its output so that a slow or failing step can be followed live with -ginkgo.v.
func RunRepoScript(ctx context.Context, path string, args ...string) error {
	GinkgoWriter.Printf("$ %s %s\n", path, strings.Join(args, " "))
	return demoenv.RunScript(ctx, GinkgoWriter, path, args...)
}

// checkSeed confirms the source files the specs rely on, and the absence of the missing one.
func checkSeed(ctx context.Context) error {
	var errs []error
	for id, size := range SeededSizes {
		info, err := S3.StatObject(ctx, Env.SourceBucket, SourceKey(id), minio.StatObjectOptions{})
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("source %d: %w", id, err))
		case info.Size != size:
			errs = append(errs, fmt.Errorf("source %d is %d bytes, want %d", id, info.Size, size))
		}
	}
	_, err := S3.StatObject(ctx, Env.SourceBucket, SourceKey(FileMissing), minio.StatObjectOptions{})
	if !IsNoSuchKey(err) {
		errs = append(errs, fmt.Errorf("source %d must not exist, stat said: %v", FileMissing, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bucket %s is not seeded as hack/demo/up promises: %w", Env.SourceBucket, err)
	}
	return nil
}

// deleteLeftoverDownloads removes every Download labelled suiteLabel: before the first spec,
// each is what an earlier run left when it ended before its cleanups.
func deleteLeftoverDownloads(ctx context.Context) error {
	var list downloadv1alpha1.DownloadList
	if err := K8s.List(ctx, &list, client.InNamespace(Env.Namespace), client.HasLabels{suiteLabel}); err != nil {
		return fmt.Errorf("listing leftover Downloads: %w", err)
	}
	for _, dl := range list.Items {
		if err := DeleteDownloadAndWait(ctx, dl.Name); err != nil {
			return err
		}
	}
	return nil
}
