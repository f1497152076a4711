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
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/yaml"

	"github.com/download-operator/download-operator/internal/events"
)

// eventValues configures two sinks: one for every served namespace, one for a single namespace
// with a Secret key of its own name.
func eventValues() map[string]any {
	return merge(requiredValues(), map[string]any{
		"namespaces": []any{"shop"},
		"events": map[string]any{
			"publicBaseUrl": "https://downloads.example.test",
			"retryFor":      "30m",
			"queueSize":     500,
			"sinks": []any{
				map[string]any{"name": "billing", "namespaces": []any{"*"}, "url": "https://hooks.example.test/dl", "secretName": "billing-hmac"},
				map[string]any{"name": "shop", "namespaces": []any{"shop"}, "url": "http://10.0.0.9:8091/", "secretName": "shop-hmac", "secretKey": "key"},
			},
		},
	})
}

// argValue returns the value of --name=value in args, or "".
func argValue(args []string, name string) string {
	for _, arg := range args {
		if value, ok := strings.CutPrefix(arg, "--"+name+"="); ok {
			return value
		}
	}
	return ""
}

// TestEventSinksReachTheController renders sinks and follows them as the controller will: the
// flag names a file in the mounted ConfigMap, the file is the schema internal/events reads, and
// each sink's key file lies in a read-only mount of that sink's Secret. Recreating the mounts
// in a temporary directory, events.Load accepts the result.
func TestEventSinksReachTheController(t *testing.T) {
	helmBin(t)
	objs := parseManifests(t, mustTemplate(t, release, releaseNamespace, eventValues()))
	deploy := convert[appsv1.Deployment](t, find(t, objs, kindDeployment, releaseNamespace, fullname+"-controller"))
	configMap := convert[corev1.ConfigMap](t, find(t, objs, "ConfigMap", releaseNamespace, fullname+"-controller-event-sinks"))
	pod := deploy.Spec.Template.Spec
	container := pod.Containers[0]

	requireArgs(t, "controller", container.Args,
		"--public-base-url=https://downloads.example.test", "--event-retry-for=30m", "--event-queue-size=500")
	sinksFile := argValue(container.Args, "event-sinks-file")
	if sinksFile == "" {
		t.Fatalf("no --event-sinks-file in %v", container.Args)
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	// mounted finds the mount holding path and returns its volume and the path inside it.
	mounted := func(path string) (corev1.Volume, string) {
		t.Helper()
		for _, m := range container.VolumeMounts {
			if rest, ok := strings.CutPrefix(path, m.MountPath+"/"); ok {
				if !m.ReadOnly {
					t.Errorf("mount %s is writable", m.MountPath)
				}
				return volumes[m.Name], rest
			}
		}
		t.Fatalf("nothing is mounted at %s", path)
		return corev1.Volume{}, ""
	}
	volume, name := mounted(sinksFile)
	if volume.ConfigMap == nil || volume.ConfigMap.Name != configMap.Name || configMap.Data[name] == "" {
		t.Fatalf("--event-sinks-file=%s is not the ConfigMap's %s: volume %+v", sinksFile, name, volume)
	}

	var file events.File
	if err := yaml.UnmarshalStrict([]byte(configMap.Data[name]), &file); err != nil {
		t.Fatalf("the sinks file is not what internal/events reads: %v\n%s", err, configMap.Data[name])
	}
	wantSecrets := map[string][2]string{"billing": {"billing-hmac", "hmacKey"}, "shop": {"shop-hmac", "key"}}
	if len(file.Sinks) != len(wantSecrets) {
		t.Fatalf("%d sinks rendered, want %d", len(file.Sinks), len(wantSecrets))
	}
	for _, sink := range file.Sinks {
		volume, key := mounted(sink.HMACKeyFile)
		want := wantSecrets[sink.Name]
		if volume.Secret == nil || volume.Secret.SecretName != want[0] || len(volume.Secret.Items) != 1 ||
			volume.Secret.Items[0].Key != want[1] || volume.Secret.Items[0].Path != key {
			t.Errorf("sink %s: key file %s is not key %s of Secret %s: %+v", sink.Name, sink.HMACKeyFile, want[1], want[0], volume)
		}
	}

	// The controller's own check, on the rendered file with the mounts recreated under root.
	root := t.TempDir()
	rendered := strings.ReplaceAll(configMap.Data[name], "/etc/download-operator/", root+"/etc/download-operator/")
	for _, sink := range file.Sinks {
		path := filepath.Join(root, sink.HMACKeyFile)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("a key of sixteen bytes or more"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(root, "sinks.yaml")
	if err := os.WriteFile(path, []byte(rendered), 0o600); err != nil {
		t.Fatal(err)
	}
	served := sets.New(strings.Split(argValue(container.Args, "namespaces"), ",")...)
	sinks, err := events.Load(path, served)
	if err != nil {
		t.Fatalf("the controller would refuse the chart's sinks: %v", err)
	}
	if !sinks[0].Wants(releaseNamespace) || !sinks[0].Wants("shop") || sinks[1].Wants(releaseNamespace) || !sinks[1].Wants("shop") {
		t.Errorf("the sinks want the wrong namespaces: %+v", sinks)
	}

	t.Run("changed sinks roll the controller", func(t *testing.T) {
		changed := eventValues()
		changed["events"].(map[string]any)["sinks"].([]any)[0].(map[string]any)["url"] = "https://hooks.example.test/v2"
		objs := parseManifests(t, mustTemplate(t, release, releaseNamespace, changed))
		other := convert[appsv1.Deployment](t, find(t, objs, kindDeployment, releaseNamespace, fullname+"-controller"))
		before, after := deploy.Spec.Template.Annotations["checksum/event-sinks"], other.Spec.Template.Annotations["checksum/event-sinks"]
		if before == "" || before == after {
			t.Errorf("checksum/event-sinks = %q then %q: want one that changes with the sinks", before, after)
		}
	})
}

func TestNoEventSinksByDefault(t *testing.T) {
	helmBin(t)
	objs := parseManifests(t, mustTemplate(t, release, releaseNamespace, requiredValues()))
	if cms := ofKind(objs, "ConfigMap"); len(cms) != 0 {
		t.Errorf("ConfigMaps rendered without sinks: %s", cms[0].GetName())
	}
	deploy := convert[appsv1.Deployment](t, find(t, objs, kindDeployment, releaseNamespace, fullname+"-controller"))
	for _, arg := range deploy.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(arg, "--event-") || strings.HasPrefix(arg, "--public-base-url") {
			t.Errorf("the controller gets %s without sinks", arg)
		}
	}
	if n := len(deploy.Spec.Template.Spec.Volumes); n != 1 {
		t.Errorf("the controller mounts %d volumes without sinks, want 1 (tmp)", n)
	}
}

// TestEventSinksAreCheckedAtRender: each mistake the controller would refuse at start fails the
// render instead, naming the sink and the problem.
func TestEventSinksAreCheckedAtRender(t *testing.T) {
	helmBin(t)
	sink := func(mutate func(map[string]any)) map[string]any {
		values := eventValues()
		mutate(values["events"].(map[string]any)["sinks"].([]any)[1].(map[string]any))
		return values
	}
	for name, c := range map[string]struct {
		values map[string]any
		want   string
	}{
		"a scheme other than http(s)": {sink(func(s map[string]any) { s["url"] = "ftp://hooks/" }), `events.sinks[1].url must be an http:// or https:// URL`},
		"credentials in the URL":      {sink(func(s map[string]any) { s["url"] = "https://user:pw@hooks/" }), `got "https://***@hooks/"`},
		"no Secret":                   {sink(func(s map[string]any) { delete(s, "secretName") }), "events.sinks[1].secretName is required"},
		"an unserved namespace":       {sink(func(s map[string]any) { s["namespaces"] = []any{"elsewhere"} }), `events.sinks[1].namespaces: "elsewhere" is not served`},
		"no namespaces":               {sink(func(s map[string]any) { s["namespaces"] = []any{} }), "events.sinks[1].namespaces must list served namespaces"},
		"a name used twice":           {sink(func(s map[string]any) { s["name"] = "billing" }), `events.sinks[1].name "billing" is used by an earlier sink`},
		"a name that is no DNS label": {sink(func(s map[string]any) { s["name"] = "Shop_Hook" }), "events.sinks[1].name must be a DNS label"},
		"a relative base URL": {merge(eventValues(), map[string]any{"events": map[string]any{"publicBaseUrl": "downloads.example.test"}}),
			"events.publicBaseUrl must start with http:// or https://"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := helmTemplate(t, release, releaseNamespace, c.values)
			if err == nil {
				t.Fatal("the chart rendered")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("the error does not say %q: %v", c.want, err)
			}
			if strings.Contains(err.Error(), "user:pw") {
				t.Errorf("the error shows the URL's credentials: %v", err)
			}
		})
	}
}
