//go:build e2e

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

package drills

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/cluster"
)

const (
	// s4URLExpiry and s4TTL are the shortest the CRD allows for the URL, and a TTL just after it.
	s4URLExpiry = 60
	s4TTL       = 90
	// otherNamespace is a namespace the operator does not serve, for the cluster-scope checks.
	otherNamespace = "default"
)

// rbacMatrix is what every ServiceAccount is asked about in the demo namespace: every verb on
// each resource, and the verbs that mean something on each subresource.
var rbacMatrix = func() map[string][]string {
	all := []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
	m := map[string][]string{
		"pods/log": {"get"}, "pods/exec": {"get", "create"}, "serviceaccounts/token": {"create"},
		cluster.DownloadStatusResource: {"get", "update", "patch"}, cluster.DownloadsResource + "/finalizers": {"update", "patch"},
	}
	for _, r := range []string{"secrets", "configmaps", "pods", "jobs.batch", cluster.DownloadsResource,
		"leases.coordination.k8s.io", "events", "events.events.k8s.io"} {
		m[r] = all
	}
	return m
}()

// rbacElsewhere is the smaller matrix asked in a namespace the operator does not serve.
var rbacElsewhere = map[string][]string{
	"secrets": {"get"}, "jobs.batch": {"create", "patch"}, cluster.DownloadsResource: {"get", "patch"},
	cluster.DownloadStatusResource: {"patch"},
}

// rbacGrants is everything each ServiceAccount may do (docs/architecture.md, "Namespaces and
// RBAC"): resource -> verbs, in the demo namespace and, for the controller's cluster role,
// elsewhere too. Whatever is not listed must be refused.
var rbacGrants = map[string]map[string][]string{
	cluster.ControllerServiceAccount: {
		cluster.DownloadsResource:                 {"get", "list", "watch", "patch", "delete"},
		cluster.DownloadStatusResource:            {"patch"},
		cluster.DownloadsResource + "/finalizers": {"update"},
		"jobs.batch":                 {"get", "list", "watch", "create", "delete", "patch"}, // patch: followers' owner references
		"pods":                       {"list"},
		"secrets":                    {"create"},
		"events.events.k8s.io":       {"create", "patch"},
		"events":                     {"create", "patch"},
		"leases.coordination.k8s.io": {"get", "list", "watch", "create", "update", "patch"},
	},
	cluster.WorkerServiceAccount: {
		"jobs.batch": {"patch"},
	},
	cluster.FacadeServiceAccount: {
		cluster.DownloadsResource: {"get", "list", "watch", "create", "delete"},
	},
}

// rbacClusterWide are the controller's grants that hold in every namespace (its ClusterRole).
var rbacClusterWide = map[string]bool{
	cluster.DownloadsResource: true, cluster.DownloadStatusResource: true, cluster.DownloadsResource + "/finalizers": true,
	"events.events.k8s.io": true,
}

