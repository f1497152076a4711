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

package chart_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// schemaKubeVersion is the chart's lowest supported Kubernetes (Chart.yaml kubeVersion). The
// schema tests only render, so they pass it instead of starting an envtest apiserver.
const schemaKubeVersion = "1.30.0"

// schemaError is how helm starts every refusal by values.schema.json, which tells a schema
// refusal from a template's fail or required.
const schemaError = "values don't meet the specifications of the schema"

// helmOwned are schema properties that Helm, not this chart, defines: a parent chart passes
// global to its subcharts. values.yaml and the README leave them out.
var helmOwned = map[string]bool{"global": true}

// everyValue sets every value the schema knows, mostly away from its default, so that the
// acceptance tests prove each rule accepts a real setting and not only the default.
func everyValue() map[string]any {
	values := fullValues("extra-ns")
	storage := values["storage"].(map[string]any)
	// Ignored beside existingSecret, but still checked by the schema.
	storage["accessKey"] = "download-operator"
	storage["secretKey"] = "not-a-real-secret"
	return merge(values, map[string]any{
		"image": map[string]any{
			"repository": "registry.example.test/download-operator", "tag": "0.1.1",
			"digest": "sha256:" + strings.Repeat("ab", 32), "pullPolicy": "Always",
		},
		"imagePullSecrets": []any{map[string]any{"name": "regcred"}},
		"nameOverride":     "dlop",
		"fullnameOverride": "dlop-download-operator",
		"storage": map[string]any{
			"secure": true, "region": "eu-west-1", "sourceBucket": "source-files",
			"sourceKeyTemplate": "files/{id}.bin", "archiveBucket": "archives",
			"sts": map[string]any{
				"endpoint": "https://sts.eu-west-1.amazonaws.com",
				"roleArn":  "arn:aws:iam::123456789012:role/download-operator-worker",
			},
		},
		"reuse": map[string]any{"scope": "Cluster"},
		"kueue": map[string]any{"queueName": "shared", "namespaceQueueNames": map[string]any{releaseNamespace: "tenant-a"}},
		"controller": map[string]any{
			"replicas": 3, "leaderElect": true, "logLevel": 2, "maxConcurrentReconciles": 8,
			"resources": map[string]any{"requests": map[string]any{"cpu": 0.1, "memory": "128Mi"}},
			"worker": map[string]any{
				"image": "registry.example.test/download-operator-worker:0.1.1", "cpuRequest": "250m",
				"memoryRequest": "128Mi", "cpuLimit": 2, "memoryLimit": "1Gi",
			},
			"metrics":        map[string]any{"enabled": true, "port": 9443, "secure": false},
			"service":        map[string]any{"clusterIP": controllerClusterIP},
			"extraArgs":      []any{"--enable-http2"},
			"podAnnotations": map[string]any{"example.test/owner": "platform"},
			"nodeSelector":   map[string]any{"kubernetes.io/os": "linux"},
			"tolerations":    []any{map[string]any{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}},
			"affinity":       map[string]any{"nodeAffinity": map[string]any{}},
		},
		"facade": map[string]any{
			"replicas": 3, "controllerURL": "http://10.0.0.80:8082", "corsOrigins": "https://shop.example.test",
			"trustedProxies": []any{"10.244.0.0/16", "192.0.2.10", "fd00::/8"}, "clientIdSecret": "client-id-key",
			"rateLimit": 2.5, "rateBurst": 5, "maxActivePerClient": 3, "maxBytesPerSecond": 1048576,
			"maxConnections": 0, "maxConnectionsPerClient": 16, "maxStreamsPerClient": 2,
			"sseHeartbeat": "30s", "uiDir": "/ui",
			"resources": map[string]any{"limits": map[string]any{"cpu": "2", "memory": "512Mi"}},
			"ingress": map[string]any{"hosts": []any{map[string]any{
				"host":  "downloads.example.test",
				"paths": []any{map[string]any{"path": "/v1", "pathType": "ImplementationSpecific"}},
			}}},
			"service":             map[string]any{"port": 8080},
			"podDisruptionBudget": map[string]any{"enabled": true, "minAvailable": "50%"},
			"extraArgs":           []any{},
			"podAnnotations":      map[string]any{"example.test/owner": "platform"},
			"nodeSelector":        map[string]any{"kubernetes.io/os": "linux"},
			"tolerations":         []any{map[string]any{"key": "dedicated", "operator": "Exists"}},
			"affinity":            map[string]any{"podAntiAffinity": map[string]any{}},
		},
		"serviceMonitor": map[string]any{"interval": "1m30s"},
		"alerts": map[string]any{
			"enabled": true, "labels": map[string]any{"release": "prometheus"},
			"ruleLabels": map[string]any{"team": "storage"}, "disabled": []any{"DownloadOperatorOldestPendingDownload"},
		},
		"tracing": map[string]any{
			"endpoint": "http://otel-collector.observability:4317", "protocol": "grpc",
			"env": []any{map[string]any{"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_traceidratio"}},
		},
		"events": map[string]any{
			"publicBaseUrl": "https://downloads.example.test", "retryFor": "30m", "queueSize": 50,
		},
		"dashboards": map[string]any{
			"label": "grafana_dashboard", "labelValue": "yes", "namespace": "monitoring",
			"annotations": map[string]any{"grafana_folder": "Operators"},
		},
		"networkPolicy": map[string]any{"metricsFrom": []any{map[string]any{
			"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}},
		}}},
		"global": map[string]any{"imageRegistry": "registry.example.test"},
	})
}

