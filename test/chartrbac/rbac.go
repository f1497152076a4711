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

// Package chartrbac holds the envtest suites to the Helm chart's RBAC. Install renders
// charts/download-operator with the real helm binary (HELM_BIN), applies what the chart grants
// (its ServiceAccounts, Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, and nothing
// else) with the admin's credentials, and hands out, per component, a rest.Config and a
// kubeconfig that impersonate the component's ServiceAccount. envtest's kube-apiserver
// authorizes with RBAC (--authorization-mode=RBAC, its default), so a grant missing from the
// chart is a 403 for the suite exactly as it would be in a cluster.
//
// Some of the operator's calls are best effort (Events) or retried forever (a reconcile that
// fails requeues), so a 403 need not break the behaviour a test looks at. Every request made
// through Identity.Config is therefore watched, and Identity.Refused names each one the
// apiserver refused: suites check it after every test, so any grant missing from the chart fails
// one.
//
// The chart is rendered live, so a change to its RBAC reaches every suite without a change here.
// It is plain Go (errors, no testing or Ginkgo), like test/stack.
package chartrbac

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultRelease is the release name Install uses unless told otherwise; the chart then names its
// objects download-operator-controller, download-operator-facade and download-operator-worker.
const DefaultRelease = "download-operator"

// Component is one of the chart's identities, as its app.kubernetes.io/component label names it.
type Component string

const (
	Controller Component = "controller"
	Facade     Component = "facade"
	// Worker has a ServiceAccount in every served namespace.
	Worker Component = "worker"
)

// componentLabel is the label the chart puts on every object of a component.
const componentLabel = "app.kubernetes.io/component"

// rbacKinds are the kinds Install takes from the render; everything else (Deployments, the
// storage Secret, Services...) is the suite's own business.
var rbacKinds = map[schema.GroupKind]func() client.Object{
	{Group: "", Kind: "ServiceAccount"}:                   func() client.Object { return &corev1.ServiceAccount{} },
	{Group: rbacv1.GroupName, Kind: "Role"}:               func() client.Object { return &rbacv1.Role{} },
	{Group: rbacv1.GroupName, Kind: "ClusterRole"}:        func() client.Object { return &rbacv1.ClusterRole{} },
	{Group: rbacv1.GroupName, Kind: "RoleBinding"}:        func() client.Object { return &rbacv1.RoleBinding{} },
	{Group: rbacv1.GroupName, Kind: "ClusterRoleBinding"}: func() client.Object { return &rbacv1.ClusterRoleBinding{} },
}

// Options say which install of the chart to mirror.
type Options struct {
	// Release is the release name; empty means DefaultRelease. Two installs into one cluster
	// need two names, since ClusterRoles are named after the release.
	Release string
	// Namespace is the release namespace: where the controller's and the facade's
	// ServiceAccounts live, the facade's Role applies, and the first served namespace.
	Namespace string
	// Namespaces are the other served namespaces (the chart's `namespaces` value).
	Namespaces []string
	// Values are merged over RequiredValues and the namespaces above, e.g. to name the storage
	// Secret the suite creates.
	Values map[string]any
	// Edit, when set, changes the rendered objects before they are applied: for tests that prove
	// a grant is needed by taking it away (WithoutGrant).
	Edit func([]client.Object) error
}

// Release is the chart's RBAC, applied to a cluster.
type Release struct {
	Name      string
	Namespace string
	// Objects are what was applied, after Options.Edit.
	Objects []client.Object

	admin      *rest.Config
	mu         sync.Mutex
	identities map[string]*Identity
}

