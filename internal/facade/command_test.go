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

package facade_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/test/logbuffer"
)

// TestCommandServesUntilCancelled runs `download-operator facade` in-process with the flags a
// Deployment would pass, as the restricted facade user, and stops it as SIGTERM would.
func TestCommandServesUntilCancelled(t *testing.T) {
	s := sharedStack(t)
	t.Setenv(facade.ClientIDKeyEnv, "") // the warning below is part of the test
	addr, probeAddr := freeAddr(t), freeAddr(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Command points controller-runtime's global logger at its stderr, which the stack's
	// controller then shares: the buffer must take concurrent writes.
	stderr := &logbuffer.Buffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- facade.Command(ctx, []string{
			"--listen=" + addr, "--probe-bind-address=" + probeAddr, "--namespace=default", "--kubeconfig=" + s.FacadeKubeconfig,
			"--controller-url=" + s.FileCheck.URL, "--cors-origins=https://app.example",
			"--rate-limit=50", "--rate-burst=100", "--max-active-per-client=3", "--max-connections=64",
			"--trusted-proxies=10.0.0.0/8", "--max-connections-per-client=8", "--max-streams-per-client=2",
		}, stderr)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + probeAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("RateLimit-Limit") != "100" {
		t.Errorf("/health: %d, RateLimit-Limit %q", resp.StatusCode, resp.Header.Get("RateLimit-Limit"))
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get("http://" + probeAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("probe port %s: %d", path, resp.StatusCode)
		}
	}
	if !strings.Contains(stderr.String(), "NO CLIENT ID KEY") {
		t.Errorf("no warning about the missing client id key:\n%s", stderr.String())
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the facade did not stop")
	}
	if !strings.Contains(stderr.String(), `"msg":"facade stopped"`) {
		t.Errorf("no shutdown log:\n%s", stderr.String())
	}
}

// freeAddr is a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

func TestCommandRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--namespace="},
		{"--namespace=default", "--rate-limit=0"},
		{"--namespace=default", "--controller-url=not a url"},
		{"--namespace=default", "--no-such-flag"},
		{"--namespace=default", "stray"},
		{"--namespace=default", "--max-bytes-per-second=-1"},
		{"--namespace=default", "--max-connections=-1"},
		{"--namespace=default", "--trusted-proxies=not-a-cidr"},
		{"--namespace=default", "--listen=:9000", "--probe-bind-address=:9000"},
	} {
		stderr := &logbuffer.Buffer{}
		if code := facade.Command(context.Background(), args, stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, stderr.String())
		}
	}
}
