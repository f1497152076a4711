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

package chartrbac_test

import (
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/download-operator/download-operator/test/chartrbac"
	"github.com/download-operator/download-operator/test/testenv"
)

// TestIdentitiesHoldOnlyTheChartsRBAC proves the helper on a real kube-apiserver: its configs and
// kubeconfigs act as the chart's ServiceAccounts, envtest enforces RBAC on them, and a grant
// taken from the chart is a 403 that Refused reports. Two releases share the control plane: one
// with the chart as it is, one with the controller's `create` on Jobs taken away.
func TestIdentitiesHoldOnlyTheChartsRBAC(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	install := func(opts chartrbac.Options) (*chartrbac.Release, *chartrbac.Identity) {
		t.Helper()
		release, err := chartrbac.Install(t.Context(), env.Config, opts)
		if err != nil {
			t.Fatal(err) // without HELM_BIN too: this suite is the helper's, and must not skip
		}
		controller, err := release.Identity(chartrbac.Controller, "")
		if err != nil {
			t.Fatal(err)
		}
		return release, controller
	}
	release, granted := install(chartrbac.Options{Release: "granted", Namespace: "granted"})
	_, withheld := install(chartrbac.Options{
		Release: "withheld", Namespace: "withheld",
		Edit: chartrbac.WithoutGrant(chartrbac.Controller, "batch", "jobs", "create"),
	})

	t.Run("configs and kubeconfigs act as the ServiceAccount", func(t *testing.T) {
		kubeconfig, err := granted.Kubeconfig()
		if err != nil {
			t.Fatal(err)
		}
		fromKubeconfig, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		for name, cfg := range map[string]*rest.Config{"Config": granted.Config(), "Kubeconfig": fromKubeconfig} {
			review := &authenticationv1.SelfSubjectReview{}
			if err := newClient(t, cfg, env).Create(t.Context(), review); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			user := review.Status.UserInfo
			if user.Username != "system:serviceaccount:granted:granted-download-operator-controller" ||
				!slices.Contains(user.Groups, "system:serviceaccounts:granted") || slices.Contains(user.Groups, "system:masters") {
				t.Errorf("%s acts as %s in %v, want the chart's controller ServiceAccount and its groups only", name, user.Username, user.Groups)
			}
		}
	})

	t.Run("the chart's grant is enough, and nothing is refused", func(t *testing.T) {
		if err := newClient(t, granted.Config(), env).Create(t.Context(), workerJob("granted")); err != nil {
			t.Fatalf("creating a Job as the controller: %v", err)
		}
		if err := granted.Refused(); err != nil {
			t.Error(err)
		}
	})

	t.Run("a grant missing from the chart is a 403 that Refused names", func(t *testing.T) {
		err := newClient(t, withheld.Config(), env).Create(t.Context(), workerJob("withheld"))
		if !apierrors.IsForbidden(err) {
			t.Fatalf("creating a Job without the chart's grant: %v, want Forbidden", err)
		}
		refused := withheld.Refused()
		if refused == nil || !strings.Contains(refused.Error(), "POST /apis/batch/v1/namespaces/withheld/jobs") {
			t.Fatalf("Refused() = %v, want it to name the refused create", refused)
		}
		if again := withheld.Refused(); again != nil {
			t.Errorf("Refused() reported the same refusal twice: %v", again)
		}
	})

	t.Run("WithoutGrant fails on a grant the chart does not give", func(t *testing.T) {
		if err := chartrbac.WithoutGrant(chartrbac.Facade, "batch", "jobs", "create")(release.Objects); err == nil {
			t.Fatal("taking away a grant that is not there succeeded")
		}
	})
}

func newClient(t *testing.T, cfg *rest.Config, env *testenv.Env) client.Client {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func workerJob(namespace string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "worker-", Namespace: namespace},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "worker", Image: "download-operator:test"}},
		}}},
	}
}