// Install renders the chart and applies its RBAC with admin (a cluster admin's config), creating
// the namespaces it names when they do not exist yet.
func Install(ctx context.Context, admin *rest.Config, opts Options) (*Release, error) {
	if opts.Namespace == "" {
		return nil, errors.New("chartrbac: Options.Namespace (the release namespace) is required")
	}
	if opts.Release == "" {
		opts.Release = DefaultRelease
	}
	if _, err := HelmBin(); err != nil {
		return nil, err
	}
	kubeVersion, err := KubeVersion(admin)
	if err != nil {
		return nil, err
	}
	namespaces := make([]any, 0, len(opts.Namespaces))
	for _, ns := range opts.Namespaces {
		namespaces = append(namespaces, ns)
	}
	values := Merge(RequiredValues(), map[string]any{"namespaces": namespaces}, opts.Values)
	manifests, err := Template(ctx, opts.Release, opts.Namespace, kubeVersion, values)
	if err != nil {
		return nil, err
	}
	objs, err := rbacObjects(manifests)
	if err != nil {
		return nil, err
	}
	if opts.Edit != nil {
		if err := opts.Edit(objs); err != nil {
			return nil, fmt.Errorf("editing the chart's RBAC: %w", err)
		}
	}
	c, err := client.New(admin, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		return nil, fmt.Errorf("creating the admin client: %w", err)
	}
	if err := ensureNamespaces(ctx, c, objs); err != nil {
		return nil, err
	}
	for _, obj := range objs {
		if err := c.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("applying the chart's %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
		}
	}
	return &Release{
		Name: opts.Release, Namespace: opts.Namespace, Objects: objs,
		admin: rest.CopyConfig(admin), identities: map[string]*Identity{},
	}, nil
}

// rbacObjects picks the chart's RBAC out of a render, as typed objects. Fields the types do not
// know fail the conversion, so a typo in the chart cannot pass unnoticed here.
func rbacObjects(manifests string) ([]client.Object, error) {
	rendered, err := ParseManifests(manifests)
	if err != nil {
		return nil, err
	}
	var objs []client.Object
	for _, u := range rendered {
		newObj, ok := rbacKinds[u.GroupVersionKind().GroupKind()]
		if !ok {
			continue
		}
		obj := newObj()
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, obj, true); err != nil {
			return nil, fmt.Errorf("converting the chart's %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		objs = append(objs, obj)
	}
	if !slices.ContainsFunc(objs, isServiceAccount) {
		return nil, errors.New("the chart rendered no ServiceAccount")
	}
	return objs, nil
}

func isServiceAccount(obj client.Object) bool {
	_, ok := obj.(*corev1.ServiceAccount)
	return ok
}

func ensureNamespaces(ctx context.Context, c client.Client, objs []client.Object) error {
	seen := map[string]bool{}
	for _, obj := range objs {
		ns := obj.GetNamespace()
		if ns == "" || seen[ns] {
			continue
		}
		seen[ns] = true
		err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	return nil
}

// Identity returns the chart's ServiceAccount of component in namespace; an empty namespace
// means the release namespace (the controller's and the facade's). The same Identity is returned
// on every call, so Refused covers every Config it handed out.
func (r *Release) Identity(component Component, namespace string) (*Identity, error) {
	if namespace == "" {
		namespace = r.Namespace
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := string(component) + "/" + namespace
	if id, ok := r.identities[key]; ok {
		return id, nil
	}
	for _, obj := range r.Objects {
		if isServiceAccount(obj) && obj.GetNamespace() == namespace && obj.GetLabels()[componentLabel] == string(component) {
			id := &Identity{Namespace: namespace, Name: obj.GetName(), admin: r.admin}
			r.identities[key] = id
			return id, nil
		}
	}
	return nil, fmt.Errorf("the chart (release %s) has no %s ServiceAccount in namespace %s", r.Name, component, namespace)
}

// Identity is one of the chart's ServiceAccounts, for a client to act as.
type Identity struct {
	// Namespace and Name are the ServiceAccount's.
	Namespace, Name string

	admin   *rest.Config
	mu      sync.Mutex
	refused []string
}

// User is the ServiceAccount's user name, system:serviceaccount:<namespace>:<name>.
func (id *Identity) User() string {
	return "system:serviceaccount:" + id.Namespace + ":" + id.Name
}

// Config is a fresh rest.Config that impersonates the ServiceAccount (the apiserver adds its
// groups), and whose 403 answers Refused reports.
func (id *Identity) Config() *rest.Config {
	cfg := rest.CopyConfig(id.admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: id.User()}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err == nil && resp.StatusCode == http.StatusForbidden {
				id.mu.Lock()
				id.refused = append(id.refused, req.Method+" "+req.URL.RequestURI())
				id.mu.Unlock()
			}
			return resp, err
		})
	})
	return cfg
}

