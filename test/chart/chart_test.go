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

// Package chart_test proves the Helm chart in charts/download-operator against the real helm
// binary and a real kube-apiserver (envtest): it lints, its required values fail loudly, every
// rendered object passes a server-side dry run in a namespace enforcing the restricted Pod
// Security Standard, and its RBAC grants what each identity needs and nothing more, as the
// apiserver's own RBAC authorizer answers `kubectl auth can-i`.
package chart_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	release  = "dlop"
	fullname = "dlop-download-operator"
	// releaseNamespace is where renders that are never applied pretend to install.
	releaseNamespace = "download-operator"
	// controllerClusterIP lies in envtest's service CIDR, 10.0.0.0/24.
	controllerClusterIP = "10.0.0.80"
)

// fullValues turns on every optional object: Ingress, NetworkPolicies, ServiceMonitors, the
// Grafana dashboard, a NodePort Service, a fixed controller ClusterIP, an extra served namespace,
// an event sink and an existing storage Secret instead of chart-managed credentials.
func fullValues(extraNamespace string) map[string]any {
	values := requiredValues()
	storage := values["storage"].(map[string]any)
	delete(storage, "accessKey")
	delete(storage, "secretKey")
	storage["existingSecret"] = existingSecret
	storage["signingSecret"] = signingSecret
	return merge(values, map[string]any{
		"namespaces": []any{extraNamespace},
		"controller": map[string]any{"service": map[string]any{"clusterIP": controllerClusterIP}},
		"facade": map[string]any{
			"service": map[string]any{"type": "NodePort", "nodePort": 30080},
			"ingress": map[string]any{
				"enabled":   true,
				"className": "nginx",
				"annotations": map[string]any{
					"nginx.ingress.kubernetes.io/proxy-buffering":    "off",
					"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
				},
				"tls": []any{map[string]any{"secretName": "downloads-tls", "hosts": []any{"downloads.example.test"}}},
			},
		},
		"networkPolicy":  map[string]any{"enabled": true},
		"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
		"dashboards":     map[string]any{"enabled": true},
		"events": map[string]any{"sinks": []any{map[string]any{
			"name": "audit", "namespaces": []any{"*"}, "url": "https://hooks.example.test/", "secretName": "audit-hmac",
		}}},
	})
}

// TestLintAndRequiredValues proves that `helm lint --strict` is clean with the required values,
// and that each missing required value fails the render with a message naming it.
func TestLintAndRequiredValues(t *testing.T) {
	helmBin(t)
	for name, values := range map[string]map[string]any{
		"required values": requiredValues(),
		"every option on": fullValues("extra-ns"),
	} {
		t.Run("lint "+name, func(t *testing.T) {
			stdout, stderr, err := helm(t, "lint", "--strict", chartDir(),
				"--namespace", releaseNamespace, "--kube-version", kubeVersion(t), "-f", valuesFile(t, values))
			if err != nil || !strings.Contains(stdout, "0 chart(s) failed") {
				t.Fatalf("helm lint --strict failed: %v\n%s\n%s", err, stdout, stderr)
			}
			for _, line := range strings.Split(stdout, "\n") {
				// [INFO] lines (e.g. "icon is recommended") are advice; anything stronger is not.
				if strings.HasPrefix(line, "[WARNING]") || strings.HasPrefix(line, "[ERROR]") {
					t.Errorf("helm lint: %s", line)
				}
			}
		})
	}

	without := func(key string) map[string]any {
		values := requiredValues()
		delete(values["storage"].(map[string]any), key)
		return values
	}
	for _, key := range []string{"endpoint", "publicEndpoint", "accessKey", "secretKey"} {
		t.Run("missing storage."+key, func(t *testing.T) {
			_, err := helmTemplate(t, release, releaseNamespace, without(key))
			if err == nil {
				t.Fatalf("helm template succeeded without storage.%s", key)
			}
			if !strings.Contains(err.Error(), "storage."+key+" is required") {
				t.Fatalf("the error does not name storage.%s: %v", key, err)
			}
			t.Logf("failed as expected: %v", err)
		})
	}

	t.Run("existingSecret replaces the credentials", func(t *testing.T) {
		values := without("accessKey")
		storage := values["storage"].(map[string]any)
		delete(storage, "secretKey")
		storage["existingSecret"] = existingSecret
		objs := parseManifests(t, mustTemplate(t, release, releaseNamespace, values))
		if secrets := storageSecrets(objs); len(secrets) != 0 {
			t.Errorf("the chart rendered a Secret although storage.existingSecret is set: %s", secrets[0].GetName())
		}
		deploy := convert[appsv1.Deployment](t, find(t, objs, kindDeployment, releaseNamespace, fullname+"-controller"))
		for _, env := range deploy.Spec.Template.Spec.Containers[0].Env {
			if ref := env.ValueFrom; ref != nil && ref.SecretKeyRef != nil && ref.SecretKeyRef.Name != existingSecret {
				t.Errorf("env %s reads Secret %s, want my-storage", env.Name, ref.SecretKeyRef.Name)
			}
		}
	})

	t.Run("the operator's key stays in the release namespace", func(t *testing.T) {
		values := merge(requiredValues(), map[string]any{"namespaces": []any{"tenant-a", "tenant-b"}})
		objs := parseManifests(t, mustTemplate(t, release, releaseNamespace, values))
		secrets := storageSecrets(objs)
		if len(secrets) != 1 || secrets[0].GetNamespace() != releaseNamespace {
			var where []string
			for _, s := range secrets {
				where = append(where, s.GetNamespace()+"/"+s.GetName())
			}
			t.Errorf("storage Secrets rendered at %v, want exactly one, in %s", where, releaseNamespace)
		}
	})
}

