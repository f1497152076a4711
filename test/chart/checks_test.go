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
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/test/testenv"
)

const (
	kindDeployment = "Deployment"
	componentLabel = "app.kubernetes.io/component"
	existingSecret = "my-storage"
	signingSecret  = "url-signer"
)

// rendered is the chart rendered with fullValues, with the objects the checks look at most.
type rendered struct {
	objs                   []*unstructured.Unstructured
	ns                     string
	served                 []string
	deployments            map[string]*appsv1.Deployment
	controller, facade     *appsv1.Deployment
	controllerSA, facadeSA string
	workerSA               string
}

func renderFull(t *testing.T, ns, extra string) *rendered {
	t.Helper()
	r := &rendered{
		objs:         parseManifests(t, mustTemplate(t, release, ns, fullValues(extra))),
		ns:           ns,
		served:       []string{ns, extra},
		deployments:  map[string]*appsv1.Deployment{},
		controllerSA: fullname + "-controller",
		facadeSA:     fullname + "-facade",
		workerSA:     fullname + "-worker",
	}
	for _, obj := range ofKind(r.objs, kindDeployment) {
		r.deployments[obj.GetName()] = convert[appsv1.Deployment](t, obj)
	}
	r.controller, r.facade = r.deployments[r.controllerSA], r.deployments[r.facadeSA]
	if r.controller == nil || r.facade == nil || len(r.deployments) != 2 {
		t.Fatalf("want the Deployments %s and %s, got %v",
			r.controllerSA, r.facadeSA, sets.List(sets.KeySet(r.deployments)))
	}
	return r
}

func (r *rendered) checkProbesAndEnv(t *testing.T) {
	checkProbes(t, r.controller, 8081)
	// The facade's probes have a port of their own, apart from the API's connections and limits.
	checkProbes(t, r.facade, 8081)
	for name, d := range r.deployments {
		checkPodNamespaceEnv(t, name, d.Spec.Template.Spec.Containers[0])
	}
	if g := r.facade.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g < 30 {
		t.Errorf("the facade drains SSE streams for 20 s; its grace period %v s is too short", ptr.Deref(g, 30))
	}
	want := map[string]string{
		"STORAGE_ACCESS_KEY": existingSecret + "/accessKey",
		"STORAGE_SECRET_KEY": existingSecret + "/secretKey",
		// Only the controller signs, so only it reads the signing Secret.
		"STORAGE_SIGNING_ACCESS_KEY": signingSecret + "/accessKey",
		"STORAGE_SIGNING_SECRET_KEY": signingSecret + "/secretKey",
	}
	if got := secretEnv(r.controller); !maps.Equal(got, want) {
		t.Errorf("controller secret env = %v, want %v", got, want)
	}
	// The client id key is the facade's only Secret: it holds no storage credentials.
	wantFacade := map[string]string{"CLIENT_ID_KEY": r.facadeSA + "-client-id/key"}
	if got := secretEnv(r.facade); !maps.Equal(got, wantFacade) {
		t.Errorf("facade secret env = %v, want only %v", got, wantFacade)
	}
}

// secretEnv maps the env vars of a Deployment's first container that come from Secrets to
// "secret/key".
func secretEnv(d *appsv1.Deployment) map[string]string {
	out := map[string]string{}
	for _, env := range d.Spec.Template.Spec.Containers[0].Env {
		if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil {
			out[env.Name] = env.ValueFrom.SecretKeyRef.Name + "/" + env.ValueFrom.SecretKeyRef.Key
		}
	}
	return out
}