var _ = Describe("Security", Label(drillLabel, "security"), Ordered, Serial, func() {
	// One Download with the shortest URL expiry and TTL serves S2 to S4; S2, S3 and S1 run, in
	// that order, while its URL and TTL run out, so their checks cost no extra time. S2 and S3
	// come first because they need its worker Pod, which goes with the Job at the TTL.
	var (
		expiring   *downloadv1alpha1.Download
		firstURL   string
		firstUntil time.Time
		// S4's observations, made in the background at the right moments whatever runs then,
		// and S1's matrix, asked in the background meanwhile: kubectl takes its time.
		expirySeen = make(chan expiryObservation, 1)
		ttlSeen    = make(chan ttlObservation, 1)
		rbacSeen   = make(chan rbacObservation, 1)
	)

	BeforeAll(func(ctx SpecContext) {
		expiring = newDrillDownload("security", "drill-s4", []int64{cluster.File1MiB}, 0)
		expiring.Spec.URLExpirySeconds = ptr.To[int32](s4URLExpiry)
		expiring.Spec.TTLSecondsAfterFinished = ptr.To[int32](s4TTL)
		cluster.CreateDownload(ctx, expiring)
		By("capturing the first URL the controller signs")
		Eventually(ctx, func(g Gomega) {
			dl, err := cluster.GetDownload(ctx, expiring.Name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(dl.Status.DownloadURL).NotTo(BeEmpty())
			expiring = dl
		}).WithPolling(200 * time.Millisecond).Should(Succeed())
		firstURL, firstUntil = expiring.Status.DownloadURL, expiring.Status.URLExpiresAt.Time
		Expect(expiring.Status.Phase).To(Equal(downloadv1alpha1.PhaseCompleted))
		code, err := cluster.GetStatusCode(ctx, http.DefaultClient, firstURL)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusOK), "the fresh URL")
		figure("S4.url", "first URL signed at completion %s, valid until %s (%s), GET now: %d",
			expiring.Status.CompletionTime.UTC().Format(time.RFC3339), firstUntil.UTC().Format(time.RFC3339),
			firstUntil.Sub(expiring.Status.CompletionTime.Time), code)

		// The watchers outlive this node, so they get their own context, ended at cleanup.
		watchCtx, stopWatching := context.WithTimeout(context.Background(), 5*time.Minute)
		DeferCleanup(stopWatching)
		watched := expiring.DeepCopy()
		go func() { expirySeen <- observeExpiry(watchCtx, watched, firstURL, firstUntil.Add(5*time.Second)) }()
		go func() { ttlSeen <- observeTTL(watchCtx, watched) }()
		go func() { rbacSeen <- askRBACMatrix(watchCtx) }()
	}, NodeTimeout(3*time.Minute))

	It("S2: admits only restricted Pods, workers included", Label("S2"), func(ctx SpecContext) {
		var ns corev1.Namespace
		Expect(cluster.K8s.Get(ctx, client.ObjectKey{Name: cluster.Env.Namespace}, &ns)).To(Succeed())
		Expect(ns.Labels).To(HaveKeyWithValue(cluster.PSAEnforceLabel, cluster.PSARestricted))
		workers, err := cluster.WorkerPods(ctx, expiring.Name)
		Expect(err).NotTo(HaveOccurred())
		Expect(workers).NotTo(BeEmpty(), "the worker Pod of %s is among the Pods checked", expiring.Name)
		Eventually(ctx, func() ([]string, error) { return cluster.NamespacePodProblems(ctx, true) }).
			WithTimeout(time.Minute).Should(BeEmpty())

		By("submitting a copy of every Pod in the namespace again, as a server-side dry run")
		var pods corev1.PodList
		Expect(cluster.K8s.List(ctx, &pods, client.InNamespace(cluster.Env.Namespace))).To(Succeed())
		var refused []string
		counts := map[string]int{}
		for _, p := range pods.Items {
			if err := readmit(ctx, &p); err != nil {
				refused = append(refused, err.Error())
			}
			counts[p.Labels[cluster.ComponentLabel]]++
		}
		figure("S2.pods", "%d Pods re-admitted under restricted (by component %v); a privileged Pod is refused", len(pods.Items), counts)
		Expect(refused).To(BeEmpty())
		Expect(cluster.PrivilegedPodRejected(ctx)).To(Succeed())
	}, SpecTimeout(3*time.Minute))

	It("S3: never shows the storage credentials", Label("S3"), func(ctx SpecContext) {
		sources := map[string]string{}
		add := func(name string, args ...string) {
			out, err := cluster.Kubectl(ctx, "", args...)
			Expect(err).NotTo(HaveOccurred(), "kubectl %s", strings.Join(args, " "))
			sources[name] = out
		}
		add("Downloads -o yaml", "get", "downloads", "-o", "yaml")
		add("Events (core) -o yaml", "get", "events", "-o", "yaml")
		add("Events (events.k8s.io) -o yaml", "get", "events.events.k8s.io", "-o", "yaml")
		for _, kind := range []string{"pods", "jobs", "downloads", "deployments"} {
			add("describe "+kind, "describe", kind)
		}
		var pods corev1.PodList
		Expect(cluster.K8s.List(ctx, &pods, client.InNamespace(cluster.Env.Namespace))).To(Succeed())
		workerLogs := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodPending {
				continue
			}
			add("logs "+p.Name, "logs", p.Name, "--all-containers")
			if p.Labels[cluster.ComponentLabel] == cluster.WorkerComponent {
				workerLogs++
			}
			if restartCounts([]corev1.Pod{p})[p.Name] > 0 {
				add("previous logs "+p.Name, "logs", p.Name, "--all-containers", "--previous")
			}
		}
		Expect(workerLogs).To(BeNumerically(">", 0), "no worker Pod's logs were scanned")

		// MinIO's root key, which nothing of the operator holds, and the operator's own user,
		// which only the controller holds: neither may show anywhere.
		keys := []struct{ who, accessKey, secretKey string }{
			{"MINIO", cluster.Env.MinioAccessKey, cluster.Env.MinioSecretKey},
			{"OPERATOR", cluster.Env.OperatorAccessKey, cluster.Env.OperatorSecretKey},
		}
		var leaks []string
		bytes, presigned := 0, 0
		for name, text := range sources {
			bytes += len(text)
			for _, k := range keys {
				// SigV4 puts the access key id into every presigned URL by design; only that
				// occurrence is allowed, and it is counted.
				rest, n := withoutPresignedCredential(text, k.accessKey)
				presigned += n
				if strings.Contains(text, k.secretKey) {
					leaks = append(leaks, name+" shows "+k.who+"_SECRET_KEY")
				}
				if strings.Contains(rest, k.accessKey) {
					leaks = append(leaks, name+" shows "+k.who+"_ACCESS_KEY outside a presigned URL")
				}
			}
		}
		sort.Strings(leaks)
		figure("S3.scan", "%d sources (%d KiB: status, Events, describe of pods/jobs/downloads/deployments, logs of %d Pods incl. %d workers): "+
			"root and operator secret keys 0 times; their access key ids only as X-Amz-Credential of %d presigned URLs", len(sources), bytes>>10,
			len(pods.Items), workerLogs, presigned)
		Expect(leaks).To(BeEmpty())
	}, SpecTimeout(3*time.Minute))

	It("S1: gives each ServiceAccount least privilege", Label("S1"), func(ctx SpecContext) {
		var o rbacObservation
		Eventually(ctx, rbacSeen).WithTimeout(4 * time.Minute).Should(Receive(&o))
		Expect(o.err).NotTo(HaveOccurred())
		figure("S1.matrix", "%d kubectl auth can-i checks (each ServiceAccount: %d verb-resource pairs in %s, %d in %s) in %s; allowed %v",
			o.checks, countChecks(rbacMatrix), cluster.Env.Namespace, countChecks(rbacElsewhere),
			otherNamespace, o.took.Round(100*time.Millisecond), o.allowed)
		Expect(o.wrong).To(BeEmpty())

		By("checking kubectl auth can-i --list: no wildcard, no secrets")
		for sa := range rbacGrants {
			for _, ns := range []string{cluster.Env.Namespace, otherNamespace} {
				args := append([]string{"auth", "can-i", "--list", "--namespace=" + ns}, cluster.ServiceAccountFlags(sa)...)
				out, err := cluster.Kubectl(ctx, "", args...)
				Expect(err).NotTo(HaveOccurred())
				Expect(listProblems(out)).To(BeEmpty(), "kubectl auth can-i --list as %s in %s:\n%s", sa, ns, out)
			}
		}
	}, SpecTimeout(5*time.Minute))

	It("S4: stops a URL at its expiry and removes the archive at the TTL", Label("S4"), func(ctx SpecContext) {
		By("waiting until 5 s after the first URL expired")
		var e expiryObservation
		Eventually(ctx, expirySeen).WithTimeout(time.Until(firstUntil) + time.Minute).Should(Receive(&e))
		Expect(e.err).NotTo(HaveOccurred())
		figure("S4.expiry", "first URL %s after its expiry: %d; the re-signed URL (valid until %s): %d",
			e.at.Sub(firstUntil).Round(100*time.Millisecond), e.first, e.current.Status.URLExpiresAt.UTC().Format(time.RFC3339),
			e.fresh)
		Expect(e.first).To(Equal(http.StatusForbidden))
		Expect(e.current.Status.DownloadURL).NotTo(Equal(firstURL), "the controller re-signed the URL before it expired")
		Expect(e.fresh).To(Equal(http.StatusOK), "the archive is still there, only the first URL expired")
		ttlEnd := e.current.Status.CompletionTime.Add(s4TTL * time.Second)
		Expect(e.current.Status.URLExpiresAt.Time).NotTo(BeTemporally(">", ttlEnd), "a URL never outlives the Download")

		By("waiting for the TTL: the Download and its archive go")
		var t ttlObservation
		Eventually(ctx, ttlSeen).WithTimeout(time.Until(ttlEnd) + 2*time.Minute).Should(Receive(&t))
		Expect(t.err).NotTo(HaveOccurred())
		figure("S4.ttl", "Download gone %s after completionTime + %d s; archive exists: %t; incomplete uploads: %d",
			t.gone.Sub(ttlEnd).Round(100*time.Millisecond), s4TTL, t.archive, len(t.uploads))
		Expect(t.gone).To(BeTemporally(">=", ttlEnd.Add(-time.Second)), "not deleted before its TTL")
		Expect(t.archive).To(BeFalse())
		Expect(t.uploads).To(BeEmpty())
	}, SpecTimeout(4*time.Minute))
})

