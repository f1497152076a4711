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

package controllercmd

import (
	"flag"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
)

func parseFlags(t *testing.T, args ...string) Flags {
	t.Helper()
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f Flags
	f.bind(fs)
	if err := fs.Parse(append([]string{"--worker-image=img", "--storage-endpoint=minio:9000", "--namespaces=a"}, args...)); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestWorkerResourcesComeFromFlags(t *testing.T) {
	f := parseFlags(t, "--worker-memory-limit=256Mi", "--worker-cpu-request=250m")
	opts, err := f.options()
	if err != nil {
		t.Fatal(err)
	}
	got := opts.WorkerResources
	for name, pair := range map[string][2]string{
		"memory limit":   {got.Limits.Memory().String(), "256Mi"},
		"cpu request":    {got.Requests.Cpu().String(), "250m"},
		"memory request": {got.Requests.Memory().String(), "64Mi"},
		"cpu limit":      {got.Limits.Cpu().String(), "1"},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s = %s, want %s", name, pair[0], pair[1])
		}
	}
}

func TestInvalidWorkerResourcesNameTheFlag(t *testing.T) {
	f := parseFlags(t, "--worker-memory-limit=lots", "--worker-cpu-request=two")
	_, err := f.options()
	if err == nil {
		t.Fatal("invalid quantities were accepted")
	}
	for _, want := range []string{"--worker-memory-limit=\"lots\"", "--worker-cpu-request=\"two\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestWorkersGetTheControllersTracingSettingsButNoHeaders(t *testing.T) {
	env := workerTracingEnv([]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318",
		"OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer secret",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS=x-api-key=secret",
		"OTEL_SERVICE_NAME=download-operator-controller",
		"OTEL_TRACES_SAMPLER=parentbased_always_on",
		"PATH=/usr/bin",
	})
	var got []string
	for _, e := range env {
		got = append(got, e.Name+"="+e.Value)
	}
	want := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318", "OTEL_TRACES_SAMPLER=parentbased_always_on"}
	if !slices.Equal(got, want) {
		t.Fatalf("worker tracing env = %q, want %q", got, want)
	}
}

func TestMaxConcurrentReconcilesComesFromItsFlag(t *testing.T) {
	f := parseFlags(t, "--worker-image=w", "--storage-endpoint=m:9000", "--max-concurrent-reconciles=8")
	if f.MaxConcurrentReconciles != 8 {
		t.Fatalf("MaxConcurrentReconciles = %d, want 8", f.MaxConcurrentReconciles)
	}
}

func TestQueueNamesComeFromFlags(t *testing.T) {
	f := parseFlags(t, "--namespaces=a,b,c", "--queue-name=shared", "--namespace-queue-names=b=tenant-b, c=")
	opts, err := f.options()
	if err != nil {
		t.Fatal(err)
	}
	if opts.QueueName != "shared" {
		t.Errorf("QueueName = %q, want shared", opts.QueueName)
	}
	want := map[string]string{"b": "tenant-b", "c": ""}
	if !maps.Equal(opts.NamespaceQueueNames, want) {
		t.Errorf("NamespaceQueueNames = %v, want %v", opts.NamespaceQueueNames, want)
	}
}

func TestBadQueueNamesStopTheController(t *testing.T) {
	for args, want := range map[string]string{
		"--queue-name=not a queue":                 `--queue-name="not a queue"`,
		"--namespace-queue-names=a":                `"a" is not namespace=queue`,
		"--namespace-queue-names=elsewhere=tenant": `namespace "elsewhere" is not served`,
		"--namespace-queue-names=a=bad/queue":      `queue "bad/queue" of namespace "a"`,
	} {
		f := parseFlags(t, args)
		if _, err := f.options(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %s", args, err, want)
		}
	}
}