func (r *rendered) checkControllerArgs(t *testing.T) {
	if n := r.controller.Spec.Replicas; n == nil || *n != 2 {
		t.Errorf("controller replicas = %v, want 2", ptr.Deref(n, 1))
	}
	container := r.controller.Spec.Template.Spec.Containers[0]
	if container.Image != "download-operator:0.1.0" {
		t.Errorf("controller image = %q, want download-operator:0.1.0 (the tag defaults to appVersion)", container.Image)
	}
	args := container.Args
	if len(args) == 0 || args[0] != "controller" {
		t.Fatalf("the first arg must be the subcommand controller: %v", args)
	}
	requireArgs(t, "controller", args,
		"--leader-elect",
		"--namespaces="+strings.Join(r.served, ","),
		"--worker-image="+container.Image,
		"--worker-service-account="+r.workerSA,
		"--storage-endpoint=192.0.2.2:9000",
		"--storage-public-endpoint=http://127.0.0.1:9000",
		"--file-check-bind-address=:8082",
		"--health-probe-bind-address=:8081",
		"--metrics-bind-address=:8443",
		"--metrics-secure=true",
	)
	for _, arg := range args {
		if strings.Contains(arg, "chart-test-") {
			t.Errorf("a credential leaked into the controller's flags: %s", arg)
		}
	}
}

func requireArgs(t *testing.T, who string, args []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(args, w) {
			t.Errorf("%s args lack %q: %v", who, w, args)
		}
	}
}

// checkClientIDSecret proves that the chart generates the facade's client id key in the release
// namespace, long enough for the facade to accept it. Keeping it across upgrades needs `lookup`,
// which only a real install exercises.
func (r *rendered) checkClientIDSecret(t *testing.T) {
	secret := convert[corev1.Secret](t, find(t, r.objs, "Secret", r.ns, r.facadeSA+"-client-id"))
	if key := secret.Data["key"]; len(key) < facade.MinClientIDKey {
		t.Errorf("the generated client id key has %d bytes, want at least %d", len(key), facade.MinClientIDKey)
	}
}

// storageSecrets are the rendered Secrets but the facade's client id key, which holds no
// storage credential.
func storageSecrets(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, s := range ofKind(objs, "Secret") {
		if s.GetName() != fullname+"-facade-client-id" {
			out = append(out, s)
		}
	}
	return out
}

// checkSecretChecksum proves that new credentials change the controller's Pod template, so
// that `helm upgrade` rolls it.
func (r *rendered) checkSecretChecksum(t *testing.T) {
	checksum := func(secretKey string) string {
		values := requiredValues()
		values["storage"].(map[string]any)["secretKey"] = secretKey
		objs := parseManifests(t, mustTemplate(t, release, r.ns, values))
		d := convert[appsv1.Deployment](t, find(t, objs, kindDeployment, r.ns, r.controllerSA))
		return d.Spec.Template.Annotations["checksum/storage-secret"]
	}
	a, b := checksum("first"), checksum("second")
	if a == "" || a == b {
		t.Errorf("checksum/storage-secret = %q then %q: want a checksum that changes with the credentials", a, b)
	}
}

func (r *rendered) checkFacade(t *testing.T) {
	if n := r.facade.Spec.Replicas; n == nil || *n != 2 {
		t.Errorf("facade replicas = %v, want 2", ptr.Deref(n, 1))
	}
	ru := r.facade.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("facade rolling update must keep every Pod until its replacement is ready: %+v", ru)
	}
	requireArgs(t, "facade", r.facade.Spec.Template.Spec.Containers[0].Args,
		"facade", "--listen=:8080", "--probe-bind-address=:8081", "--namespace="+r.ns,
		"--controller-url=http://"+r.controllerSA+"."+r.ns+".svc:8082",
		// X-Forwarded-For is ignored unless proxies are named.
		"--trusted-proxies=", "--max-connections-per-client=64", "--max-streams-per-client=8",
	)
	overridden := parseManifests(t, mustTemplate(t, release, r.ns, merge(requiredValues(), map[string]any{
		"facade": map[string]any{"controllerURL": "http://10.0.0.80:8082", "uiDir": "/ui",
			"trustedProxies": []any{"10.244.0.0/16", "192.0.2.7"}, "clientIdSecret": "my-client-id",
			"maxConnectionsPerClient": 5, "maxStreamsPerClient": 0},
	})))
	d := convert[appsv1.Deployment](t, find(t, overridden, kindDeployment, r.ns, r.facadeSA))
	requireArgs(t, "overridden facade", d.Spec.Template.Spec.Containers[0].Args,
		"--controller-url=http://10.0.0.80:8082", "--ui-dir=/ui", "--trusted-proxies=10.244.0.0/16,192.0.2.7",
		"--max-connections-per-client=5", "--max-streams-per-client=0")
	if got := secretEnv(d); got["CLIENT_ID_KEY"] != "my-client-id/key" {
		t.Errorf("with facade.clientIdSecret the key comes from %q, want my-client-id/key", got["CLIENT_ID_KEY"])
	}
	for _, s := range ofKind(overridden, "Secret") {
		if strings.Contains(s.GetName(), "client-id") {
			t.Errorf("the chart generated %s although facade.clientIdSecret names an existing Secret", s.GetName())
		}
	}
	r.checkClientIDSecret(t)
	find(t, r.objs, "PodDisruptionBudget", r.ns, r.facadeSA)
}

