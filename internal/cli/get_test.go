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

package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestGetRejectsABadCommandLine(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no file ids", []string{"--server", "http://127.0.0.1:1"}, "no file ids given"},
		{"a file id that is no number", []string{"70000", "seventy"}, `file id "seventy" is not a positive integer`},
		{"a negative file id", []string{"--", "-70000"}, `file id "-70000" is not a positive integer`},
		{"an unknown flag", []string{"--fast", "70000"}, "unknown flag: --fast"},
		{"a server URL without a scheme", []string{"--server", "localhost:8080", "70000"}, "must be http:// or https://"},
		{"a bad timeout", []string{"--timeout", "soon", "70000"}, `invalid argument "soon"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := GetCommand(context.Background(), tc.args, &stdout, &stderr); code != ExitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, ExitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantErr)
			}
		})
	}
}

func TestGetHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := GetCommand(context.Background(), []string{"--help"}, &stdout, &stderr); code != ExitOK {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"usage: download-operator get", "--idempotency-key", "-o, --output", "Ctrl-C", "130 interrupted"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestGetServerDefaultsToTheEnvironment(t *testing.T) {
	t.Setenv(EnvServer, "http://from-env.invalid:1")
	g := &getCmd{stderr: &bytes.Buffer{}}
	f, err := g.parse([]string{"70000", "-o", "out.zip", "70007"})
	if err != nil {
		t.Fatal(err)
	}
	if f.server != "http://from-env.invalid:1" || f.output != "out.zip" || len(f.fileIDs) != 2 || f.fileIDs[1] != 70007 {
		t.Errorf("flags %+v: flags after the ids must still count", f)
	}
}