// Refused returns an error naming every request made through Config that the apiserver refused
// (403) since the last call, or nil. Each refusal is a grant the component used and the chart
// does not give.
func (id *Identity) Refused() error {
	id.mu.Lock()
	refused := id.refused
	id.refused = nil
	id.mu.Unlock()
	if len(refused) == 0 {
		return nil
	}
	return fmt.Errorf("the apiserver refused %d requests of %s, which holds only the chart's RBAC:\n  %s",
		len(refused), id.User(), strings.Join(refused, "\n  "))
}

// Kubeconfig is a kubeconfig that impersonates the ServiceAccount, for a process (or an
// in-process command) that loads its own. Refused does not see its requests.
func (id *Identity) Kubeconfig() ([]byte, error) {
	host := id.admin.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	server, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("parsing the apiserver address %q: %w", id.admin.Host, err)
	}
	const name = "envtest"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server.String(), CertificateAuthorityData: id.admin.CAData}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: id.admin.CertData,
		ClientKeyData:         id.admin.KeyData,
		Token:                 id.admin.BearerToken,
		Impersonate:           id.User(),
	}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// WithoutGrant is an Options.Edit that takes verb on resource (of API group; "" is the core
// group) away from every Role and ClusterRole of component, leaving the rest of each rule. It
// fails when the chart does not grant it there, so a test built on it cannot pass for nothing.
func WithoutGrant(component Component, group, resource, verb string) func([]client.Object) error {
	return func(objs []client.Object) error {
		removed := false
		for _, obj := range objs {
			if obj.GetLabels()[componentLabel] != string(component) {
				continue
			}
			var rules *[]rbacv1.PolicyRule
			switch role := obj.(type) {
			case *rbacv1.Role:
				rules = &role.Rules
			case *rbacv1.ClusterRole:
				rules = &role.Rules
			default:
				continue
			}
			var kept []rbacv1.PolicyRule
			for _, rule := range *rules {
				exact := slices.Contains(rule.APIGroups, group) && slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, verb)
				if !exact {
					if covers(rule.APIGroups, group) && covers(rule.Resources, resource) && covers(rule.Verbs, verb) {
						return fmt.Errorf("%s/%s grants %q on %s through a wildcard, which WithoutGrant cannot narrow",
							obj.GetNamespace(), obj.GetName(), verb, resource)
					}
					kept = append(kept, rule)
					continue
				}
				removed = true
				kept = append(kept, splitOff(rule, group, resource, verb)...)
			}
			*rules = kept
		}
		if !removed {
			return fmt.Errorf("the chart grants %s no %q on %s in API group %q", component, verb, resource, group)
		}
		return nil
	}
}

func covers(list []string, item string) bool {
	return slices.Contains(list, item) || slices.Contains(list, "*")
}

// splitOff rewrites rule as rules granting everything it did except verb on group/resource.
func splitOff(rule rbacv1.PolicyRule, group, resource, verb string) []rbacv1.PolicyRule {
	without := func(list []string, item string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == item })
	}
	var out []rbacv1.PolicyRule
	add := func(groups, resources, verbs []string) {
		if len(groups) > 0 && len(resources) > 0 && len(verbs) > 0 {
			r := *rule.DeepCopy()
			r.APIGroups, r.Resources, r.Verbs = groups, resources, verbs
			out = append(out, r)
		}
	}
	add(rule.APIGroups, without(rule.Resources, resource), rule.Verbs)  // the other resources
	add(without(rule.APIGroups, group), []string{resource}, rule.Verbs) // resource in other groups
	add([]string{group}, []string{resource}, without(rule.Verbs, verb)) // the other verbs
	return out
}
