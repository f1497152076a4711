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

// Package demoenv is the stack `make demo` runs (hack/demo/up), as the e2e suite, the drills and
// the bench reach it: the scripts that start and change it, and the environment file
// (.demo/env) that says where everything is.
package demoenv

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/download-operator/download-operator/test/testenv"
)

// Path is the environment file: the one DEMO_ENV names, or the one hack/demo/up writes.
func Path() string {
	return cmp.Or(os.Getenv("DEMO_ENV"), filepath.Join(testenv.RepoRoot(), ".demo", "env"))
}

// RunScript runs a script of the repository (path relative to its root, such as hack/demo/up,
// which only starts what is not running) from the root, its output to out.
func RunScript(ctx context.Context, out io.Writer, path string, args ...string) error {
	root := testenv.RepoRoot()
	cmd := exec.CommandContext(ctx, filepath.Join(root, filepath.FromSlash(path)), args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = out, out
	// A stuck grandchild holding the output open must not outlive the caller's deadline by much.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s %s: %w", path, strings.Join(args, " "), err)
	}
	return nil
}

// Env is what hack/demo/up writes to .demo/env.
type Env struct {
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

// Load reads the KEY=VALUE lines hack/demo/up writes. Quotes and an `export ` prefix are
// accepted so that a hand-written file works too.
func Load(path string) (Env, error) {
	f, err := os.Open(path)
	if err != nil {
		return Env{}, fmt.Errorf("opening demo environment (written by hack/demo/up): %w", err)
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
			return Env{}, fmt.Errorf("%s:%d: not KEY=VALUE: %q", path, line, text)
		}
		values[strings.TrimSpace(key)] = unquote(strings.TrimSpace(value))
	}
	if err := scanner.Err(); err != nil {
		return Env{}, fmt.Errorf("reading %s: %w", path, err)
	}

	var missing []string
	need := func(key string) string {
		if values[key] == "" {
			missing = append(missing, key)
		}
		return values[key]
	}
	e := Env{
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
		return Env{}, fmt.Errorf("%s lacks %s", path, strings.Join(missing, ", "))
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
