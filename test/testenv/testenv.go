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

// Package testenv starts a real kube-apiserver and etcd (envtest) with the project's generated
// CRDs installed, so every suite proves its claims against the same binaries `make test` builds.
package testenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// Env is a running control plane and a client for it.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
	Scheme *k8sruntime.Scheme
}

// RepoRoot is the root of this repository, found from this file so that tests in any package
// locate the generated manifests without depending on their working directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// NewScheme knows the built-in kinds and the project's API.
func NewScheme() (*k8sruntime.Scheme, error) {
	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("adding client-go types to scheme: %w", err)
	}
	if err := downloadv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("adding download.operator.dev types to scheme: %w", err)
	}
	return scheme, nil
}

// Start boots kube-apiserver and etcd from KUBEBUILDER_ASSETS and installs the CRDs from
// config/crd/bases. The caller must Stop the returned Env.
func Start() (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run `make test`, or " +
			"`export KUBEBUILDER_ASSETS=$(hack/tools.sh envtest-assets)` to build kube-apiserver and etcd from source")
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest control plane: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("creating client: %w", err), env.Stop())
	}
	return &Env{Environment: env, Config: cfg, Client: c, Scheme: scheme}, nil
}

// addAdmin adds a user called name in the group system:masters, which RBAC lets do anything.
func (e *Env) addAdmin(name string) (*envtest.AuthenticatedUser, error) {
	admin, err := e.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding the cluster admin %s: %w", name, err)
	}
	return admin, nil
}

// WriteAdminKubeconfig writes to path the kubeconfig of a new cluster admin called name, for
// programs that run as processes of their own.
func (e *Env) WriteAdminKubeconfig(name, path string) error {
	admin, err := e.addAdmin(name)
	if err != nil {
		return err
	}
	raw, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering the kubeconfig of %s: %w", name, err)
	}
	return os.WriteFile(path, raw, 0o600)
}

// Kubectl runs kubectl (the binary from KUBEBUILDER_ASSETS) as a cluster admin and returns its
// standard output, for tests that prove what a kubectl user sees.
func (e *Env) Kubectl(args ...string) (string, error) {
	admin, err := e.addAdmin("kubectl-admin")
	if err != nil {
		return "", err
	}
	kubectl, err := admin.Kubectl()
	if err != nil {
		return "", fmt.Errorf("configuring kubectl: %w", err)
	}
	stdout, stderr, err := kubectl.Run(args...)
	if err != nil {
		errText, _ := io.ReadAll(stderr)
		return "", fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, errText)
	}
	out, err := io.ReadAll(stdout)
	if err != nil {
		return "", fmt.Errorf("reading kubectl output: %w", err)
	}
	return string(out), nil
}