// TestServerDryRunUnderRestrictedPodSecurity applies every rendered object with a server-side
// dry run into namespaces enforcing the restricted Pod Security Standard. The PodSecurity
// admission plugin warns about non-compliant Pod templates of Deployments, and
// --warnings-as-errors turns such a warning into a failure. A negative control proves the gate
// is live: the same facade Deployment without its security contexts must be refused.
//
// ServiceMonitors are left out of the dry run: envtest has no monitoring.coreos.com CRD, and a
// stub CRD that preserves unknown fields would accept anything and prove nothing. Their content
// is checked field by field in TestRenderedManifests instead.
func TestServerDryRunUnderRestrictedPodSecurity(t *testing.T) {
	cp := cluster(t)
	dryRun := func(t *testing.T, manifests string) (string, error) {
		t.Helper()
		stdout, stderr, err := cp.kubectl(t, manifests,
			"apply", "--dry-run=server", "--warnings-as-errors", "-f", "-")
		if err != nil {
			return stderr, err
		}
		if strings.TrimSpace(stderr) != "" {
			t.Errorf("kubectl printed to stderr:\n%s", stderr)
		}
		return stdout, nil
	}

	cases := map[string]func(extra string) map[string]any{
		"defaults":        func(string) map[string]any { return requiredValues() },
		"every option on": fullValues,
	}
	for name, values := range cases {
		t.Run(name, func(t *testing.T) {
			ns := cp.restrictedNamespace(t, "chart-dry")
			extra := cp.restrictedNamespace(t, "chart-dry-extra")
			objs := parseManifests(t, mustTemplate(t, release, ns, values(extra)))
			applied := withoutKind(objs, "ServiceMonitor")
			if name == "every option on" && len(applied) == len(objs) {
				t.Fatal("the full render has no ServiceMonitor to leave out")
			}
			out, err := dryRun(t, toYAML(t, applied))
			if err != nil {
				t.Fatalf("server-side dry run refused the chart: %v\n%s", err, out)
			}
			// kubectl reports each object it accepted, one line each, in the input's order.
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != len(applied) {
				t.Fatalf("kubectl reported %d objects, want %d:\n%s", len(lines), len(applied), out)
			}
			for i, obj := range applied {
				resource := strings.ToLower(obj.GetKind())
				if group := obj.GroupVersionKind().Group; group != "" {
					resource += "." + group
				}
				want := resource + "/" + obj.GetName() + " created (server dry run)"
				if lines[i] != want {
					t.Errorf("kubectl line %d = %q, want %q", i, lines[i], want)
				}
			}
			if len(ofKind(applied, kindDeployment)) != 2 {
				t.Errorf("want 2 Deployments (controller, facade), got %d", len(ofKind(applied, kindDeployment)))
			}
		})
	}

	t.Run("negative control: a non-compliant Deployment is refused", func(t *testing.T) {
		ns := cp.restrictedNamespace(t, "chart-dry-neg")
		objs := parseManifests(t, mustTemplate(t, release, ns, requiredValues()))
		facade := find(t, objs, kindDeployment, ns, fullname+"-facade").DeepCopy()
		unstructured.RemoveNestedField(facade.Object, "spec", "template", "spec", "securityContext")
		containers, _, _ := unstructured.NestedSlice(facade.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			delete(c.(map[string]any), "securityContext")
		}
		err := unstructured.SetNestedSlice(facade.Object, containers, "spec", "template", "spec", "containers")
		if err != nil {
			t.Fatal(err)
		}
		stderr, err := dryRun(t, toYAML(t, []*unstructured.Unstructured{facade}))
		if err == nil {
			t.Fatal("a Deployment without security contexts passed the dry run: the PodSecurity gate is not live")
		}
		if !strings.Contains(stderr, "PodSecurity") || !strings.Contains(stderr, "restricted") {
			t.Fatalf("refused, but not by PodSecurity: %s", stderr)
		}
		t.Logf("refused as expected: %s", strings.TrimSpace(stderr))
	})
}