func (r *rendered) checkServices(t *testing.T) {
	svc := convert[corev1.Service](t, find(t, r.objs, "Service", r.ns, r.controllerSA))
	if svc.Spec.ClusterIP != controllerClusterIP {
		t.Errorf("controller Service clusterIP = %q, want %s", svc.Spec.ClusterIP, controllerClusterIP)
	}
	checkSelects(t, svc, r.controller)
	checkPorts(t, svc, map[string]int32{"filecheck": 8082, "metrics": 8443})

	svc = convert[corev1.Service](t, find(t, r.objs, "Service", r.ns, r.facadeSA))
	checkSelects(t, svc, r.facade)
	// Only the API: the probe port (with /metrics) must not become a NodePort or a LoadBalancer.
	checkPorts(t, svc, map[string]int32{"http": 80})
	metrics := convert[corev1.Service](t, find(t, r.objs, "Service", r.ns, r.facadeSA+"-metrics"))
	checkSelects(t, metrics, r.facade)
	checkPorts(t, metrics, map[string]int32{"metrics": 8081})
	if metrics.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("the facade's metrics Service is %s, want ClusterIP", metrics.Spec.Type)
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].NodePort != 30080 {
		t.Errorf("facade Service = %s nodePort %d, want NodePort 30080", svc.Spec.Type, svc.Spec.Ports[0].NodePort)
	}

	ing := convert[networkingv1.Ingress](t, find(t, r.objs, "Ingress", r.ns, r.facadeSA))
	for _, rule := range ing.Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			if p.Backend.Service.Name != svc.Name || p.Backend.Service.Port.Number != 80 {
				t.Errorf("Ingress path %s goes to %+v, want %s:80", p.Path, p.Backend.Service, svc.Name)
			}
			if p.Path == "/" || p.Path == "/metrics" {
				t.Errorf("the Ingress exposes %s by default", p.Path)
			}
		}
	}
}

func (r *rendered) checkNetworkPolicies(t *testing.T) {
	np := convert[networkingv1.NetworkPolicy](t, find(t, r.objs, "NetworkPolicy", r.ns, r.controllerSA))
	if slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Error("the controller's egress must stay open (apiserver, object storage)")
	}
	fileCheckOpen := false
	for _, rule := range np.Spec.Ingress {
		isFileCheck := func(p networkingv1.NetworkPolicyPort) bool { return p.Port.IntValue() == 8082 }
		if !slices.ContainsFunc(rule.Ports, isFileCheck) {
			continue
		}
		fileCheckOpen = true
		if len(rule.From) != 1 || rule.From[0].PodSelector == nil ||
			rule.From[0].PodSelector.MatchLabels[componentLabel] != "facade" {
			t.Errorf("the file check port is open to %+v, want only facade Pods", rule.From)
		}
	}
	if !fileCheckOpen {
		t.Error("the controller's NetworkPolicy does not let the facade reach 8082")
	}
	np = convert[networkingv1.NetworkPolicy](t, find(t, r.objs, "NetworkPolicy", r.ns, r.facadeSA))
	in := np.Spec.Ingress
	if len(in) != 2 || len(in[0].Ports) != 1 || in[0].Ports[0].Port.IntValue() != 8080 || len(in[0].From) != 0 ||
		len(in[1].Ports) != 1 || in[1].Ports[0].Port.IntValue() != 8081 {
		t.Errorf("the facade must accept 8080 from anywhere, and its probe port 8081: %+v", in)
	}
}

