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

package chart_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/yaml"

	"github.com/download-operator/download-operator/test/chartrbac"
	"github.com/download-operator/download-operator/test/testenv"
)

// helmSkipReason is loud on purpose: a skipped chart suite must not read as a passing one.
const helmSkipReason = "SKIPPING THE HELM CHART SUITE: HELM_BIN is not set, so charts/download-operator is " +
	"NOT tested. Build helm from Go modules with `hack/tools.sh helm` and run with " +
	"HELM_BIN=\"$(hack/tools.sh helm)/helm\""

// commandTimeout bounds every kubectl invocation (chartrbac.Helm bounds helm's), so a hung
// binary fails the test instead of hanging it.
const commandTimeout = 60 * time.Second

// The chart, its required values and the merging of values are test/chartrbac's, which renders
// the chart for the envtest suites too.
var (
	chartDir       = chartrbac.ChartDir
	requiredValues = chartrbac.RequiredValues
	merge          = chartrbac.Merge
)

// helmBin returns the helm binary or skips the test.
func helmBin(t *testing.T) string {
	t.Helper()
	bin, err := chartrbac.HelmBin()
	if errors.Is(err, chartrbac.ErrNoHelm) {
		t.Skip(helmSkipReason)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// helm runs the helm binary hermetically (chartrbac.Helm) and returns stdout, stderr and the
// error.
func helm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	helmBin(t)
	return chartrbac.Helm(t.Context(), args...)
}

// valuesFile writes values as a YAML file for helm's -f.
func valuesFile(t *testing.T, values map[string]any) string {
	t.Helper()
	path, err := chartrbac.WriteValues(t.TempDir(), values)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// helmTemplate renders the chart as release in namespace, for the envtest apiserver's version.
func helmTemplate(t *testing.T, release, namespace string, values map[string]any) (string, error) {
	t.Helper()
	return chartrbac.Template(t.Context(), release, namespace, kubeVersion(t), values)
}

// mustTemplate renders the chart or fails the test.
func mustTemplate(t *testing.T, release, namespace string, values map[string]any) string {
	t.Helper()
	out, err := helmTemplate(t, release, namespace, values)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// parseManifests decodes a multi-document YAML stream into objects, skipping empty documents.
func parseManifests(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := chartrbac.ParseManifests(manifests)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// toYAML serialises objects as one multi-document stream.
func toYAML(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	var b strings.Builder
	for _, obj := range objs {
		raw, err := yaml.Marshal(obj.Object)
		if err != nil {
			t.Fatalf("marshalling %s/%s: %v", obj.GetKind(), obj.GetName(), err)
		}
		b.WriteString("---\n")
		b.Write(raw)
	}
	return b.String()
}

// convert turns an unstructured object into a typed one.
func convert[T any](t *testing.T, obj *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.Object, out, true); err != nil {
		t.Fatalf("converting %s %s/%s: %v", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return out
}

// find returns the rendered object of kind, namespace and name, failing when it is missing.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	for _, obj := range objs {
		if obj.GetKind() == kind && obj.GetNamespace() == namespace && obj.GetName() == name {
			return obj
		}
	}
	t.Fatalf("the chart rendered no %s %s/%s", kind, namespace, name)
	return nil
}

func ofKind(objs []*unstructured.Unstructured, kinds ...string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range objs {
		for _, kind := range kinds {
			if obj.GetKind() == kind {
				out = append(out, obj)
			}
		}
	}
	return out
}

func withoutKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range objs {
		if obj.GetKind() != kind {
			out = append(out, obj)
		}
	}
	return out
}

// The control plane is shared by the package's tests and started on first use, so the lint
// test runs without it when only helm is available.
var (
	planeOnce sync.Once
	plane     *controlPlane
	planeErr  error
)

type controlPlane struct {
	env         *testenv.Env
	kubeconfig  string
	kubectlPath string
	version     string
	tempDir     string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if plane != nil {
		if err := plane.env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
			code = 1
		}
		_ = os.RemoveAll(plane.tempDir)
	}
	os.Exit(code)
}

// cluster returns the shared envtest control plane: a real kube-apiserver with RBAC
// authorization (envtest's default, --authorization-mode=RBAC) and the PodSecurity admission
// plugin (on by default in kube-apiserver), and the project's CRDs installed.
func cluster(t *testing.T) *controlPlane {
	t.Helper()
	helmBin(t) // no helm, nothing to test: skip before paying for a control plane
	planeOnce.Do(func() { plane, planeErr = startControlPlane() })
	if planeErr != nil {
		t.Fatalf("starting the envtest control plane: %v", planeErr)
	}
	return plane
}

func startControlPlane() (*controlPlane, error) {
	env, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{env: env}
	fail := func(err error) (*controlPlane, error) { return nil, errors.Join(err, env.Stop()) }
	if cp.version, err = chartrbac.KubeVersion(env.Config); err != nil {
		return fail(err)
	}
	// testenv.Kubectl returns no stdout when kubectl exits non-zero, which `kubectl auth can-i`
	// does to say "no"; so the suite runs the same kubectl binary itself, as a cluster admin.
	if cp.tempDir, err = os.MkdirTemp("", "chart-test-"); err != nil {
		return fail(err)
	}
	cp.kubeconfig = filepath.Join(cp.tempDir, "kubeconfig")
	if err := env.WriteAdminKubeconfig("chart-test-admin", cp.kubeconfig); err != nil {
		return fail(err)
	}
	cp.kubectlPath = os.Getenv("TEST_ASSET_KUBECTL")
	if cp.kubectlPath == "" {
		cp.kubectlPath = filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	}
	if _, err := os.Stat(cp.kubectlPath); err != nil {
		return fail(fmt.Errorf("kubectl from KUBEBUILDER_ASSETS: %w", err))
	}
	return cp, nil
}

// kubeVersion is the version of the envtest apiserver the renders are applied to.
func kubeVersion(t *testing.T) string {
	t.Helper()
	return cluster(t).version
}

// kubectl runs kubectl as a cluster admin with stdin, returning stdout, stderr and the error.
func (cp *controlPlane) kubectl(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	return cp.kubectlContext(t.Context(), stdin, args...)
}

// kubectlContext is kubectl for cleanups, which run after the test's context has ended, and
// for goroutines.
func (cp *controlPlane) kubectlContext(ctx context.Context, stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	// A discovery cache of the suite's own keeps kubectl off ~/.kube and saves each call a
	// round of discovery.
	global := []string{"--kubeconfig", cp.kubeconfig, "--cache-dir", filepath.Join(cp.tempDir, "kube-cache")}
	cmd := exec.CommandContext(ctx, cp.kubectlPath, append(global, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// restrictedNamespace creates a namespace that enforces and warns at the restricted Pod
// Security Standard, so a non-compliant Pod template turns into a warning (and, with
// --warnings-as-errors, an error) on apply. It is deleted when the test ends.
func (cp *controlPlane) restrictedNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: prefix + "-" + utilrand.String(5),
		Labels: map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted",
			"pod-security.kubernetes.io/warn":    "restricted",
			"pod-security.kubernetes.io/audit":   "restricted",
		},
	}}
	if err := cp.env.Client.Create(t.Context(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		// envtest runs no namespace controller, so the namespace only turns Terminating; the
		// random suffix keeps reruns against the same apiserver apart.
		if err := cp.env.Client.Delete(context.Background(), ns); err != nil {
			t.Logf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}