// TestSchemaAcceptsValidValues proves that values.schema.json lets the chart's own defaults
// (with the required values) and a setting of every value through `helm lint --strict` and
// `helm template`, and that the required values keep the chart's own message.
func TestSchemaAcceptsValidValues(t *testing.T) {
	helmBin(t)
	every := everyValue()
	if missing := missingPaths(schemaLeaves(t), every); len(missing) > 0 {
		t.Fatalf("everyValue sets no value for %v: give each schema value an example here", missing)
	}
	for name, values := range map[string]map[string]any{
		"the defaults with the required values": requiredValues(),
		"every value set":                       every,
	} {
		t.Run(name, func(t *testing.T) {
			file := valuesFile(t, values)
			stdout, stderr, err := helm(t, "lint", "--strict", chartDir(), "--namespace", releaseNamespace,
				"--kube-version", schemaKubeVersion, "-f", file)
			if err != nil || !strings.Contains(stdout, "0 chart(s) failed") {
				t.Fatalf("helm lint --strict failed: %v\n%s\n%s", err, stdout, stderr)
			}
			if _, stderr, err := helm(t, "template", release, chartDir(), "--namespace", releaseNamespace,
				"--kube-version", schemaKubeVersion, "-f", file); err != nil {
				t.Fatalf("helm template failed: %v\n%s", err, stderr)
			}
		})
	}

	t.Run("the defaults alone lint", func(t *testing.T) {
		// Lint without --strict renders with the defaults only: the schema must accept
		// values.yaml as it ships.
		stdout, stderr, err := helm(t, "lint", chartDir(), "--kube-version", schemaKubeVersion)
		if err != nil || strings.Contains(stdout+stderr, schemaError) {
			t.Fatalf("helm lint of the bare chart failed: %v\n%s\n%s", err, stdout, stderr)
		}
	})

	t.Run("a missing required value fails with the chart's message", func(t *testing.T) {
		_, stderr, err := helm(t, "template", release, chartDir(), "--namespace", releaseNamespace,
			"--kube-version", schemaKubeVersion)
		if err == nil {
			t.Fatal("helm template rendered without storage.endpoint")
		}
		if strings.Contains(stderr, schemaError) || !strings.Contains(stderr, "storage.endpoint is required") {
			t.Fatalf("want the chart's required message for storage.endpoint, not a schema error: %s", stderr)
		}
	})
}

