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

package restconfig_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/download-operator/download-operator/internal/restconfig"
)

func TestLoadReadsTheFileAndOtherwiseAsksTheFallback(t *testing.T) {
	fromFallback := &rest.Config{Host: "https://fallback.test"}
	found := func() (*rest.Config, error) { return fromFallback, nil }
	notFound := func() (*rest.Config, error) { return nil, errors.New("not in a cluster") }

	if cfg, err := restconfig.Load("", found, "in-cluster config"); err != nil || cfg != fromFallback {
		t.Errorf("without a path: %+v, %v; want the fallback's config", cfg, err)
	}
	if _, err := restconfig.Load("", notFound, "in-cluster config"); err == nil || err.Error() != "loading in-cluster config: not in a cluster" {
		t.Errorf("without a path and a fallback that fails: %v", err)
	}

	path := filepath.Join(t.TempDir(), "kubeconfig")
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://from-file.test:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := restconfig.Load(path, notFound, "in-cluster config"); err != nil || cfg.Host != "https://from-file.test:6443" {
		t.Errorf("with a path: %+v, %v; want the file's server and no fallback", cfg, err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := restconfig.Load(missing, found, "in-cluster config"); err == nil || !strings.HasPrefix(err.Error(), "loading kubeconfig "+missing+": ") {
		t.Errorf("with a path to nothing: %v; want its error, not the fallback", err)
	}
}