// checkCRDsInSync proves the chart ships exactly the CRDs controller-gen generates.
func checkCRDsInSync(t *testing.T) {
	generated := filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")
	inChart := filepath.Join(chartDir(), "crds")
	want, got := readDir(t, generated), readDir(t, inChart)
	for name, content := range want {
		if !bytes.Equal(got[name], content) {
			t.Errorf("%s differs from config/crd/bases/%s (or is missing): copy it with `make manifests`",
				filepath.Join(inChart, name), name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s has no generated counterpart in config/crd/bases", filepath.Join(inChart, name))
		}
	}
}

// checkRestricted checks the fields of the restricted Pod Security Standard the chart sets, on
// the Pod and on each of its containers.
func checkRestricted(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	sc := spec.SecurityContext
	if sc == nil {
		t.Errorf("%s: no pod securityContext", name)
		return
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot must be true", name)
	}
	if ptr.Deref(sc.RunAsUser, 0) != 65532 || ptr.Deref(sc.RunAsGroup, 0) != 65532 {
		t.Errorf("%s: want runAsUser and runAsGroup 65532, got %v and %v", name, sc.RunAsUser, sc.RunAsGroup)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: want seccompProfile RuntimeDefault, got %+v", name, sc.SeccompProfile)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("%s: uses a host namespace", name)
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		container := name + "/" + c.Name
		csc := c.SecurityContext
		if csc == nil {
			t.Errorf("%s: no container securityContext", container)
			continue
		}
		if ptr.Deref(csc.AllowPrivilegeEscalation, true) {
			t.Errorf("%s: allowPrivilegeEscalation must be false", container)
		}
		if !ptr.Deref(csc.ReadOnlyRootFilesystem, false) {
			t.Errorf("%s: readOnlyRootFilesystem must be true", container)
		}
		if ptr.Deref(csc.Privileged, false) {
			t.Errorf("%s: privileged", container)
		}
		caps := csc.Capabilities
		if caps == nil || !slices.Equal(caps.Drop, []corev1.Capability{"ALL"}) || len(caps.Add) != 0 {
			t.Errorf("%s: want capabilities drop [ALL] and add nothing, got %+v", container, caps)
		}
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("%s: want a memory limit and a CPU request", container)
		}
	}
}

func checkProbes(t *testing.T, d *appsv1.Deployment, port int) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	for path, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path {
			t.Errorf("%s: want an HTTP probe on %s, got %+v", d.Name, path, probe)
			continue
		}
		if got := resolvePort(c, probe.HTTPGet.Port); got != port {
			t.Errorf("%s: probe %s on port %d, want %d", d.Name, path, got, port)
		}
	}
}

// resolvePort turns a probe's port, a number or a container port's name, into a number.
func resolvePort(c corev1.Container, port intstr.IntOrString) int {
	if port.Type == intstr.Int {
		return port.IntValue()
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort)
		}
	}
	return -1
}

func checkPodNamespaceEnv(t *testing.T, name string, c corev1.Container) {
	t.Helper()
	for _, env := range c.Env {
		if env.Name == "POD_NAMESPACE" && env.ValueFrom != nil && env.ValueFrom.FieldRef != nil &&
			env.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			return
		}
	}
	t.Errorf("%s: no POD_NAMESPACE from fieldRef metadata.namespace", name)
}

func checkSelects(t *testing.T, svc *corev1.Service, d *appsv1.Deployment) {
	t.Helper()
	podLabels := d.Spec.Template.Labels
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service %s selects %s=%s, which Deployment %s's Pods lack", svc.Name, k, v, d.Name)
		}
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("Deployment %s selects %s=%s, which its own Pods lack", d.Name, k, v)
		}
	}
	if svc.Spec.Selector[componentLabel] == "" {
		t.Errorf("Service %s does not select by component, so it would mix controller and facade Pods", svc.Name)
	}
}