// TestSchemaRefusesInvalidValues proves that `helm lint` and `helm template` both fail on a
// value the schema refuses, with a message naming the value.
func TestSchemaRefusesInvalidValues(t *testing.T) {
	helmBin(t)
	with := func(overlay map[string]any) map[string]any { return merge(requiredValues(), overlay) }
	storageWith := func(key string, value any) map[string]any {
		values := requiredValues()
		values["storage"].(map[string]any)[key] = value
		return values
	}
	for name, c := range map[string]struct {
		values map[string]any
		want   []string
	}{
		"a wrong type": {with(map[string]any{"controller": map[string]any{"replicas": "two"}}),
			[]string{"'/controller/replicas'", "want integer"}},
		"an unknown storage setting": {storageWith("endpoints", "minio:9000"),
			[]string{"'/storage'", "'endpoints' not allowed"}},
		"an invalid enum": {with(map[string]any{"reuse": map[string]any{"scope": "Everything"}}),
			[]string{"'/reuse/scope'", "'Off', 'Namespace', 'Cluster'"}},
		"a queue name that is no label value": {with(map[string]any{"kueue": map[string]any{"namespaceQueueNames": map[string]any{"tenant-a": "tenant/a"}}}),
			[]string{"'/kueue/namespaceQueueNames/tenant-a'", "does not match pattern"}},
		"an unknown top-level value": {with(map[string]any{"storag": map[string]any{"endpoint": "minio:9000"}}),
			[]string{"'storag' not allowed"}},
		"a scheme in storage.endpoint": {storageWith("endpoint", "http://minio:9000"),
			[]string{"'/storage/endpoint'", "does not match pattern"}},
		"no scheme in storage.publicEndpoint": {storageWith("publicEndpoint", "files.example.test"),
			[]string{"'/storage/publicEndpoint'", "does not match pattern"}},
		"an unknown log level": {with(map[string]any{"controller": map[string]any{"logLevel": "verbose"}}),
			[]string{"'/controller/logLevel'"}},
		"a negative connection cap": {with(map[string]any{"facade": map[string]any{"maxConnections": -1}}),
			[]string{"'/facade/maxConnections'", "minimum"}},
		"a map where a list goes": {with(map[string]any{"facade": map[string]any{"tolerations": map[string]any{}}}),
			[]string{"'/facade/tolerations'", "want array"}},
		"an unknown sink setting": {with(map[string]any{"events": map[string]any{"sinks": []any{map[string]any{
			"name": "audit", "namespaces": []any{"*"}, "url": "https://hooks.example.test/", "secretName": "audit-hmac",
			"secret": "audit-hmac",
		}}}}), []string{"'/events/sinks/0'", "'secret' not allowed"}},
	} {
		t.Run(name, func(t *testing.T) {
			file := valuesFile(t, c.values)
			for _, args := range [][]string{
				{"lint", chartDir()},
				{"template", release, chartDir()},
			} {
				args = append(args, "--namespace", releaseNamespace, "--kube-version", schemaKubeVersion, "-f", file)
				stdout, stderr, err := helm(t, args...)
				if err == nil {
					t.Fatalf("helm %s accepted the values:\n%s", args[0], stdout)
				}
				for _, want := range append([]string{schemaError}, c.want...) {
					if !strings.Contains(stdout+stderr, want) {
						t.Errorf("helm %s failed without saying %q:\n%s\n%s", args[0], want, stdout, stderr)
					}
				}
			}
		})
	}
}

// TestSchemaCoversValuesYAML proves that every value in values.yaml is in the schema, and that
// the schema holds nothing values.yaml lacks.
func TestSchemaCoversValuesYAML(t *testing.T) {
	values := parseChartFile(t, "values.yaml", func(raw []byte, v any) error { return yaml.Unmarshal(raw, v) })
	schema := loadSchema(t)
	inYAML := map[string]bool{}
	var walk func(node map[string]any, values map[string]any, prefix string)
	walk = func(node map[string]any, values map[string]any, prefix string) {
		props, _ := node["properties"].(map[string]any)
		for key, value := range values {
			path := prefix + key
			child, ok := props[key].(map[string]any)
			if !ok {
				t.Errorf("values.yaml has %s, the schema does not", path)
				continue
			}
			if !closedObject(child) {
				inYAML[path] = true
				continue
			}
			nested, ok := value.(map[string]any)
			if !ok {
				t.Errorf("values.yaml sets %s to %v, the schema wants an object", path, value)
				continue
			}
			walk(child, nested, path+".")
		}
	}
	walk(schema, values, "")
	for _, leaf := range schemaLeaves(t) {
		if !inYAML[leaf] && !helmOwned[leaf] {
			t.Errorf("the schema has %s, values.yaml does not", leaf)
		}
	}
}

