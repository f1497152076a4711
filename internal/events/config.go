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

// Package events sends CloudEvents about Downloads (started, completed, failed) to the HTTP
// sinks the operator configured, signed with each sink's HMAC key. Sinks come from a file the
// controller reads at start, never from a request, so no client can make the cluster call an
// address of its choosing. Delivery is at-least-once: a queue per sink, retried with
// exponential backoff for a bounded time, filled without ever blocking a reconcile.
package events

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/yaml"
)

// AllNamespaces in a sink's namespaces sends it the events of every namespace the operator
// serves.
const AllNamespaces = "*"

// MinKeyBytes is the shortest HMAC key a sink accepts: 128 bits, so that nobody can guess it.
const MinKeyBytes = 16

// File is the sinks file (--event-sinks-file), YAML or JSON.
type File struct {
	Sinks []SinkConfig `json:"sinks"`
}

// SinkConfig is one sink as the file describes it.
type SinkConfig struct {
	// Name identifies the sink in metrics and logs; a DNS label.
	Name string `json:"name"`
	// Namespaces whose Downloads' events go to the sink: served namespaces, or "*" for all of them.
	Namespaces []string `json:"namespaces"`
	// URL receives each event as an HTTP POST (http or https).
	URL string `json:"url"`
	// HMACKeyFile holds the key that signs the sink's events (a mounted Secret key), used as
	// its bytes are, with nothing trimmed.
	HMACKeyFile string `json:"hmacKeyFile"`
}

// Sink is a validated sink with its key loaded.
type Sink struct {
	Name string
	URL  string
	key  []byte
	// all sends every served namespace's events; otherwise only those of namespaces.
	all        bool
	namespaces sets.Set[string]
	served     sets.Set[string]
}

// Wants tells whether the sink receives the events of Downloads in namespace.
func (s *Sink) Wants(namespace string) bool {
	if s.all {
		return s.served.Has(namespace)
	}
	return s.namespaces.Has(namespace)
}

// sinkName is a DNS label: it becomes a metric label, a log value and, in the chart, part of a
// mount path.
var sinkName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Load reads and validates the sinks file. served are the namespaces the operator serves: a sink
// may only name those, since no Download elsewhere ever runs. Every problem is reported at once,
// so that one start of the controller shows all that is wrong with the file.
func Load(path string, served sets.Set[string]) ([]Sink, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the event sinks file: %w", err)
	}
	var file File
	// Strict: a misspelt field (hmacKeyfile) must not silently leave a sink unsigned or unused.
	if err := yaml.UnmarshalStrict(raw, &file); err != nil {
		return nil, fmt.Errorf("parsing the event sinks file %s: %w", path, err)
	}
	if len(file.Sinks) == 0 {
		return nil, fmt.Errorf("the event sinks file %s lists no sinks", path)
	}
	var (
		sinks []Sink
		errs  []error
		names = sets.New[string]()
	)
	for i, config := range file.Sinks {
		sink, err := newSink(config, served)
		if err == nil && names.Has(config.Name) {
			err = errors.New("the name is used by an earlier sink")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sink %d (%q): %w", i, config.Name, err))
			continue
		}
		names.Insert(config.Name)
		sinks = append(sinks, sink)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("the event sinks file %s is invalid: %w", path, err)
	}
	return sinks, nil
}

func newSink(config SinkConfig, served sets.Set[string]) (Sink, error) {
	var errs []error
	if !sinkName.MatchString(config.Name) {
		errs = append(errs, fmt.Errorf("name %q is not a DNS label (lower-case letters, digits and '-', at most 63)", config.Name))
	}
	if err := validateURL(config.URL); err != nil {
		errs = append(errs, err)
	}
	sink := Sink{Name: config.Name, URL: config.URL, namespaces: sets.New[string](), served: served}
	if len(config.Namespaces) == 0 {
		errs = append(errs, errors.New(`namespaces is empty: list served namespaces, or "*" for all of them`))
	}
	for _, ns := range config.Namespaces {
		switch {
		case ns == AllNamespaces:
			sink.all = true
		case !served.Has(ns):
			errs = append(errs, fmt.Errorf("namespace %q is not served by the operator (served: %s)",
				ns, strings.Join(sets.List(served), ", ")))
		default:
			sink.namespaces.Insert(ns)
		}
	}
	key, err := readKey(config.HMACKeyFile)
	if err != nil {
		errs = append(errs, err)
	}
	sink.key = key
	return sink, errors.Join(errs...)
}

// validateURL accepts absolute http and https URLs without credentials: those belong in the
// Secret-backed key, not in a ConfigMap and the logs.
func validateURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("url is empty")
	case err != nil:
		return fmt.Errorf("url %q: %w", raw, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("url %q: the scheme must be http or https", raw)
	case u.Host == "":
		return fmt.Errorf("url %q has no host", raw)
	case u.User != nil:
		return fmt.Errorf("url %q carries credentials; the sink's HMAC key authenticates its events", u.Redacted())
	case u.Fragment != "":
		return fmt.Errorf("url %q has a fragment, which HTTP never sends", raw)
	}
	return nil
}

func readKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("hmacKeyFile is empty: every sink's events are signed")
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the HMAC key: %w", err)
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("the HMAC key in %s has %d bytes, want at least %d", path, len(key), MinKeyBytes)
	}
	return key, nil
}

// ParseBaseURL checks the facade's public base URL (--public-base-url), which makes the
// archive link in events absolute, and returns it without a trailing slash. Empty stays empty:
// events then carry the link's path only.
func ParseBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("--public-base-url=%q: want an http(s) URL such as https://downloads.example.com, without query or credentials", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}
