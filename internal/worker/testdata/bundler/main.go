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

// Command bundler runs worker.Run alone in a process, so that BenchmarkPeakRSS measures the
// worker's memory rather than that of the test binary, which links envtest and the test
// framework. It lives under testdata so that `go build ./...` and `go vet ./...` skip it.
//
// With BUNDLER_CONFIG (a JSON worker.Config) it bundles from the MinIO at BUNDLER_ENDPOINT with
// the credentials in STORAGE_ACCESS_KEY and STORAGE_SECRET_KEY; without it, it only starts. Either
// way it prints its peak RSS (the VmHWM line of /proc/self/status) last. It reads the peak itself
// because the rusage of a child started by os/exec also counts the parent's RSS: Go starts
// children with vfork, and exec charges the shared address space's high-water mark to the child.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/worker"
)

func main() {
	code := 0
	if raw := os.Getenv("BUNDLER_CONFIG"); raw != "" {
		code = bundle(raw)
	}
	if err := printPeakRSS(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func bundle(raw string) int {
	var cfg worker.Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "decoding BUNDLER_CONFIG:", err)
		return jobreport.ExitUsage
	}
	client, err := minio.New(os.Getenv("BUNDLER_ENDPOINT"), &minio.Options{
		Creds: credentials.NewStaticV4(os.Getenv(worker.EnvAccessKey), os.Getenv(worker.EnvSecretKey), ""),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return jobreport.ExitUsage
	}
	_, err = worker.Run(context.Background(), cfg, worker.Deps{Source: client, Reporter: discard{}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return worker.ExitCode(err)
}

func printPeakRSS() error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("reading peak RSS: %w", err)
	}
	lines := bufio.NewScanner(bytes.NewReader(status))
	for lines.Scan() {
		if bytes.HasPrefix(lines.Bytes(), []byte("VmHWM:")) {
			fmt.Println(lines.Text())
			return nil
		}
	}
	return fmt.Errorf("no VmHWM in /proc/self/status")
}

type discard struct{}

func (discard) Progress(context.Context, jobreport.Progress) error { return nil }
func (discard) Result(context.Context, jobreport.Result) error     { return nil }
func (discard) Failure(context.Context, jobreport.Failure) error   { return nil }
