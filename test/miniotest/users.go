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

package miniotest

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/download-operator/download-operator/internal/storage"
)

// MCBinary finds MinIO's admin client built by `hack/tools.sh mc`; MC_BIN overrides it. Like the
// server, it is AGPL and only ever run as a separate process.
func MCBinary() (string, error) { return findTool("mc", "MC_BIN", "MinIO client binary (mc)") }

// Admin runs MinIO's admin client against a server, authenticated as its root user.
type Admin struct {
	// Endpoint is host:port; Secure selects https.
	Endpoint  string
	Secure    bool
	AccessKey string
	SecretKey string
}

// Admin returns the admin client of this server.
func (s *Server) Admin() Admin {
	return Admin{Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey}
}

// AddUser creates (or updates) a user whose only rights are policy, an IAM policy document,
// attached under the user's own name. Running it again with the same arguments changes nothing.
func (a Admin) AddUser(ctx context.Context, accessKey, secretKey, policy string) error {
	dir, err := os.MkdirTemp("", "mc-")
	if err != nil {
		return fmt.Errorf("creating mc's config dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	policyFile := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policyFile, []byte(policy), 0o600); err != nil {
		return fmt.Errorf("writing the policy of %s: %w", accessKey, err)
	}
	policyName := "user-" + accessKey
	for _, args := range [][]string{
		{"admin", "user", "add", "target", accessKey, secretKey},
		{"admin", "policy", "create", "target", policyName, policyFile},
		{"admin", "policy", "attach", "target", policyName, "--user", accessKey},
	} {
		if err := a.mc(ctx, dir, args...); err != nil {
			// attach refuses a policy that is already attached: that is the state we want.
			if args[2] == "attach" && strings.Contains(err.Error(), "already") {
				continue
			}
			return err
		}
	}
	return nil
}

func (a Admin) mc(ctx context.Context, configDir string, args ...string) error {
	bin, err := MCBinary()
	if err != nil {
		return err
	}
	scheme := "http"
	if a.Secure {
		scheme = "https"
	}
	host := url.URL{Scheme: scheme, User: url.UserPassword(a.AccessKey, a.SecretKey), Host: a.Endpoint}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--config-dir", configDir, "--quiet", "--no-color"}, args...)...)
	// The alias lives only in this process's environment; nothing about the server is stored.
	cmd.Env = append(os.Environ(), "MC_HOST_target="+host.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		// The output can echo the command line, never the credentials, which are only in env.
		return fmt.Errorf("mc %s: %w: %s", strings.Join(args[:3], " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// OperatorUser creates the operator's dedicated user, with the policy the chart README asks for
// (storage.OperatorPolicy), and returns its keys. The root user is never the operator: MinIO
// serves STS only for regular users, and root would make every scope test pass vacuously.
func (s *Server) OperatorUser(ctx context.Context, sourceBucket, archiveBucket string) (accessKey, secretKey string, err error) {
	policy, err := storage.OperatorPolicy(sourceBucket, archiveBucket)
	if err != nil {
		return "", "", err
	}
	accessKey, secretKey = "download-operator", "download-operator-secret-key"
	if err := s.Admin().AddUser(ctx, accessKey, secretKey, policy); err != nil {
		return "", "", fmt.Errorf("creating the operator's MinIO user: %w", err)
	}
	return accessKey, secretKey, nil
}
