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

// Package e2e tests download-operator as a user meets it: installed by hack/demo/up with its
// Helm chart on a real cluster, with MinIO on the host, driven through kubectl, the facade's
// HTTP API (pkg/client) and object storage. Run it with
//
//	go test -tags e2e ./test/e2e/ -v -ginkgo.v -timeout 30m
//
// BeforeSuite runs hack/demo/up (idempotent) and never tears the stack down: whoever started the
// suite runs hack/demo/down. Each spec removes the Downloads it creates.
package e2e

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	dlclient "github.com/download-operator/download-operator/pkg/client"
	"github.com/download-operator/download-operator/test/testenv"
)

// demoEnv is what hack/demo/up wrote to .demo/env.
type demoEnv struct {
	FacadeURL      string
	Kubeconfig     string
	MinioURL       string
	MinioAccessKey string
	MinioSecretKey string
	// OperatorAccessKey and OperatorSecretKey are the operator's own MinIO user, which only
	// the controller holds.
	OperatorAccessKey string
	OperatorSecretKey string
	SourceBucket      string
	ArchiveBucket     string
	Namespace         string
	HelmRelease       string
	Kubectl           string
	// ContainerdSock is the local cluster's containerd socket; empty on kind.
	ContainerdSock string
	// KindCluster names the kind cluster; empty on the local cluster.
	KindCluster string
	// NodeIP is the host's address as Pods reach it; Helm is the helm binary that installed the chart.
	NodeIP string
	Helm   string
	// EventSinkPort is where on the host the demo's event sink posts (the events spec listens
	// there); EventSinkKeyFile holds that sink's HMAC key, its exact bytes.
	EventSinkPort    string
	EventSinkKeyFile string
}

var (
	repoRoot string
	env      demoEnv
	// k8s is a cluster-admin client (the demo kubeconfig) that knows the Download kind.
	k8s client.Client
	// s3 reaches MinIO from the host, as the test's independent view of both buckets.
	s3 *minio.Client
	// api is the facade's Go client, the way API users integrate.
	api *dlclient.Client
)

// Slow 2-core machines start Pods in seconds, not milliseconds: waits are generous, and polls
// frequent enough to catch short-lived states such as a worker mid-upload.
const (
	defaultWait = 3 * time.Minute
	defaultPoll = 500 * time.Millisecond
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "download-operator e2e")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	SetDefaultEventuallyTimeout(defaultWait)
	SetDefaultEventuallyPollingInterval(defaultPoll)
	SetDefaultConsistentlyDuration(5 * time.Second)
	SetDefaultConsistentlyPollingInterval(defaultPoll)

	repoRoot = testenv.RepoRoot()

	By("bringing the demo stack up with hack/demo/up (idempotent)")
	Expect(runDemoUp(ctx)).To(Succeed())

	envPath := cmp.Or(os.Getenv("DEMO_ENV"), filepath.Join(repoRoot, ".demo", "env"))
	By("loading " + envPath)
	var err error
	env, err = loadDemoEnv(envPath)
	Expect(err).NotTo(HaveOccurred())

	k8s, err = newKubeClient(env.Kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	s3, err = newMinioClient(env)
	Expect(err).NotTo(HaveOccurred())
	api, err = dlclient.New(env.FacadeURL, dlclient.WithUserAgent("download-operator-e2e"))
	Expect(err).NotTo(HaveOccurred())

	By("waiting for the facade to be ready")
	// /readyz is on the probe port, which the demo does not publish; /health is on the API's.
	Eventually(ctx, func() error { return getOK(ctx, env.FacadeURL+"/health") }).Should(Succeed())

	By("checking the seeded source files")
	Expect(checkSeed(ctx)).To(Succeed())

	By("removing Downloads left by an earlier, aborted run")
	Expect(deleteLeftoverDownloads(ctx)).To(Succeed())

	// Drill S5 checks that a worker credential dies at its expiry, 15 minutes after minting.
	// Minted here when S5 is selected, the wait overlaps the rest of the run.
	armS5CredentialExpiry(ctx)
}, NodeTimeout(25*time.Minute))

// Every Pod this suite caused (worker Pods included) must have been admitted by the
// restricted profile and started. Each spec's own Pods are checked here, after the spec and
// before its cleanup deletes them; AfterSuite checks whatever is left at the end.
var _ = AfterEach(func(ctx SpecContext) {
	if k8s == nil {
		return
	}
	Expect(namespacePodProblems(ctx, false)).To(BeEmpty(),
		"Pods in namespace %s that are not proof of restricted admission", env.Namespace)
}, NodeTimeout(time.Minute))

// Registered after the Pod check so that a failing check also gets the dump; cleanup runs only
// after this, so the dump shows the spec's objects as they were when it failed.
var _ = AfterEach(func() {
	if CurrentSpecReport().Failed() && k8s != nil {
		dumpDiagnostics()
	}
})

var _ = AfterSuite(func(ctx SpecContext) {
	if k8s == nil {
		return
	}
	By("checking every Pod left in the namespace at the end of the run")
	Expect(namespacePodProblems(ctx, true)).To(BeEmpty())
}, NodeTimeout(2*time.Minute))

// runDemoUp runs hack/demo/up (idempotent), which brings the whole stack up.
func runDemoUp(ctx context.Context) error { return runRepoScript(ctx, "hack/demo/up") }

