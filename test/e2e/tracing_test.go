//go:build e2e

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

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	dlclient "github.com/download-operator/download-operator/pkg/client"
	"github.com/download-operator/download-operator/test/cluster"
	"github.com/download-operator/download-operator/test/otlpreceiver"
)

// The span names each component exports (internal/facade, internal/controller, internal/worker).
const (
	initiateSpan    = "POST /v1/download/initiate"
	createJobSpan   = "controller.create_job"
	writeStatusSpan = "controller.write_status"
	signURLSpan     = "controller.sign_url"
	workerRunSpan   = "worker.Run"
	sourceReadSpan  = "source.read"
	uploadSpan      = "archive.upload"
)

var _ = Describe("Tracing", Ordered, Label("tracing"), func() {
	var receiver *otlpreceiver.Receiver

	BeforeAll(func(ctx SpecContext) {
		Expect(cluster.Env.NodeIP).NotTo(BeEmpty(), ".demo/env lacks NODE_IP")
		Expect(cluster.Env.Helm).NotTo(BeEmpty(), ".demo/env lacks HELM")
		var err error
		// On all addresses: the Pods reach the host through the node IP, as they reach MinIO.
		receiver, err = otlpreceiver.StartHTTP("0.0.0.0:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			By("switching tracing off again")
			Expect(setTracingEndpoint(ctx, "")).To(Succeed())
			Expect(receiver.Close()).To(Succeed())
		}, NodeTimeout(5*time.Minute))
		By("pointing the release's tracing at an OTLP receiver in this test: " + receiver.EndpointFor(cluster.Env.NodeIP))
		Expect(setTracingEndpoint(ctx, receiver.EndpointFor(cluster.Env.NodeIP))).To(Succeed())
	}, NodeTimeout(5*time.Minute))

	It("exports one trace per Download from the facade, the controller and the worker Pod", func(ctx SpecContext) {
		traceID := cluster.RandomHex(16)
		traced := dlclient.ContextWithTraceparent(ctx, "00-"+traceID+"-"+cluster.RandomHex(8)+"-01")
		initiated, err := cluster.API.Initiate(traced, []int64{14000, 70007}, "")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { _ = cluster.API.Cancel(ctx, initiated.JobID) })
		final, err := cluster.API.Wait(ctx, initiated.JobID, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(final.Status).To(Equal(dlclient.StateCompleted), "%+v", final)

		By("waiting for every component's spans to reach the receiver")
		waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		spans, err := receiver.WaitFor(waitCtx, func(all []otlpreceiver.Span) bool {
			inTrace := ofTrace(all, traceID)
			return len(otlpreceiver.Named(inTrace, signURLSpan)) > 0 && len(otlpreceiver.Named(inTrace, uploadSpan)) > 0 &&
				len(otlpreceiver.Named(inTrace, initiateSpan)) > 0
		})
		Expect(err).NotTo(HaveOccurred(), "spans received: %v", names(ofTrace(receiver.Spans(), traceID)))
		inTrace := ofTrace(spans, traceID)
		tree := spanTree(inTrace)
		AddReportEntry("trace "+traceID, tree)
		GinkgoWriter.Printf("trace %s:\n%s", traceID, tree)
		// Kept for docs/observability.md: hack/tracerender draws it as a waterfall.
		if raw, err := json.MarshalIndent(inTrace, "", "  "); err == nil {
			_ = os.WriteFile(filepath.Join(cluster.RepoRoot, ".demo", "last-trace.json"), raw, 0o644)
		}

		byID := map[string]otlpreceiver.Span{}
		for _, s := range inTrace {
			byID[s.SpanID] = s
		}
		one := func(name, service, parentName string) otlpreceiver.Span {
			found := otlpreceiver.Named(inTrace, name)
			ExpectWithOffset(1, found).To(HaveLen(1), "spans named %s", name)
			ExpectWithOffset(1, found[0].Service).To(Equal(service), "service of %s", name)
			if parentName != "" {
				ExpectWithOffset(1, byID[found[0].ParentSpanID].Name).To(Equal(parentName), "parent of %s", name)
			}
			return found[0]
		}
		initiate := one(initiateSpan, "download-operator-facade", "")
		Expect(byID).NotTo(HaveKey(initiate.ParentSpanID), "the initiate span's parent is the client's span, outside the export")
		// A step repeated after a conflict with the controller's own cache is a span of its
		// own, so the controller's steps may appear more than once; each must hang below initiate.
		for _, name := range []string{createJobSpan, signURLSpan, writeStatusSpan} {
			found := otlpreceiver.Named(inTrace, name)
			Expect(found).NotTo(BeEmpty(), "spans named %s", name)
			for _, s := range found {
				Expect(s.Service).To(Equal("download-operator-controller"), "service of %s", name)
				Expect(byID[s.ParentSpanID].Name).To(Equal(initiateSpan), "parent of %s", name)
			}
		}
		one(workerRunSpan, "download-operator-worker", createJobSpan)
		upload := one(uploadSpan, "download-operator-worker", workerRunSpan)
		Expect(otlpreceiver.Named(inTrace, sourceReadSpan)).To(HaveLen(2))

		Expect(upload.Attributes).To(HaveKeyWithValue("download.bytes_uploaded", final.Size))
	})
})

// setTracingEndpoint sets tracing.endpoint on the demo release, keeping every other value, and
// waits for the rollout.
func setTracingEndpoint(ctx context.Context, endpoint string) error {
	return cluster.UpgradeRelease(ctx, 4*time.Minute, "tracing.endpoint="+endpoint)
}

func ofTrace(spans []otlpreceiver.Span, traceID string) []otlpreceiver.Span {
	var in []otlpreceiver.Span
	for _, s := range spans {
		if s.TraceID == traceID {
			in = append(in, s)
		}
	}
	return in
}

func names(spans []otlpreceiver.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Service+"/"+s.Name)
	}
	slices.Sort(out)
	return out
}

// spanTree renders the trace as an indented tree with each span's service and duration.
func spanTree(spans []otlpreceiver.Span) string {
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	slices.SortFunc(spans, func(a, b otlpreceiver.Span) int { return a.Start.Compare(b.Start) })
	var b strings.Builder
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		for _, s := range spans {
			isRoot := parent == "" && !ids[s.ParentSpanID]
			if (parent == "" && isRoot) || (parent != "" && s.ParentSpanID == parent) {
				fmt.Fprintf(&b, "%s%s [%s] %s\n", strings.Repeat("  ", depth), s.Name, s.Service, s.End.Sub(s.Start).Round(time.Millisecond))
				walk(s.SpanID, depth+1)
			}
		}
	}
	walk("", 0)
	return b.String()
}