func checkPorts(t *testing.T, svc *corev1.Service, want map[string]int32) {
	t.Helper()
	got := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		got[p.Name] = p.Port
	}
	if !maps.Equal(got, want) {
		t.Errorf("Service %s ports = %v, want %v", svc.Name, got, want)
	}
}

// checkRBAC proves from the rendered objects that each identity gets exactly its rules, that
// no role in the chart grants Secrets or wildcards, and that Jobs are only granted per namespace.
func (r *rendered) checkRBAC(t *testing.T) {
	for _, obj := range ofKind(r.objs, "Role", "ClusterRole") {
		for _, rule := range convert[rbacv1.Role](t, obj).Rules {
			checkRule(t, obj, rule)
		}
	}

	facadeRole := convert[rbacv1.Role](t, find(t, r.objs, "Role", r.ns, r.facadeSA))
	wantFacade := []rbacv1.PolicyRule{{
		APIGroups: []string{"download.operator.dev"}, Resources: []string{"downloads"},
		Verbs: []string{"get", "list", "watch", "create", "delete"},
	}}
	if !rulesEqual(facadeRole.Rules, wantFacade) {
		t.Errorf("facade Role rules = %+v, want exactly %+v", facadeRole.Rules, wantFacade)
	}
	wantWorker := []rbacv1.PolicyRule{{
		APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"patch"},
	}}
	for _, ns := range r.served {
		worker := convert[rbacv1.Role](t, find(t, r.objs, "Role", ns, r.workerSA))
		if !rulesEqual(worker.Rules, wantWorker) {
			t.Errorf("worker Role in %s = %+v, want exactly %+v", ns, worker.Rules, wantWorker)
		}
		sa := convert[corev1.ServiceAccount](t, find(t, r.objs, "ServiceAccount", ns, r.workerSA))
		if !ptr.Deref(sa.AutomountServiceAccountToken, true) {
			t.Errorf("the worker ServiceAccount in %s must mount its token: the worker patches its Job", ns)
		}
		find(t, r.objs, "RoleBinding", ns, r.workerSA)
		find(t, r.objs, "Role", ns, r.controllerSA+"-jobs")
		find(t, r.objs, "RoleBinding", ns, r.controllerSA+"-jobs")
	}

	// Every role bound to the facade, wherever it is, is the facade Role.
	for _, obj := range ofKind(r.objs, "RoleBinding", "ClusterRoleBinding") {
		binding := convert[rbacv1.RoleBinding](t, obj)
		toFacadeRole := obj.GetKind() == "RoleBinding" && binding.RoleRef.Kind == "Role" && binding.RoleRef.Name == r.facadeSA
		for _, s := range binding.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == r.facadeSA && !toFacadeRole {
				t.Errorf("%s %s binds the facade to %s %s",
					obj.GetKind(), obj.GetName(), binding.RoleRef.Kind, binding.RoleRef.Name)
			}
		}
	}

	clusterRole := convert[rbacv1.ClusterRole](t, find(t, r.objs, "ClusterRole", "", r.controllerSA))
	for _, rule := range clusterRole.Rules {
		for _, group := range rule.APIGroups {
			if group != "download.operator.dev" && group != "events.k8s.io" {
				t.Errorf("the controller's ClusterRole grants API group %q: %+v", group, rule)
			}
		}
	}
}

