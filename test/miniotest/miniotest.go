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

// Package miniotest runs the real MinIO server binary for tests: on a free loopback port, with a
// throwaway data directory, so storage code is proven against S3 semantics rather than a fake.
// MinIO is AGPL; it is only ever executed as a separate process, never linked.
package miniotest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/download-operator/download-operator/test/logbuffer"
	"github.com/download-operator/download-operator/test/poll"
)

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// Server is a running MinIO process.
type Server struct {
	// Endpoint is host:port, as minio-go expects it.
	Endpoint  string
	AccessKey string
	SecretKey string

	cmd     *exec.Cmd
	dataDir string
	output  *logbuffer.Buffer
	exited  chan struct{}
	waitErr error
}

// Binary finds the MinIO server built by `hack/tools.sh minio`; MINIO_BIN overrides it.
func Binary() (string, error) { return findTool("minio", "MINIO_BIN", "MinIO server binary") }

// findTool finds the program name that `hack/tools.sh name` builds: the path in envVar, else
// name on PATH. what names it in the error.
func findTool(name, envVar, what string) (string, error) {
	if bin := os.Getenv(envVar); bin != "" {
		return bin, nil
	}
	if bin, err := exec.LookPath(name); err == nil {
		return bin, nil
	}
	return "", fmt.Errorf("%s not found: run `make test`, or `export %s=$(hack/tools.sh %s)/%s` to build it from source",
		what, envVar, name, name)
}

// Start launches MinIO and returns once it answers its readiness probe.
func Start(ctx context.Context) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	apiAddr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	consoleAddr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "miniotest-")
	if err != nil {
		return nil, fmt.Errorf("creating MinIO data dir: %w", err)
	}
	s := &Server{
		Endpoint:  apiAddr,
		AccessKey: "miniotest",
		SecretKey: "miniotest-secret-key",
		dataDir:   dataDir,
		output:    &logbuffer.Buffer{},
		exited:    make(chan struct{}),
	}
	s.cmd = exec.Command(bin, "server", dataDir, "--address", apiAddr, "--console-address", consoleAddr, "--quiet")
	s.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		// Tests run beside other work on 2 cores; MinIO's update check and telemetry only add noise.
		"MINIO_UPDATE=off",
		"MINIO_BROWSER=off",
	)
	s.cmd.Stdout = s.output
	s.cmd.Stderr = s.output
	// Its own process group, so a Ctrl-C on `go test` does not race our orderly shutdown.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

// StartForTest starts MinIO for one test and stops it when the test ends. A missing binary fails
// the test rather than skipping it, so a broken setup can never pass as green.
func StartForTest(tb testing.TB) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		tb.Fatalf("starting MinIO: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("stopping MinIO: %v", err)
		}
	})
	return s
}

// Client returns a minio-go client for the server, with the root credentials.
func (s *Server) Client() (*minio.Client, error) {
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: false,
		Region: "us-east-1",
	})
	if err != nil {
		return nil, fmt.Errorf("creating MinIO client for %s: %w", s.Endpoint, err)
	}
	return c, nil
}

// ClientForTest returns a client for the server after creating buckets, failing tb on any error.
func (s *Server) ClientForTest(tb testing.TB, buckets ...string) *minio.Client {
	tb.Helper()
	c, err := s.Client()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for _, bucket := range buckets {
		if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
			tb.Fatalf("creating bucket %s: %v\n%s", bucket, err, s.Output())
		}
	}
	return c
}

// Stop terminates MinIO (SIGTERM, then SIGKILL after a grace period) and deletes its data.
func (s *Server) Stop() error {
	defer func() { _ = os.RemoveAll(s.dataDir) }()
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling MinIO: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("MinIO ignored SIGTERM for %s and was killed", stopTimeout)
	}
}

// Output is what MinIO printed, for diagnosing a failed test.
func (s *Server) Output() string { return s.output.String() }

func (s *Server) waitReady(ctx context.Context) error {
	url := "http://" + s.Endpoint + "/minio/health/ready"
	if err := poll.HTTPReady(ctx, "MinIO", url, 100*time.Millisecond, s.exited, func() error { return s.waitErr }); err != nil {
		return fmt.Errorf("%w: %s", err, s.Output())
	}
	return nil
}

// freeLoopbackAddr asks the kernel for an unused port. Another process could take it before
// MinIO binds; Start then fails loudly rather than talking to the wrong server.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}
