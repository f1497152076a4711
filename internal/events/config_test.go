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

package events

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var served = sets.New("shop", "tenant-a", "tenant-b")

func TestLoadAcceptsYAMLAndJSON(t *testing.T) {
	dir := t.TempDir()
	key := writeFile(t, dir, "key", "0123456789abcdef0123")
	files := map[string]string{
		"sinks.yaml": `sinks:
- name: audit
  namespaces: ["*"]
  url: https://hooks.example.test/download-operator
  hmacKeyFile: ` + key + `
- name: shop
  namespaces: [shop, tenant-a]
  url: http://10.0.0.9:8080/
  hmacKeyFile: ` + key + "\n",
		"sinks.json": `{"sinks":[{"name":"audit","namespaces":["*"],"url":"https://hooks.example.test/download-operator","hmacKeyFile":"` + key +
			`"},{"name":"shop","namespaces":["shop","tenant-a"],"url":"http://10.0.0.9:8080/","hmacKeyFile":"` + key + `"}]}`,
	}
	for name, content := range files {
		t.Run(name, func(t *testing.T) {
			sinks, err := Load(writeFile(t, dir, name, content), served)
			if err != nil {
				t.Fatal(err)
			}
			if len(sinks) != 2 || sinks[0].Name != "audit" || sinks[1].Name != "shop" {
				t.Fatalf("sinks = %+v", sinks)
			}
			if string(sinks[0].key) != "0123456789abcdef0123" {
				t.Errorf("key = %q: the file's bytes must be used as they are", sinks[0].key)
			}
			for _, c := range []struct {
				sink      int
				namespace string
				want      bool
			}{
				{0, "shop", true}, {0, "tenant-b", true}, {0, "kube-system", false},
				{1, "shop", true}, {1, "tenant-a", true}, {1, "tenant-b", false},
			} {
				if got := sinks[c.sink].Wants(c.namespace); got != c.want {
					t.Errorf("sink %s wants %s = %v, want %v", sinks[c.sink].Name, c.namespace, got, c.want)
				}
			}
		})
	}
}

// TestLoadRefusesBadSinks proves that every mistake stops the controller at start with an
// error naming the sink and the problem, and that one load reports them all.
func TestLoadRefusesBadSinks(t *testing.T) {
	dir := t.TempDir()
	key := writeFile(t, dir, "key", "0123456789abcdef")
	empty := writeFile(t, dir, "empty", "")
	short := writeFile(t, dir, "short", "tooshort")
	sink := func(name, namespaces, url, keyFile string) string {
		return "- name: " + name + "\n  namespaces: " + namespaces + "\n  url: " + url + "\n  hmacKeyFile: " + keyFile + "\n"
	}
	cases := map[string]struct {
		file string
		want []string
	}{
		"a scheme other than http(s)": {"sinks:\n" + sink("a", `["*"]`, "ftp://host/x", key), []string{`sink 0 ("a")`, "scheme must be http or https"}},
		"no host":                     {"sinks:\n" + sink("a", `["*"]`, "http:///x", key), []string{"has no host"}},
		"credentials in the URL":      {"sinks:\n" + sink("a", `["*"]`, "https://user:secret@host/", key), []string{"carries credentials"}},
		"no URL":                      {"sinks:\n" + sink("a", `["*"]`, `""`, key), []string{"url is empty"}},
		"a missing key file":          {"sinks:\n" + sink("a", `["*"]`, "https://h/", filepath.Join(dir, "nope")), []string{"reading the HMAC key", "no such file"}},
		"an empty key":                {"sinks:\n" + sink("a", `["*"]`, "https://h/", empty), []string{"has 0 bytes, want at least 16"}},
		"a short key":                 {"sinks:\n" + sink("a", `["*"]`, "https://h/", short), []string{"has 8 bytes, want at least 16"}},
		"no key file":                 {"sinks:\n" + sink("a", `["*"]`, "https://h/", `""`), []string{"hmacKeyFile is empty"}},
		"an unserved namespace":       {"sinks:\n" + sink("a", `[shop, kube-system]`, "https://h/", key), []string{`namespace "kube-system" is not served`}},
		"no namespaces":               {"sinks:\n" + sink("a", `[]`, "https://h/", key), []string{"namespaces is empty"}},
		"a name that is no DNS label": {"sinks:\n" + sink("Audit_Log", `["*"]`, "https://h/", key), []string{`name "Audit_Log" is not a DNS label`}},
		"a name used twice":           {"sinks:\n" + sink("a", `["*"]`, "https://h/", key) + sink("a", `["*"]`, "https://g/", key), []string{`sink 1 ("a")`, "used by an earlier sink"}},
		"a misspelt field":            {"sinks:\n- name: a\n  namespaces: [\"*\"]\n  url: https://h/\n  hmacKey: " + key + "\n", []string{`unknown field "hmacKey"`}},
		"no sinks":                    {"sinks: []\n", []string{"lists no sinks"}},
		"every problem at once": {"sinks:\n" + sink("a", `["*"]`, "ftp://h/", key) + sink("b", `[nowhere]`, "https://h/", empty),
			[]string{`sink 0 ("a")`, "scheme", `sink 1 ("b")`, `"nowhere" is not served`, "has 0 bytes"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeFile(t, t.TempDir(), "sinks.yaml", c.file), served)
			if err == nil {
				t.Fatal("the sinks file was accepted")
			}
			for _, want := range c.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q:\n%v", want, err)
				}
			}
			if strings.Contains(err.Error(), "secret@") {
				t.Errorf("the error shows the URL's password: %v", err)
			}
		})
	}
	t.Run("a missing file", func(t *testing.T) {
		if _, err := Load(filepath.Join(dir, "absent.yaml"), served); err == nil || !strings.Contains(err.Error(), "reading the event sinks file") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestParseBaseURL(t *testing.T) {
	for raw, want := range map[string]string{
		"":                               "",
		"https://downloads.example.com/": "https://downloads.example.com",
		"http://127.0.0.1:8080":          "http://127.0.0.1:8080",
		"https://example.com/dl/":        "https://example.com/dl",
	} {
		if got, err := ParseBaseURL(raw); err != nil || got != want {
			t.Errorf("ParseBaseURL(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{"downloads.example.com", "ftp://x", "https://x/?a=b", "https://u:p@x/"} {
		if _, err := ParseBaseURL(raw); err == nil || !strings.Contains(err.Error(), "--public-base-url") {
			t.Errorf("ParseBaseURL(%q) = %v, want an error naming the flag", raw, err)
		}
	}
}
