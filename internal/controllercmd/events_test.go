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
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/download-operator/download-operator/internal/controller"
)

// TestTheControllerRefusesBadEventSinks: a sinks file with a problem stops the controller at
// start (run checks the sinks before it connects to storage or the apiserver), with an error
// naming the flag, the sink and the problem.
func TestTheControllerRefusesBadEventSinks(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "hmacKey")
	empty := filepath.Join(dir, "empty")
	for path, content := range map[string]string{key: "0123456789abcdef", empty: ""} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sinksFile := func(url, keyFile string) string {
		path := filepath.Join(t.TempDir(), "sinks.yaml")
		content := "sinks:\n- name: audit\n  namespaces: [a]\n  url: " + url + "\n  hmacKeyFile: " + keyFile + "\n"
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for name, c := range map[string]struct {
		args []string
		want []string
	}{
		"a bad URL":          {[]string{"--event-sinks-file=" + sinksFile("gopher://h/", key)}, []string{"--event-sinks-file", `sink 0 ("audit")`, "scheme must be http or https"}},
		"an empty key":       {[]string{"--event-sinks-file=" + sinksFile("https://h/", empty)}, []string{`sink 0 ("audit")`, "has 0 bytes"}},
		"a missing key file": {[]string{"--event-sinks-file=" + sinksFile("https://h/", filepath.Join(dir, "nope"))}, []string{"reading the HMAC key"}},
		"a missing file":     {[]string{"--event-sinks-file=" + filepath.Join(dir, "nope.yaml")}, []string{"--event-sinks-file", "reading the event sinks file"}},
		"a bad base URL":     {[]string{"--public-base-url=downloads.example.com"}, []string{"--public-base-url"}},
		"no retries":         {[]string{"--event-sinks-file=" + sinksFile("https://h/", key), "--event-retry-for=0s"}, []string{"--event-retry-for=0s"}},
	} {
		t.Run(name, func(t *testing.T) {
			f := parseFlags(t, c.args...)
			_, _, err := f.eventSinks(mustOptions(t, f).Namespaces)
			if err == nil {
				t.Fatal("the controller started")
			}
			for _, want := range c.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
		})
	}

	t.Run("a good file", func(t *testing.T) {
		f := parseFlags(t, "--event-sinks-file="+sinksFile("https://hooks.example.test/x", key), "--public-base-url=https://dl.example.test/")
		sinks, opts, err := f.eventSinks(mustOptions(t, f).Namespaces)
		if err != nil {
			t.Fatal(err)
		}
		if len(sinks) != 1 || sinks[0].Name != "audit" || !sinks[0].Wants("a") || opts.PublicBaseURL != "https://dl.example.test" {
			t.Errorf("sinks %+v, options %+v", sinks, opts)
		}
	})
	t.Run("no file sends no events", func(t *testing.T) {
		f := parseFlags(t)
		if sinks, _, err := f.eventSinks(mustOptions(t, f).Namespaces); err != nil || sinks != nil {
			t.Errorf("sinks %v, err %v", sinks, err)
		}
	})
}

func mustOptions(t *testing.T, f Flags) controller.Options {
	t.Helper()
	opts, err := f.options()
	if err != nil {
		t.Fatal(err)
	}
	return opts
}