// TestRenderedManifests checks the rendered objects field by field: restricted Pod security,
// probes, least-privilege RBAC, the controller's and the facade's command lines, the Services,
// the ServiceMonitors and NetworkPolicies, and that the chart's CRD is the generated one.
func TestRenderedManifests(t *testing.T) {
	r := renderFull(t, releaseNamespace, "extra-ns")
	t.Run("every Pod template meets the restricted Pod Security Standard", func(t *testing.T) {
		for name, d := range r.deployments {
			checkRestricted(t, name, d.Spec.Template.Spec)
		}
	})
	t.Run("probes, env and grace periods", r.checkProbesAndEnv)
	t.Run("controller command line", r.checkControllerArgs)
	t.Run("credential changes roll the controller", r.checkSecretChecksum)
	t.Run("facade command line and rollout", r.checkFacade)
	t.Run("Services select their Pods and expose the right ports", r.checkServices)
	t.Run("RBAC is least privilege", r.checkRBAC)
	t.Run("ServiceMonitors scrape the metrics ports", r.checkServiceMonitors)
	t.Run("NetworkPolicies", r.checkNetworkPolicies)
	t.Run("the chart's CRDs are the generated ones, byte for byte", checkCRDsInSync)
}

// TestRBACWithKubectlAuthCanI installs the chart's ServiceAccounts and RBAC for real and asks
// the apiserver's RBAC authorizer, through `kubectl auth can-i --as=system:serviceaccount:...`,
// what each identity may do. envtest starts kube-apiserver with --authorization-mode=RBAC
// (test/stack relies on it for the facade's restricted user), so the answers are the ones a
// real cluster gives.
func TestRBACWithKubectlAuthCanI(t *testing.T) {
	cp := cluster(t)
	ns := cp.restrictedNamespace(t, "chart-rbac")
	extra := cp.restrictedNamespace(t, "chart-rbac-extra")
	unserved := cp.restrictedNamespace(t, "chart-rbac-unserved")
	// A release name of its own keeps the cluster-scoped roles apart from other tests' objects.
	rel := "rbac-" + strings.TrimPrefix(ns, "chart-rbac-")
	values := merge(requiredValues(), map[string]any{"namespaces": []any{extra}})
	objs := parseManifests(t, mustTemplate(t, rel, ns, values))
	rbacObjs := ofKind(objs, "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
	manifests := toYAML(t, rbacObjs)
	if out, stderr, err := cp.kubectl(t, manifests, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s\n%s", err, out, stderr)
	}
	t.Cleanup(func() {
		_, stderr, err := cp.kubectlContext(context.Background(), manifests,
			"delete", "--ignore-not-found", "--wait=false", "-f", "-")
		if err != nil {
			t.Logf("deleting the RBAC objects: %v: %s", err, stderr)
		}
	})

	full := rel + "-download-operator"
	controller := "system:serviceaccount:" + ns + ":" + full + "-controller"
	facade := "system:serviceaccount:" + ns + ":" + full + "-facade"
	worker := func(namespace string) string { return "system:serviceaccount:" + namespace + ":" + full + "-worker" }

	// Each check is one can-i question and the answer the chart must give.
	type check struct {
		as, verb, resource, namespace string
		allowed                       bool
	}
	checks := []check{
		{facade, "create", "downloads.download.operator.dev", ns, true},
		{facade, "watch", "downloads.download.operator.dev", ns, true},
		{facade, "delete", "downloads.download.operator.dev", ns, true},
		{worker(ns), "patch", "jobs.batch", ns, true},
		{worker(extra), "patch", "jobs.batch", extra, true},
		{controller, "create", "jobs.batch", ns, true},
		{controller, "create", "jobs.batch", extra, true},
		{controller, "list", "pods", extra, true},
		{controller, "create", "secrets", extra, true},
		{controller, "patch", "downloads.download.operator.dev/status", unserved, true},
		{controller, "create", "events.events.k8s.io", unserved, true},
		{controller, "update", "leases.coordination.k8s.io", ns, true},
		{controller, "create", "tokenreviews.authentication.k8s.io", "", true},
		{controller, "create", "subjectaccessreviews.authorization.k8s.io", "", true},
		{facade, "get", "secrets", ns, false},
		{facade, "list", "jobs.batch", ns, false},
		{facade, "create", "downloads.download.operator.dev", extra, false},
		{facade, "patch", "downloads.download.operator.dev/status", ns, false},
		{facade, "create", "pods", ns, false},
		{worker(ns), "get", "secrets", ns, false},
		{worker(ns), "get", "jobs.batch", ns, false},
		{worker(ns), "create", "jobs.batch", ns, false},
		{worker(ns), "patch", "jobs.batch", extra, false},
		{worker(ns), "get", "downloads.download.operator.dev", ns, false},
		{controller, "create", "jobs.batch", unserved, false},
		{controller, "list", "pods", unserved, false},
		{controller, "get", "secrets", ns, false},
		{controller, "get", "secrets", extra, false},
		{controller, "list", "secrets", extra, false},
		{controller, "create", "secrets", unserved, false},
		{controller, "create", "downloads.download.operator.dev", ns, false},
		{controller, "update", "leases.coordination.k8s.io", extra, false},
	}

	// canI asks the apiserver; can-i answers on stdout and exits 1 for "no", so anything but
	// yes or no is a broken check.
	canI := func(c check) (bool, error) {
		args := []string{"auth", "can-i", c.verb, c.resource, "--as=" + c.as}
		if c.namespace != "" {
			args = append(args, "--namespace="+c.namespace)
		}
		stdout, stderr, err := cp.kubectlContext(t.Context(), "", args...)
		switch strings.TrimSpace(stdout) {
		case "yes":
			return true, nil
		case "no":
			return false, nil
		}
		return false, fmt.Errorf("kubectl %s: %v: stdout %q stderr %q", strings.Join(args, " "), err, stdout, stderr)
	}
	// Checks run a few at a time: each is a kubectl process, and the machine may have 2 cores.
	runAll := func(want bool, wait time.Duration) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for _, c := range checks {
			if c.allowed != want {
				continue
			}
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				deadline := time.Now().Add(wait)
				for {
					got, err := canI(c)
					if err != nil {
						t.Error(err)
						return
					}
					if got == want {
						return
					}
					if time.Now().After(deadline) {
						t.Errorf("%s: can-i %s %s in %q = %v, want %v", c.as, c.verb, c.resource, c.namespace, got, want)
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
			})
		}
		wg.Wait()
	}
	// The RBAC authorizer reads bindings from an informer, so the first answers may lag the
	// apply by a moment. Every "yes" is awaited first; once they all hold, the authorizer has
	// the chart's bindings and a "no" means no.
	runAll(true, 10*time.Second)
	if t.Failed() {
		return
	}
	runAll(false, 0)
}