// TestChartREADMEMatchesSchema proves that the chart README's values table documents exactly the
// schema's values. A row names one key in full and may go on with siblings that replace its
// last segments: "`storage.sts.endpoint`, `sts.roleArn`" documents storage.sts.roleArn too.
func TestChartREADMEMatchesSchema(t *testing.T) {
	documented := readmeValues(t, filepath.Join(chartDir(), "README.md"))
	leaves := schemaLeaves(t)
	for _, key := range documented {
		if !slices.Contains(leaves, key) {
			t.Errorf("the README documents %s, which the schema does not have", key)
		}
	}
	for _, leaf := range leaves {
		if !slices.Contains(documented, leaf) && !helmOwned[leaf] {
			t.Errorf("the README's values table lacks %s", leaf)
		}
	}
}

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	return parseChartFile(t, "values.schema.json", json.Unmarshal)
}

// parseChartFile reads the chart's file name and parses it with unmarshal.
func parseChartFile(t *testing.T, name string, unmarshal func([]byte, any) error) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(chartDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	var parsed map[string]any
	if err := unmarshal(raw, &parsed); err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return parsed
}

// closedObject tells an object with fixed keys, whose properties are values of their own, from
// a leaf: a scalar, a list, or an open map such as podAnnotations or resources.
func closedObject(node map[string]any) bool {
	_, hasProps := node["properties"]
	return node["type"] == "object" && node["additionalProperties"] == false && hasProps
}

// schemaLeaves lists the dotted paths of the schema's values, sorted.
func schemaLeaves(t *testing.T) []string {
	t.Helper()
	var leaves []string
	var walk func(node map[string]any, prefix string)
	walk = func(node map[string]any, prefix string) {
		for key, child := range node["properties"].(map[string]any) {
			childNode := child.(map[string]any)
			if closedObject(childNode) {
				walk(childNode, prefix+key+".")
			} else {
				leaves = append(leaves, prefix+key)
			}
		}
	}
	schema := loadSchema(t)
	if !closedObject(schema) {
		t.Fatal("the schema's root is not an object with fixed keys (additionalProperties: false)")
	}
	walk(schema, "")
	slices.Sort(leaves)
	return leaves
}

// missingPaths lists the dotted paths that values does not set.
func missingPaths(paths []string, values map[string]any) []string {
	var missing []string
	for _, path := range paths {
		var node any = values
		for _, key := range strings.Split(path, ".") {
			m, _ := node.(map[string]any)
			node = m[key]
		}
		if node == nil {
			missing = append(missing, path)
		}
	}
	return missing
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// readmeValues reads the keys of the table under "## Values" in the README at path.
func readmeValues(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var keys []string
	inSection := false
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := scanner.Text()
		if strings.HasPrefix(line, "#") {
			inSection = strings.TrimSpace(line) == "## Values"
			continue
		}
		if !inSection || !strings.HasPrefix(line, "|") {
			continue
		}
		cell := strings.TrimSpace(strings.Split(line, "|")[1])
		if cell == "key" || strings.HasPrefix(cell, "---") {
			continue
		}
		rowKeys, err := rowValues(cell)
		if err != nil {
			t.Errorf("README values table: %v", err)
		}
		keys = append(keys, rowKeys...)
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatalf("%s has no values table under \"## Values\"", path)
	}
	return keys
}

// rowValues expands a key cell of the values table: the first code span is a full key, each
// further one replaces as many trailing segments of it.
func rowValues(cell string) ([]string, error) {
	spans := codeSpan.FindAllStringSubmatch(cell, -1)
	if len(spans) == 0 {
		return nil, fmt.Errorf("the row %q names no key in backticks", cell)
	}
	first := strings.Split(spans[0][1], ".")
	keys := []string{spans[0][1]}
	for _, span := range spans[1:] {
		rel := strings.Split(span[1], ".")
		if len(rel) > len(first) {
			return nil, fmt.Errorf("in the row %q, %q has more segments than %q", cell, span[1], spans[0][1])
		}
		keys = append(keys, strings.Join(append(slices.Clone(first[:len(first)-len(rel)]), rel...), "."))
	}
	return keys, nil
}