// checkRule refuses wildcards in any role, Jobs in a ClusterRole, and any grant on Secrets but
// one: the controller's per-namespace Role may create them (each worker's credential), never
// read, change or delete one.
func checkRule(t *testing.T, role *unstructured.Unstructured, rule rbacv1.PolicyRule) {
	t.Helper()
	if slices.Contains(rule.Resources, "*") || slices.Contains(rule.Verbs, "*") || slices.Contains(rule.APIGroups, "*") {
		t.Errorf("%s %s grants %+v: no role may use wildcards", role.GetKind(), role.GetName(), rule)
	}
	createsCredentials := role.GetKind() == "Role" && strings.HasSuffix(role.GetName(), "-controller-jobs") &&
		slices.Equal(rule.Resources, []string{"secrets"}) && slices.Equal(rule.Verbs, []string{"create"})
	if slices.Contains(rule.Resources, "secrets") && !createsCredentials {
		t.Errorf("%s %s grants %+v: only the controller's Role may touch Secrets, and only create them", role.GetKind(), role.GetName(), rule)
	}
	if role.GetKind() == "ClusterRole" && slices.Contains(rule.Resources, "jobs") {
		t.Errorf("ClusterRole %s grants Jobs cluster-wide; Jobs belong in per-namespace Roles", role.GetName())
	}
}

func (r *rendered) checkServiceMonitors(t *testing.T) {
	monitors := ofKind(r.objs, "ServiceMonitor")
	if len(monitors) != 2 {
		t.Fatalf("want 2 ServiceMonitors, got %d", len(monitors))
	}
	for _, sm := range monitors {
		if sm.GetAPIVersion() != "monitoring.coreos.com/v1" {
			t.Errorf("ServiceMonitor %s has apiVersion %s", sm.GetName(), sm.GetAPIVersion())
		}
		if sm.GetLabels()["release"] != "prometheus" {
			t.Errorf("ServiceMonitor %s lacks serviceMonitor.labels", sm.GetName())
		}
		svc := convert[corev1.Service](t, find(t, r.objs, "Service", r.ns, sm.GetName()))
		selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		for k, v := range selector {
			if svc.Labels[k] != v {
				t.Errorf("ServiceMonitor %s selects %s=%s, which Service %s lacks", sm.GetName(), k, v, svc.Name)
			}
		}
		endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		if len(endpoints) != 1 {
			t.Fatalf("ServiceMonitor %s: want 1 endpoint, got %d", sm.GetName(), len(endpoints))
		}
		ep, _ := endpoints[0].(map[string]any)
		port, _ := ep["port"].(string)
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == port }) {
			t.Errorf("ServiceMonitor %s scrapes port %q, which Service %s does not have", sm.GetName(), port, svc.Name)
		}
		if ep["path"] != "/metrics" {
			t.Errorf("ServiceMonitor %s scrapes %v, want /metrics", sm.GetName(), ep["path"])
		}
		r.checkScrapeEndpoint(t, sm.GetName(), port, ep)
	}
}

func (r *rendered) checkScrapeEndpoint(t *testing.T, name, port string, ep map[string]any) {
	t.Helper()
	switch name {
	case r.controllerSA:
		skip, _, _ := unstructured.NestedBool(ep, "tlsConfig", "insecureSkipVerify")
		if port != "metrics" || ep["scheme"] != "https" || !skip || ep["bearerTokenFile"] == nil {
			t.Errorf("the controller serves HTTPS with a self-signed certificate and authenticates "+
				"scrapers by token; endpoint = %v", ep)
		}
	case r.facadeSA + "-metrics":
		if port != "metrics" || ep["scheme"] != "http" {
			t.Errorf("the facade serves plain HTTP /metrics on its probe port; endpoint = %v", ep)
		}
	default:
		t.Errorf("unexpected ServiceMonitor %s", name)
	}
}

// rulesEqual compares policy rules ignoring the order of verbs, resources and groups.
func rulesEqual(got, want []rbacv1.PolicyRule) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if !sets.New(g.APIGroups...).Equal(sets.New(w.APIGroups...)) ||
			!sets.New(g.Resources...).Equal(sets.New(w.Resources...)) ||
			!sets.New(g.Verbs...).Equal(sets.New(w.Verbs...)) ||
			len(g.ResourceNames) != 0 || len(g.NonResourceURLs) != 0 {
			return false
		}
	}
	return true
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = raw
	}
	if len(out) == 0 {
		t.Fatalf("no CRDs in %s", dir)
	}
	return out
}
