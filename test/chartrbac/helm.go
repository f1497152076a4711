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

package chartrbac

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/download-operator/download-operator/test/testenv"
)

// ErrNoHelm is returned when HELM_BIN is unset. Suites that hold their identities to the chart's
// RBAC fail with it rather than skip: without helm they would prove nothing about the chart.
var ErrNoHelm = errors.New("HELM_BIN is not set: the chart's RBAC cannot be rendered. Build helm from Go " +
	"modules with `hack/tools.sh helm` and run with HELM_BIN=\"$(hack/tools.sh helm)/helm\" (`make test` does)")

// helmTimeout bounds every helm invocation, so a hung binary fails the caller instead of hanging it.
const helmTimeout = 60 * time.Second

// ChartDir is the chart under test, found from the repository root.
func ChartDir() string {
	return filepath.Join(testenv.RepoRoot(), "charts", "download-operator")
}

// RequiredValues are the values an install cannot do without. Each call returns a fresh map,
// which the caller may change.
func RequiredValues() map[string]any {
	return map[string]any{
		"storage": map[string]any{
			"endpoint":       "192.0.2.2:9000",
			"publicEndpoint": "http://127.0.0.1:9000",
			"accessKey":      "chart-test-access",
			"secretKey":      "chart-test-secret",
		},
	}
}

// HelmBin is the helm binary named by HELM_BIN.
func HelmBin() (string, error) {
	bin := os.Getenv("HELM_BIN")
	if bin == "" {
		return "", ErrNoHelm
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("HELM_BIN=%s: %w (build it with `hack/tools.sh helm`)", bin, err)
	}
	return bin, nil
}

// Helm runs the helm binary hermetically (its config, cache and data dirs are temporary, and it
// sees no kubeconfig) and returns stdout, stderr and the error.
func Helm(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	bin, err := HelmBin()
	if err != nil {
		return "", "", err
	}
	home, err := os.MkdirTemp("", "helm-home-")
	if err != nil {
		return "", "", err
	}
	defer func() { _ = os.RemoveAll(home) }()
	ctx, cancel := context.WithTimeout(ctx, helmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// WriteValues writes values as dir/values.yaml for helm's -f and returns the path.
func WriteValues(dir string, values map[string]any) (string, error) {
	raw, err := yaml.Marshal(values)
	if err != nil {
		return "", fmt.Errorf("marshalling values: %w", err)
	}
	path := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return "", fmt.Errorf("writing values: %w", err)
	}
	return path, nil
}

// Template renders the chart as release in namespace. kubeVersion is passed explicitly: helm
// built from Go modules without the release ldflags believes the cluster is v1.20.0, which the
// chart's kubeVersion constraint (>=1.30.0-0) rejects.
func Template(ctx context.Context, release, namespace, kubeVersion string, values map[string]any) (string, error) {
	dir, err := os.MkdirTemp("", "helm-values-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	valuesPath, err := WriteValues(dir, values)
	if err != nil {
		return "", err
	}
	stdout, stderr, err := Helm(ctx, "template", release, ChartDir(),
		"--namespace", namespace, "--kube-version", kubeVersion, "-f", valuesPath)
	if err != nil {
		return stdout, fmt.Errorf("helm template: %w: %s", err, stderr)
	}
	return stdout, nil
}

// KubeVersion asks the apiserver its version, the one renders for it are made for.
func KubeVersion(cfg *rest.Config) (string, error) {
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", fmt.Errorf("creating a discovery client: %w", err)
	}
	info, err := disco.ServerVersion()
	if err != nil {
		return "", fmt.Errorf("asking the apiserver its version: %w", err)
	}
	return info.GitVersion, nil
}

// Merge deep-merges overlays onto base (maps merge, anything else replaces). The inputs are left
// as they are.
func Merge(base map[string]any, overlays ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range append([]map[string]any{base}, overlays...) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				if prev, ok := out[k].(map[string]any); ok {
					out[k] = Merge(prev, sub)
					continue
				}
				out[k] = Merge(sub)
				continue
			}
			out[k] = v
		}
	}
	return out
}

// ParseManifests decodes a multi-document YAML stream into objects, skipping empty documents.
func ParseManifests(manifests string) ([]*unstructured.Unstructured, error) {
	decoder := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := map[string]any{}
		err := decoder.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decoding rendered manifests: %w", err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("rendered object without kind, apiVersion or name: %v", obj)
		}
		objs = append(objs, u)
	}
	if len(objs) == 0 {
		return nil, errors.New("the chart rendered no objects")
	}
	return objs, nil
}