// expiryObservation is what the first URL and the Download looked like after that URL expired.
type expiryObservation struct {
	at           time.Time
	first, fresh int
	current      *downloadv1alpha1.Download
	err          error
}

// observeExpiry waits until at, then GETs the first URL and the Download's current one.
func observeExpiry(ctx context.Context, dl *downloadv1alpha1.Download, first string, at time.Time) expiryObservation {
	sleepUntil(ctx, at)
	o := expiryObservation{at: time.Now()}
	if o.first, o.err = cluster.GetStatusCode(ctx, http.DefaultClient, first); o.err != nil {
		return o
	}
	if o.current, o.err = cluster.GetDownload(ctx, dl.Name); o.err != nil {
		return o
	}
	o.fresh, o.err = cluster.GetStatusCode(ctx, http.DefaultClient, o.current.Status.DownloadURL)
	return o
}

// ttlObservation is when the Download went, and what was left of its archive then.
type ttlObservation struct {
	gone    time.Time
	archive bool
	uploads []string
	err     error
}

// observeTTL waits until the Download is gone, then looks for its archive and uploads.
func observeTTL(ctx context.Context, dl *downloadv1alpha1.Download) ttlObservation {
	var o ttlObservation
	o.err = pollUntil(ctx, 500*time.Millisecond, 5*time.Minute, func(ctx context.Context) (bool, error) {
		err := cluster.K8s.Get(ctx, client.ObjectKeyFromObject(dl), &downloadv1alpha1.Download{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if o.err != nil {
		return o
	}
	o.gone = time.Now()
	if o.archive, o.err = cluster.ArchiveExists(ctx, dl.Status.Archive.Key); o.err != nil {
		return o
	}
	o.uploads, o.err = cluster.IncompleteUploads(ctx, dl.Status.Archive.Key)
	return o
}

// rbacObservation is the outcome of the RBAC matrix.
type rbacObservation struct {
	checks  int
	took    time.Duration
	allowed map[string]int
	wrong   []string
	err     error
}

func countChecks(m map[string][]string) int {
	n := 0
	for _, verbs := range m {
		n += len(verbs)
	}
	return n
}

// askRBACMatrix asks `kubectl auth can-i` about rbacMatrix in the demo namespace and
// rbacElsewhere in otherNamespace, as each ServiceAccount, and lists every answer that differs
// from rbacGrants.
func askRBACMatrix(ctx context.Context) rbacObservation {
	type check struct{ sa, verb, resource, namespace string }
	var checks []check
	for sa := range rbacGrants {
		for ns, matrix := range map[string]map[string][]string{cluster.Env.Namespace: rbacMatrix, otherNamespace: rbacElsewhere} {
			for r, verbs := range matrix {
				for _, v := range verbs {
					checks = append(checks, check{sa, v, r, ns})
				}
			}
		}
	}
	o := rbacObservation{checks: len(checks), allowed: map[string]int{}}
	var mu sync.Mutex
	start := time.Now()
	o.err = forEach(ctx, checks, func(ctx context.Context, c check) error {
		may, err := cluster.CanI(ctx, c.sa, c.verb, c.resource, c.namespace)
		if err != nil {
			return err
		}
		want := slices.Contains(rbacGrants[c.sa][c.resource], c.verb) &&
			(c.namespace == cluster.Env.Namespace || (c.sa == cluster.ControllerServiceAccount && rbacClusterWide[c.resource]))
		mu.Lock()
		defer mu.Unlock()
		if may {
			o.allowed[c.sa]++
		}
		if may != want {
			o.wrong = append(o.wrong, fmt.Sprintf("%s may %s %s in %s: %t, want %t", c.sa, c.verb, c.resource, c.namespace, may, want))
		}
		return nil
	})
	o.took = time.Since(start)
	sort.Strings(o.wrong)
	return o
}

// listProblems lists the rows of `kubectl auth can-i --list` output that grant a wildcard
// resource or verb, or anything on secrets. The non-resource URLs column is left out: its
// /api/* and /apis/* are the discovery paths Kubernetes grants every authenticated user.
func listProblems(out string) []string {
	var problems []string
	for _, line := range strings.Split(out, "\n")[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Fields(line)
		verbs := fields[len(fields)-1]
		resource := ""
		if !strings.HasPrefix(line, " ") {
			resource = fields[0]
		}
		// Creating a worker's credential Secret is the one grant on Secrets, and only the
		// controller's: nothing may read one.
		readsSecrets := strings.Contains(line, "secrets") && verbs != "[create]"
		if strings.Contains(resource, "*") || strings.Contains(verbs, "*") || readsSecrets {
			problems = append(problems, strings.TrimSpace(line))
		}
	}
	return problems
}

// readmit submits a copy of pod as a new Pod with a server-side dry run, so that admission,
// Pod Security included, judges it again as it stands today.
func readmit(ctx context.Context, pod *corev1.Pod) error {
	cp := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "drill-readmit-", Namespace: pod.Namespace, Labels: pod.Labels},
		Spec:       *pod.Spec.DeepCopy(),
	}
	if err := cluster.K8s.Create(ctx, cp, client.DryRunAll); err != nil {
		return fmt.Errorf("pod %s, submitted again: %w", pod.Name, err)
	}
	return nil
}

// withoutPresignedCredential removes the access key id where a presigned URL carries it
// (X-Amz-Credential=<key>/<date>/..., URL-encoded or not) and says how often it did.
func withoutPresignedCredential(text, accessKey string) (string, int) {
	n := 0
	for _, form := range []string{"X-Amz-Credential=" + accessKey + "%2F", "X-Amz-Credential=" + accessKey + "/"} {
		n += strings.Count(text, form)
		text = strings.ReplaceAll(text, form, "X-Amz-Credential=REDACTED/")
	}
	return text, n
}

// sleepUntil sleeps until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}
