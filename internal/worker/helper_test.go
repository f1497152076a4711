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

package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/worker"
)

const (
	// helperCommand makes the test binary run worker.Command with the JSON argument list in
	// helperArgsEnv, as the container would, so that a test can send it real signals.
	helperCommand = "command"
	helperArgsEnv = "WORKER_TEST_HELPER_ARGS"
)

func runHelper(mode string) int {
	if mode != helperCommand {
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		return 1
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv(helperArgsEnv)), &args); err != nil {
		fmt.Fprintln(os.Stderr, "decoding helper args:", err)
		return 1
	}
	return worker.Command(context.Background(), args, os.Stderr)
}

type discardReporter struct{}

func (discardReporter) Progress(context.Context, jobreport.Progress) error { return nil }
func (discardReporter) Result(context.Context, jobreport.Result) error     { return nil }
func (discardReporter) Failure(context.Context, jobreport.Failure) error   { return nil }
