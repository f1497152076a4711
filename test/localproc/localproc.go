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

// Package localproc runs download-operator's roles as processes of their own, built from ./cmd
// as the image builds them, so that a test or a benchmark sees exactly what ships (its flags,
// its RSS, its metrics) and not whatever its own binary happens to link.
package localproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/download-operator/download-operator/test/poll"
	"github.com/download-operator/download-operator/test/testenv"
)

// Build builds the Go package pkg of this repository (such as "./cmd") into dir/name, with
// extra `go build` flags and environment entries (such as CGO_ENABLED=0), and returns its path.
func Build(ctx context.Context, pkg, dir, name string, flags, env []string) (string, error) {
	binary := filepath.Join(dir, name)
	args := append(append([]string{"build"}, flags...), "-o", binary, pkg)
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), env...)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return binary, nil
}

// BuildOperator builds download-operator from ./cmd into dir.
func BuildOperator(ctx context.Context, dir string) (string, error) {
	return Build(ctx, "./cmd", dir, "download-operator", nil, nil)
}

// FreeAddrs asks the kernel for n distinct unused 127.0.0.1 ports and returns them as
// host:port. Another process could take one before the caller binds it; the caller then fails
// loudly rather than talking to the wrong server, and on a test machine nothing else picks
// random ports.
func FreeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		// Each listener stays open until all are found, so that the kernel hands out n ports.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free loopback port: %w", err)
		}
		defer func() { _ = l.Close() }()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// FreeAddr is FreeAddrs(1)'s one address.
func FreeAddr() (string, error) {
	addrs, err := FreeAddrs(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// Process is a child process whose end is observed.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	// err is Wait's result, readable once done is closed.
	err error
}

// Start runs binary with args. extraEnv entries come after the inherited environment, so they
// win: the developer's own KUBECONFIG cannot leak in. Output goes to log (nil discards it).
// The child dies with the caller's thread where the OS allows, so a killed test leaves no
// process behind.
func Start(name, binary string, args, extraEnv []string, log io.Writer) (*Process, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited describes how the process ended; call it once Done is closed.
func (p *Process) Exited() string {
	return fmt.Sprintf("%s: %v (%s)", p.Name, p.err, p.cmd.ProcessState)
}

// Stop ends the process as Kubernetes ends a container, SIGTERM and then SIGKILL after grace.
// It reports a process that had exited before, that did not exit cleanly, or that ignored
// SIGTERM.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return fmt.Errorf("%s had exited before it was stopped: %w", p.Name, p.exitErr())
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s after SIGTERM: %w", p.Name, p.err)
		}
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s ignored SIGTERM for %s", p.Name, grace)
	}
}

func (p *Process) exitErr() error {
	if p.err != nil {
		return p.err
	}
	return errors.New("exit status 0")
}

// WaitReady polls url until it answers 200, the process exits, or timeout passes.
func (p *Process) WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return poll.HTTPReady(ctx, p.Name, url, 50*time.Millisecond, p.done, func() error { return p.err })
}
