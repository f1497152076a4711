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

package cluster

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
)

// dumpDiagnostics writes what explains most failures to GinkgoWriter: the operator's logs,
// the namespace's Events, and the state of Downloads, Jobs and Pods. It runs on a fresh context
// because the failed spec's own may be the one that timed out.
func dumpDiagnostics() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	selector := func(component string) string {
		return NameLabel + "=" + AppName + "," + ComponentLabel + "=" + component
	}
	for _, args := range [][]string{
		{"logs", "-l", selector(ControllerComponent), "--tail=200", "--all-containers", "--prefix"},
		{"logs", "-l", selector(FacadeComponent), "--tail=200", "--all-containers", "--prefix"},
		{"logs", "-l", ComponentLabel + "=" + WorkerComponent, "--tail=50", "--all-containers", "--prefix",
			"--max-log-requests=20"},
		{"get", "events", "--sort-by=.lastTimestamp"},
		{"describe", "pods"},
		{"get", "dl,jobs,pods", "-o", "wide"},
		{"get", "dl", "-o", "yaml"},
	} {
		out, err := Kubectl(ctx, "", args...)
		GinkgoWriter.Printf("\n===== kubectl -n %s %s =====\n%s", Env.Namespace, strings.Join(args, " "), out)
		if err != nil {
			GinkgoWriter.Printf("(%v)\n", err)
		}
	}
}
