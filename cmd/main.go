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

// Command download-operator is one binary with one role per subcommand, so that the controller,
// the worker Jobs it launches and the facade all run the same image:
//
//	download-operator controller [flags]   reconcile Downloads into worker Jobs (the default)
//	download-operator worker [flags]       stream one archive into object storage (run by a Job)
//	download-operator facade [flags]       serve the HTTP API browsers and scripts call
//	download-operator get [flags] ID...    fetch a bundle through the facade, with a progress bar
package main

import (
	"context"
	"fmt"
	"os"

	// Import all Kubernetes client auth plugins (e.g. Azure, GCP, OIDC, etc.)
	// to ensure that exec-entrypoint and run can make use of them.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"github.com/download-operator/download-operator/internal/cli"
	"github.com/download-operator/download-operator/internal/controllercmd"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/internal/worker"
)

func main() {
	role, args := "controller", os.Args[1:]
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		role, args = args[0], args[1:]
	}
	switch role {
	case "controller":
		os.Exit(controllercmd.Command(args))
	case "worker":
		os.Exit(worker.Command(context.Background(), args, os.Stderr))
	case "facade":
		// facade.Command stops on SIGTERM or Ctrl-C itself and shuts down gracefully.
		os.Exit(facade.Command(context.Background(), args, os.Stderr))
	case "get":
		os.Exit(cli.GetCommand(context.Background(), args, os.Stdout, os.Stderr))
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q: want controller, worker, facade or get\n", role)
		os.Exit(2)
	}
}