// runRepoScript runs a script of the repository (path relative to its root) from the root,
// streaming its output so that a slow or failing step can be followed live with -ginkgo.v.
func runRepoScript(ctx context.Context, path string, args ...string) error {
	script := filepath.Join(repoRoot, filepath.FromSlash(path))
	cmd := exec.CommandContext(ctx, script, args...)
	cmd.Dir = repoRoot
	cmd.Stdout = GinkgoWriter
	cmd.Stderr = GinkgoWriter
	// A stuck child must not outlive the suite's own timeout by much.
	cmd.WaitDelay = 10 * time.Second
	GinkgoWriter.Printf("$ %s %s\n", path, strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s %s: %w", path, strings.Join(args, " "), err)
	}
	return nil
}

// loadDemoEnv reads the KEY=VALUE lines hack/demo/up writes. Quotes and an `export ` prefix are
// accepted so that a hand-written file works too.
func loadDemoEnv(path string) (demoEnv, error) {
	f, err := os.Open(path)
	if err != nil {
		return demoEnv{}, fmt.Errorf("opening demo environment (written by hack/demo/up): %w", err)
	}
	defer func() { _ = f.Close() }()
	values := map[string]string{}
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		text := strings.TrimSpace(scanner.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(strings.TrimPrefix(text, "export "), "=")
		if !ok {
			return demoEnv{}, fmt.Errorf("%s:%d: not KEY=VALUE: %q", path, line, text)
		}
		values[strings.TrimSpace(key)] = unquote(strings.TrimSpace(value))
	}
	if err := scanner.Err(); err != nil {
		return demoEnv{}, fmt.Errorf("reading %s: %w", path, err)
	}

	var missing []string
	need := func(key string) string {
		if values[key] == "" {
			missing = append(missing, key)
		}
		return values[key]
	}
	e := demoEnv{
		FacadeURL:         need("FACADE_URL"),
		Kubeconfig:        need("KUBECONFIG"),
		MinioURL:          need("MINIO_URL"),
		MinioAccessKey:    need("MINIO_ACCESS_KEY"),
		MinioSecretKey:    need("MINIO_SECRET_KEY"),
		OperatorAccessKey: need("OPERATOR_ACCESS_KEY"),
		OperatorSecretKey: need("OPERATOR_SECRET_KEY"),
		SourceBucket:      need("SOURCE_BUCKET"),
		ArchiveBucket:     need("ARCHIVE_BUCKET"),
		Namespace:         need("DEMO_NAMESPACE"),
		Kubectl:           need("KUBECTL"),
		HelmRelease:       values["HELM_RELEASE"],
		ContainerdSock:    values["CONTAINERD_SOCK"],
		KindCluster:       values["KIND_CLUSTER"],
		NodeIP:            values["NODE_IP"],
		Helm:              values["HELM"],
		EventSinkPort:     values["EVENT_SINK_PORT"],
		EventSinkKeyFile:  values["EVENT_SINK_KEY_FILE"],
	}
	if len(missing) > 0 {
		return demoEnv{}, fmt.Errorf("%s lacks %s", path, strings.Join(missing, ", "))
	}
	return e, nil
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		if s, err := strconv.Unquote(v); err == nil {
			return s
		}
	}
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	return v
}

// newRESTConfig loads the demo kubeconfig. client-go would pace every client built from it at
// 5 requests per second; the drills create and watch hundreds of objects at once, and the
// apiserver's own priority and fairness is the limit worth testing, so the pace is raised.
func newRESTConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	return cfg, nil
}

func newKubeClient(kubeconfig string) (client.Client, error) {
	cfg, err := newRESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	scheme, err := testenv.NewScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes client: %w", err)
	}
	return c, nil
}

func newMinioClient(e demoEnv) (*minio.Client, error) {
	u, err := url.Parse(e.MinioURL)
	if err != nil {
		return nil, fmt.Errorf("parsing MINIO_URL %q: %w", e.MinioURL, err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(e.MinioAccessKey, e.MinioSecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("creating MinIO client for %s: %w", e.MinioURL, err)
	}
	return c, nil
}

func getOK(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("building GET %s: %w", u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

// checkSeed confirms the source files the specs rely on, and the absence of the missing one.
func checkSeed(ctx context.Context) error {
	var errs []error
	for id, size := range seededSizes {
		info, err := s3.StatObject(ctx, env.SourceBucket, sourceKey(id), minio.StatObjectOptions{})
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("source %d: %w", id, err))
		case info.Size != size:
			errs = append(errs, fmt.Errorf("source %d is %d bytes, want %d", id, info.Size, size))
		}
	}
	_, err := s3.StatObject(ctx, env.SourceBucket, sourceKey(fileMissing), minio.StatObjectOptions{})
	if !isNoSuchKey(err) {
		errs = append(errs, fmt.Errorf("source %d must not exist, stat said: %v", fileMissing, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bucket %s is not seeded as hack/demo/up promises: %w", env.SourceBucket, err)
	}
	return nil
}

func deleteLeftoverDownloads(ctx context.Context) error {
	var list downloadv1alpha1.DownloadList
	if err := k8s.List(ctx, &list, client.InNamespace(env.Namespace), client.HasLabels{suiteLabel}); err != nil {
		return fmt.Errorf("listing leftover Downloads: %w", err)
	}
	for _, dl := range list.Items {
		if err := deleteDownloadAndWait(ctx, dl.Name); err != nil {
			return err
		}
	}
	return nil
}
