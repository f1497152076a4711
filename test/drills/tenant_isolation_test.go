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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/test/cluster"
)

// Drill S5: tenant isolation. Two namespaces served by one operator, each with a user who may
// edit Downloads only there; worker credentials that reach only their own Download's objects
// and die at their expiry; client identities and Idempotency-Keys that a forged
// X-Forwarded-For cannot move; and a forged worker result that is never signed.
const (
	s5Drill   = "S5"
	s5TenantA = "s5-tenant-a"
	s5TenantB = "s5-tenant-b"
	// s5EditorRole lets a user create, read, watch and delete Downloads where it is bound.
	s5EditorRole = "s5-download-editor"
	// s5Deadline is the activeDeadlineSeconds of the drill's Downloads. The controller gives a
	// credential deadline + 5 min, raised to the STS minimum of 15 min: any deadline up to 600 s
	// yields exactly 15 min, and 180 s leaves a 1 MiB Download plenty of time on two cores.
	s5Deadline int64 = 180
	// s5CredentialLifetime is the STS minimum, what every credential of this drill should get.
	s5CredentialLifetime = 15 * time.Minute
	// s5MaxActive is the per-client cap on active Downloads while S5 runs (the demo allows 250,
	// too many to exhaust cheaply).
	s5MaxActive = 2
	// s5ExpiryInSpec is how long the expiry spec waits by itself; a longer wait is left to the
	// end of the suite, where it overlaps the other drills.
	s5ExpiryInSpec = 2 * time.Minute
)

// Client addresses from the documentation ranges (RFC 5737), which no trusted-proxy network of
// this drill contains: the facade sees them only as X-Forwarded-For hops.
const (
	// s5ClientCapped and s5ClientOther are two real clients behind the (simulated) proxy.
	s5ClientCapped = "203.0.113.10"
	s5ClientOther  = "203.0.113.20"
	// s5ClientIdemA and s5ClientIdemB send the same Idempotency-Key.
	s5ClientIdemA = "203.0.113.30"
	s5ClientIdemB = "203.0.113.40"
	// Hops a client writes itself, to pass as someone else.
	s5ForgedHop      = "198.51.100.66"
	s5OtherForgedHop = "192.0.2.99"
)

// s5TrustedProxies is facade.trustedProxies while S5 runs: the private networks and loopback.
// The demo's forwarder (socat on the host, then the NodePort's masquerade) reaches the facade
// from the Pod bridge's address, a private one on both the local cluster and kind; no address
// this drill writes into X-Forwarded-For is in these networks. NODE_IP is added in case the
// host's own address is public.
var s5TrustedProxies = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8"}

// s5Expiry is the credential BeforeSuite captured for S5's expiry check, and how that check went.
var s5Expiry struct {
	cred *workerCredential
	err  error
	// lastOK is when the credential last read its source object.
	lastOK time.Time
	// pending: S5 ran and left the check to the end of the suite.
	pending bool
}

var _ = Describe("S5: tenant isolation", Label(drillLabel, s5Drill), Ordered, Serial, func() {
	// facade answers the drill's raw API calls. New connections every time: the drill rolls the
	// facade, and a kept-alive connection through the forwarder may lead to a Pod that is gone.
	facade := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	It("S5: ignores X-Forwarded-For from a peer that is no trusted proxy (the demo's facade)", Label("S5"),
		func(ctx SpecContext) {
			// The demo trusts no proxy: every host request is one client, whatever it writes.
			forged := []string{"", s5ForgedHop, s5OtherForgedHop, s5ForgedHop + ", " + s5ClientOther}
			labels := map[string][]string{}
			for _, xff := range forged {
				job := initiateAccepted(ctx, facade, xff, "", cluster.File1MiB)
				label := clientLabelOf(ctx, job)
				labels[label] = append(labels[label], fmt.Sprintf("%q", xff))
			}
			figure("S5.xff.direct", "%d initiates through FACADE_URL with X-Forwarded-For %q: %d distinct client label(s) %v",
				len(forged), forged, len(labels), labels)
			Expect(labels).To(HaveLen(1), "a forged X-Forwarded-For moved the caller to another client")
		}, SpecTimeout(4*time.Minute))

	Context("with two tenant namespaces and the forwarder as a trusted proxy", func() {
		var (
			users = map[string]client.Client{}
			// done holds each tenant's completed Download; creds its worker's credential.
			done  = map[string]*downloadv1alpha1.Download{}
			creds = map[string]workerCredential{}
		)
		tenants := []string{s5TenantA, s5TenantB}
		other := map[string]string{s5TenantA: s5TenantB, s5TenantB: s5TenantA}
		userOf := map[string]string{s5TenantA: "tenant-a", s5TenantB: "tenant-b"}

		BeforeAll(func(ctx SpecContext) {
			Expect(cluster.Env.Helm).NotTo(BeEmpty(), ".demo/env lacks HELM")
			Expect(cluster.Env.HelmRelease).NotTo(BeEmpty(), ".demo/env lacks HELM_RELEASE")
			start := time.Now()

			createTenantNamespaces(ctx, s5Drill, tenants)

			By("granting tenant-a and tenant-b the ClusterRole " + s5EditorRole + " in their own namespace only")
			Expect(createEditorRole(ctx)).To(Succeed())
			DeferCleanup(func(ctx SpecContext) {
				role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: s5EditorRole}}
				Expect(client.IgnoreNotFound(cluster.K8s.Delete(ctx, role))).To(Succeed())
			}, NodeTimeout(time.Minute))
			for _, ns := range tenants {
				Expect(bindEditor(ctx, ns, userOf[ns])).To(Succeed())
				c, err := impersonatingClient(userOf[ns])
				Expect(err).NotTo(HaveOccurred())
				users[ns] = c
			}

			By("helm upgrade: serve both namespaces, trust the forwarder's networks, cap each client at 2 active Downloads")
			trusted := slices.Clone(s5TrustedProxies)
			if cluster.Env.NodeIP != "" {
				trusted = append(trusted, cluster.Env.NodeIP)
			}
			rollout := serveTenants(ctx, tenants,
				"facade.trustedProxies={"+strings.Join(trusted, ",")+"}",
				fmt.Sprintf("facade.maxActivePerClient=%d", s5MaxActive))

			By("each tenant user creates a Download in its own namespace; capturing each worker's credential")
			names := map[string]string{}
			for _, ns := range tenants {
				dl := tenantDownload(ns, "s5-"+strings.TrimPrefix(ns, "s5-"))
				Expect(users[ns].Create(ctx, dl)).To(Succeed(), "%s creating a Download in %s", userOf[ns], ns)
				names[ns] = dl.Name
				DeferCleanup(func(ctx SpecContext) {
					Expect(cluster.DeleteDownloadAndWaitIn(ctx, ns, dl.Name)).To(Succeed())
				}, NodeTimeout(cluster.DeleteTimeout+30*time.Second))
			}
			for _, ns := range tenants {
				cred, err := captureCredential(ctx, ns, names[ns])
				Expect(err).NotTo(HaveOccurred())
				creds[ns] = cred
			}
			for _, ns := range tenants {
				done[ns] = cluster.WaitForCompleteIn(ctx, ns, names[ns], 3*time.Minute)
			}
			figure("S5.setup", "helm upgrade (namespaces %v, facade.trustedProxies %v, maxActivePerClient %d) and rollout %s; "+
				"both tenant Downloads completed %s after the namespaces were created",
				tenants, trusted, s5MaxActive, rollout.Round(time.Second), time.Since(start).Round(time.Second))
		}, NodeTimeout(15*time.Minute))

		It("S5: lets each user edit Downloads in its own namespace only", Label("S5"), func(ctx SpecContext) {
			answers := map[string]string{}
			for _, ns := range tenants {
				u, theirs := users[ns], done[other[ns]]
				record := func(what string, err error) { answers[userOf[ns]+" "+what] = apiAnswer(err) }

				var own downloadv1alpha1.DownloadList
				record("list own", u.List(ctx, &own, client.InNamespace(ns)))
				record("get own", u.Get(ctx, client.ObjectKey{Namespace: ns, Name: done[ns].Name}, &downloadv1alpha1.Download{}))
				record("create other", u.Create(ctx, tenantDownload(other[ns], "s5-intruder"), client.DryRunAll))
				record("get other", u.Get(ctx, client.ObjectKeyFromObject(theirs), &downloadv1alpha1.Download{}))
				record("list other", u.List(ctx, &downloadv1alpha1.DownloadList{}, client.InNamespace(other[ns])))
				record("delete other", u.Delete(ctx, theirs.DeepCopy(), client.DryRunAll))
				// Editing Downloads must not reach the worker's credential next to them.
				record("get own worker credential Secret", u.Get(ctx,
					client.ObjectKey{Namespace: ns, Name: creds[ns].secret}, &corev1.Secret{}))
			}
			figure("S5.rbac", "answers as the impersonated users: %v", answers)
			for _, user := range userOf {
				Expect(answers).To(HaveKeyWithValue(user+" list own", "ok"))
				Expect(answers).To(HaveKeyWithValue(user+" get own", "ok"))
				for _, what := range []string{"create other", "get other", "list other", "delete other", "get own worker credential Secret"} {
					Expect(answers).To(HaveKeyWithValue(user+" "+what, "403"))
				}
			}
		}, SpecTimeout(time.Minute))

		It("S5: confines each worker credential to its own Download's objects", Label("S5"), func(ctx SpecContext) {
			for _, ns := range tenants {
				cred, theirs := creds[ns], done[other[ns]].Status.Archive
				Expect(cred.expires.Sub(cred.minted)).To(BeNumerically("~", s5CredentialLifetime, time.Minute),
					"the credential of %s lives the STS minimum: activeDeadlineSeconds %d + 5 min is less", ns, s5Deadline)
				c, err := cred.s3Client()
				Expect(err).NotTo(HaveOccurred())
				stray := fmt.Sprintf("%s/s5-stray-%s.zip", other[ns], utilrand.String(6))
				strayInSource := "s5-stray-" + utilrand.String(6)
				DeferCleanup(func(ctx SpecContext) {
					// Only a broken policy lets these exist; the root key removes them.
					_ = cluster.S3.RemoveObject(ctx, cluster.Env.ArchiveBucket, stray, minio.RemoveObjectOptions{})
					_ = cluster.S3.RemoveObject(ctx, cluster.Env.SourceBucket, strayInSource, minio.RemoveObjectOptions{})
				})

				answers := map[string]string{}
				_, err = readObject(ctx, c, cluster.Env.SourceBucket, cluster.SourceKey(cluster.File1MiB))
				answers["read own source"] = s3Code(err)
				_, err = readObject(ctx, c, theirs.Bucket, theirs.Key)
				answers["read other archive"] = s3Code(err)
				_, err = c.ListBuckets(ctx)
				answers["list buckets"] = s3Code(err)
				answers["list archive bucket"] = s3Code(firstListError(ctx, c, cluster.Env.ArchiveBucket, other[ns]+"/"))
				answers["write other archive"] = s3Code(putSmall(ctx, c, theirs.Bucket, theirs.Key))
				answers["write new archive key"] = s3Code(putSmall(ctx, c, cluster.Env.ArchiveBucket, stray))
				answers["write source bucket"] = s3Code(putSmall(ctx, c, cluster.Env.SourceBucket, strayInSource))
				answers["delete other archive"] = s3Code(c.RemoveObject(ctx, theirs.Bucket, theirs.Key, minio.RemoveObjectOptions{}))

				info, statErr := cluster.S3.StatObject(ctx, theirs.Bucket, theirs.Key, minio.StatObjectOptions{})
				figure("S5.credential."+ns, "worker credential of %s (STS session, minted %s, expires %s: %s): %v; "+
					"the other tenant's archive afterwards: %s", done[ns].Name, cred.minted.UTC().Format(time.RFC3339),
					cred.expires.UTC().Format(time.RFC3339), cred.expires.Sub(cred.minted), answers, statAnswer(info, statErr))
				Expect(answers).To(HaveKeyWithValue("read own source", "ok"), "the credential works for what it is for")
				for what, code := range answers {
					if what != "read own source" {
						Expect(code).To(Equal("AccessDenied"), "%s with the worker credential of %s", what, ns)
					}
				}
				Expect(statErr).NotTo(HaveOccurred())
				Expect(info.Size).To(Equal(theirs.Size), "the other tenant's archive is untouched")
				for bucket, key := range map[string]string{cluster.Env.ArchiveBucket: stray, cluster.Env.SourceBucket: strayInSource} {
					_, err := cluster.S3.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
					Expect(cluster.IsNoSuchKey(err)).To(BeTrue(), "%s/%s must not exist: %v", bucket, key, err)
				}
			}
		}, SpecTimeout(2*time.Minute))

		It("S5: keeps a caller in its own rate-limit and active-cap bucket whatever X-Forwarded-For it forges",
			Label("S5"), func(ctx SpecContext) {
				// The test plays the trusted proxy: it appends the caller's real address, and a
				// caller may have written anything before it. 128 MiB at the demo's 8 MiB/s keeps
				// the first two Downloads active for the whole check.
				first := initiateAccepted(ctx, facade, s5ClientCapped, "", cluster.File128MiB)
				second := initiateAccepted(ctx, facade, s5ForgedHop+", "+s5ClientCapped, "", cluster.File128MiB)
				// Both facade replicas must have the two Downloads in their caches before the cap
				// is asked; the informer takes milliseconds, two cores under load take longer.
				time.Sleep(3 * time.Second)
				answers := map[string]string{}
				for _, xff := range []string{
					s5OtherForgedHop + ", " + s5ClientCapped,
					s5ForgedHop + ", " + s5OtherForgedHop + ", " + s5ClientCapped,
					s5ClientOther + ", " + s5ClientCapped,
				} {
					a, err := initiateVia(ctx, facade, xff, "", cluster.File1MiB)
					Expect(err).NotTo(HaveOccurred())
					if a.jobID != "" {
						cluster.CleanupDownload(a.jobID)
					}
					answers[xff] = a.String()
				}
				another := initiateAccepted(ctx, facade, s5ClientOther, "", cluster.File1MiB)
				labels := map[string]string{"first": clientLabelOf(ctx, first), "second (forged hop)": clientLabelOf(ctx, second),
					"another client": clientLabelOf(ctx, another)}
				figure("S5.xff.trusted", "client %s at its cap of %d: with forged hops %v; another client %s: 202; "+
					"client labels %v", s5ClientCapped, s5MaxActive, answers, s5ClientOther, labels)
				Expect(labels["second (forged hop)"]).To(Equal(labels["first"]), "a forged hop moved the caller")
				Expect(labels["another client"]).NotTo(Equal(labels["first"]),
					"two clients behind the trusted proxy got one label: the facade does not trust the forwarder's address")
				for xff, answer := range answers {
					Expect(answer).To(HavePrefix("429 TooManyActiveDownloads"), "X-Forwarded-For %q", xff)
				}
			}, SpecTimeout(4*time.Minute))

		It("S5: gives another client's Idempotency-Key a job of its own", Label("S5"), func(ctx SpecContext) {
			key := "s5-" + cluster.RandomHex(8)
			jobA := initiateAccepted(ctx, facade, s5ClientIdemA, key, cluster.File1MiB)
			replayA := initiateAccepted(ctx, facade, s5ClientIdemA, key, cluster.File1MiB)
			jobB := initiateAccepted(ctx, facade, s5ClientIdemB, key, cluster.File1MiB)
			forgedB := initiateAccepted(ctx, facade, s5ClientIdemA+", "+s5ClientIdemB, key, cluster.File1MiB)
			figure("S5.idempotency", "Idempotency-Key %s: client A got %s, and %s again on replay; client B got %s, "+
				"and %s when it forged client A's address as a hop", key, jobA, replayA, jobB, forgedB)
			Expect(replayA).To(Equal(jobA), "the same client's replay")
			Expect(jobB).NotTo(Equal(jobA), "another client's key must not reach the first client's job")
			Expect(forgedB).To(Equal(jobB), "a forged hop must not reach the first client's job")
			Expect(clientLabelOf(ctx, jobB)).NotTo(Equal(clientLabelOf(ctx, jobA)))
		}, SpecTimeout(3*time.Minute))

		It("S5: never signs a result a hostile worker patched to name another tenant's archive", Label("S5"),
			func(ctx SpecContext) {
				victim := done[s5TenantB].Status.Archive
				forged, err := json.Marshal(map[string]any{
					"bucket": victim.Bucket, "key": victim.Key, "size": victim.Size, "sha256": victim.SHA256})
				Expect(err).NotTo(HaveOccurred())
				// The worker identity may patch every Job of its namespace (RBAC cannot name a Job
				// not yet created). The honest worker writes its result once, just before it
				// exits; the hostile one rewrites the annotation every 100 ms until the Job is
				// finished, so the Job controller marks it Complete with the forgery in place.
				// Should the honest result still be what the controller reads, the attempt is
				// repeated (it must then be signed for its own key, never the victim's).
				var outcomes []string
				rejected := false
				for attempt := 1; attempt <= 3 && !rejected; attempt++ {
					dl := tenantDownload(s5TenantA, "s5-forged")
					Expect(users[s5TenantA].Create(ctx, dl)).To(Succeed())
					cluster.CleanupDownloadIn(s5TenantA, dl.Name)
					f := forgeResult(ctx, s5TenantA, dl.Name, string(forged))
					Expect(f.err).NotTo(HaveOccurred())
					final := waitForFinishedIn(ctx, s5TenantA, dl.Name)
					failed := meta.FindStatusCondition(final.Status.Conditions, downloadv1alpha1.ConditionFailed)
					outcome := fmt.Sprintf("attempt %d as %s: %d patches, Job finished with the forgery in place: %t; Download %s",
						attempt, f.identity, f.patches, f.finishedForged, final.Status.Phase)
					switch {
					case failed != nil && failed.Status == metav1.ConditionTrue:
						outcome += " (" + failed.Reason + ": " + failed.Message + ")"
						Expect(failed.Reason).To(Equal(downloadv1alpha1.ReasonResultRejected), outcome)
						rejected = true
					case final.Status.Phase == downloadv1alpha1.PhaseCompleted:
						outcome += " for its own key " + final.Status.Archive.Key + " (the honest result won the race)"
						Expect(final.Status.Archive.Key).To(Equal(s5TenantA + "/" + dl.Name + ".zip"))
					}
					Expect(final.Status.DownloadURL).NotTo(ContainSubstring(victim.Key))
					outcomes = append(outcomes, outcome)
				}

				By("checking that no Download of " + s5TenantA + " points at the archive of " + s5TenantB)
				var list downloadv1alpha1.DownloadList
				Expect(cluster.K8s.List(ctx, &list, client.InNamespace(s5TenantA))).To(Succeed())
				var named []string
				for _, dl := range list.Items {
					u, _ := url.PathUnescape(dl.Status.DownloadURL)
					if strings.Contains(u, victim.Key) || (dl.Status.Archive != nil && dl.Status.Archive.Key == victim.Key) {
						named = append(named, dl.Name)
					}
				}
				figure("S5.forgedResult", "forged result naming %s/%s (%d bytes): %s; Downloads of %s whose URL or archive "+
					"names it: %d of %d", victim.Bucket, victim.Key, victim.Size, strings.Join(outcomes, "; "), s5TenantA,
					len(named), len(list.Items))
				Expect(rejected).To(BeTrue(), "the forgery never reached the controller in 3 attempts: %v", outcomes)
				Expect(named).To(BeEmpty())
			}, SpecTimeout(6*time.Minute))
	})

	It("S5: stops a worker credential at its expiry", Label("S5"), func(ctx SpecContext) {
		Expect(s5Expiry.err).NotTo(HaveOccurred(), "capturing the credential in BeforeSuite")
		Expect(s5Expiry.cred).NotTo(BeNil(),
			"BeforeSuite captures the credential when the label filter selects S5; run S5 with -ginkgo.label-filter")
		cred := *s5Expiry.cred
		if wait := time.Until(cred.expires); wait > s5ExpiryInSpec {
			// The other drills (or, alone, nothing) run meanwhile; the suite's last cleanup checks.
			s5Expiry.pending = true
			figure("S5.expiry", "credential of %s/%s minted %s expires %s (in %s): checked at the end of the suite",
				cred.namespace, cred.download, cred.minted.UTC().Format(time.RFC3339), cred.expires.UTC().Format(time.RFC3339),
				wait.Round(time.Second))
			return
		}
		checkCredentialExpiry(ctx, cred, "in the spec")
	}, SpecTimeout(s5ExpiryInSpec+4*time.Minute))
})

// armS5CredentialExpiry runs in BeforeSuite. When the label filter selects S5, it mints a worker
// credential right away, through a Download of the demo namespace, and registers the suite's
// last cleanup, which checks that the credential stopped working at its expiry. STS mints
// nothing shorter than 15 minutes; minted at the start of the run, the wait overlaps every
// drill run in between instead of adding to the run (a drill alone still waits the rest).
func armS5CredentialExpiry(ctx context.Context) {
	if !Label(drillLabel, s5Drill).MatchesLabelFilter(GinkgoLabelFilter()) {
		return
	}
	By("drill S5: capturing a worker credential now, so that its 15 minutes run out while the other drills run")
	cred, err := captureEarlyCredential(ctx)
	if err != nil {
		// S5's expiry spec reports it; the other drills need not suffer for it.
		s5Expiry.err = err
		GinkgoWriter.Printf("drill S5: no early credential: %v\n", err)
		return
	}
	s5Expiry.cred = &cred
	DeferCleanup(func(ctx SpecContext) {
		if !s5Expiry.pending {
			return
		}
		checkCredentialExpiry(ctx, cred, "at the end of the suite")
	}, NodeTimeout(s5CredentialLifetime+4*time.Minute))
}

// captureEarlyCredential creates a Download in the demo namespace, reads its worker's credential
// while the Job exists, lets it complete (so the credential is the one a worker really used)
// and deletes it again. The credential stays valid in storage until it expires.
func captureEarlyCredential(ctx context.Context) (workerCredential, error) {
	dl := newDrillDownload(s5Drill, "drill-s5-expiry", []int64{cluster.File1MiB}, 0)
	dl.Spec.ActiveDeadlineSeconds = ptr.To(s5Deadline)
	if err := cluster.K8s.Create(ctx, dl); err != nil {
		return workerCredential{}, fmt.Errorf("creating Download %s: %w", dl.Name, err)
	}
	defer func() {
		if err := cluster.DeleteDownloadAndWait(ctx, dl.Name); err != nil {
			GinkgoWriter.Printf("drill S5: %v\n", err)
		}
	}()
	cred, err := captureCredential(ctx, cluster.Env.Namespace, dl.Name)
	if err != nil {
		return cred, err
	}
	final, err := waitFinished(ctx, cluster.Env.Namespace, dl.Name)
	if err != nil {
		return cred, err
	}
	if final.Status.Phase != downloadv1alpha1.PhaseCompleted {
		return cred, fmt.Errorf("download %s ended %s: %v", dl.Name, final.Status.Phase, final.Status.Conditions)
	}
	c, err := cred.s3Client()
	if err != nil {
		return cred, err
	}
	if _, err := readObject(ctx, c, cluster.Env.SourceBucket, cluster.SourceKey(cluster.File1MiB)); err != nil {
		return cred, fmt.Errorf("the fresh worker credential of %s cannot read its source: %w", dl.Name, err)
	}
	s5Expiry.lastOK = time.Now()
	GinkgoWriter.Printf("drill S5: worker credential of %s captured; it expires at %s\n", dl.Name,
		cred.expires.UTC().Format(time.RFC3339))
	return cred, nil
}

// checkCredentialExpiry reads the credential's own source object once shortly before its expiry
// (when there is still time for that) and again from 5 s after it until storage refuses, and
// records how it ended.
func checkCredentialExpiry(ctx context.Context, cred workerCredential, where string) {
	GinkgoHelper()
	start := time.Now()
	c, err := cred.s3Client()
	Expect(err).NotTo(HaveOccurred())
	read := func() error {
		_, err := readObject(ctx, c, cluster.Env.SourceBucket, cluster.SourceKey(cluster.File1MiB))
		return err
	}
	if before := cred.expires.Add(-15 * time.Second); time.Until(before) > 0 {
		By("reading with the credential 15 s before its expiry")
		sleepUntil(ctx, before)
		Expect(read()).To(Succeed(), "15 s before its expiry the credential no longer worked")
		s5Expiry.lastOK = time.Now()
	}
	By("reading with the credential from 5 s after its expiry on")
	sleepUntil(ctx, cred.expires.Add(5*time.Second))
	var refused error
	// Storage checks the expiry at every request; the poll allows for its clock running behind.
	Expect(pollUntil(ctx, 2*time.Second, 2*time.Minute, func(context.Context) (bool, error) {
		if refused = read(); refused == nil {
			s5Expiry.lastOK = time.Now()
			return false, nil
		}
		return true, nil
	})).To(Succeed(), "the credential still worked 2 min after its expiry")
	refusedAt := time.Now()
	figure("S5.expiry", "credential of %s/%s minted %s, expires %s (%s): last worked %s before the expiry, refused %s after it "+
		"with %s; checked %s, which waited %s", cred.namespace, cred.download, cred.minted.UTC().Format(time.RFC3339),
		cred.expires.UTC().Format(time.RFC3339), cred.expires.Sub(cred.minted), cred.expires.Sub(s5Expiry.lastOK).Round(100*time.Millisecond),
		refusedAt.Sub(cred.expires).Round(100*time.Millisecond), s3Code(refused), where, time.Since(start).Round(time.Second))
	Expect(cred.expires.Sub(cred.minted)).To(BeNumerically("~", s5CredentialLifetime, time.Minute))
	Expect(s3Code(refused)).To(BeElementOf("ExpiredToken", "InvalidAccessKeyId", "AccessDenied", "InvalidToken",
		"InvalidClientTokenId"))
}

// workerCredential is what a worker finds in its credential Secret.
type workerCredential struct {
	namespace, download, secret        string
	accessKey, secretKey, sessionToken string
	minted, expires                    time.Time
}

// captureCredential waits for the credential Secret of the Download's Job (the Job is named
// after the Download) and reads it as cluster admin, as someone who can read Secrets there could.
func captureCredential(ctx context.Context, ns, download string) (workerCredential, error) {
	cred := workerCredential{namespace: ns, download: download, secret: download + cluster.CredentialSecretSuffix}
	var secret corev1.Secret
	err := pollUntil(ctx, 200*time.Millisecond, 2*time.Minute, func(ctx context.Context) (bool, error) {
		err := cluster.K8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: cred.secret}, &secret)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return cred, fmt.Errorf("waiting for the worker credential Secret %s/%s: %w", ns, cred.secret, err)
	}
	cred.accessKey, cred.secretKey = string(secret.Data["accessKey"]), string(secret.Data["secretKey"])
	cred.sessionToken = string(secret.Data["sessionToken"])
	cred.minted = secret.CreationTimestamp.Time
	if cred.expires, err = time.Parse(time.RFC3339, secret.Annotations[downloadv1alpha1.CredentialExpiresAnnotation]); err != nil {
		return cred, fmt.Errorf("secret %s/%s: annotation %s: %w", ns, cred.secret,
			downloadv1alpha1.CredentialExpiresAnnotation, err)
	}
	if cred.accessKey == "" || cred.secretKey == "" || cred.sessionToken == "" {
		return cred, fmt.Errorf("secret %s/%s lacks accessKey, secretKey or sessionToken", ns, cred.secret)
	}
	if cred.accessKey == cluster.Env.MinioAccessKey {
		return cred, fmt.Errorf("secret %s/%s holds MinIO's root key", ns, cred.secret)
	}
	return cred, nil
}

// s3Client reaches MinIO from the host with the credential, as a worker would from its Pod.
func (c workerCredential) s3Client() (*minio.Client, error) {
	return cluster.NewMinioClient(credentials.NewStaticV4(c.accessKey, c.secretKey, c.sessionToken))
}

// readObject reads a whole object and returns its size.
func readObject(ctx context.Context, c *minio.Client, bucket, key string) (int64, error) {
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return 0, err
	}
	defer func() { _ = obj.Close() }()
	return io.Copy(io.Discard, obj)
}

// putSmall writes a few bytes at key.
func putSmall(ctx context.Context, c *minio.Client, bucket, key string) error {
	payload := []byte("written by drill S5 with a worker credential")
	_, err := c.PutObject(ctx, bucket, key, bytes.NewReader(payload), int64(len(payload)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	return err
}

// firstListError lists bucket under prefix and returns the first error, nil if the list went through.
func firstListError(ctx context.Context, c *minio.Client, bucket, prefix string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return obj.Err
		}
	}
	return nil
}

// s3Code is "ok" for no error, else the S3 error code (or the error text, without one).
func s3Code(err error) string {
	if err == nil {
		return "ok"
	}
	if code := minio.ToErrorResponse(err).Code; code != "" {
		return code
	}
	return err.Error()
}

func statAnswer(info minio.ObjectInfo, err error) string {
	if err != nil {
		return s3Code(err)
	}
	return fmt.Sprintf("%d bytes, ETag %s", info.Size, info.ETag)
}

// apiAnswer is "ok", the HTTP status of an API error, or its text.
func apiAnswer(err error) string {
	if err == nil {
		return "ok"
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return strconv.Itoa(int(status.Status().Code))
	}
	return err.Error()
}

// tenantDownload is a 1 MiB Download in ns with the drill's deadline, named prefix-<random>.
func tenantDownload(ns, prefix string) *downloadv1alpha1.Download {
	dl := newDrillDownload(s5Drill, prefix, []int64{cluster.File1MiB}, 0)
	dl.Namespace = ns
	dl.Spec.ActiveDeadlineSeconds = ptr.To(s5Deadline)
	return dl
}

// waitFinished waits until the Download is Completed or Failed and returns it.
func waitFinished(ctx context.Context, ns, name string) (*downloadv1alpha1.Download, error) {
	var dl *downloadv1alpha1.Download
	err := pollUntil(ctx, cluster.DefaultPoll, 3*time.Minute, func(ctx context.Context) (bool, error) {
		var err error
		dl, err = cluster.GetDownloadIn(ctx, ns, name)
		return err == nil && cluster.Finished(dl), err
	})
	if err != nil {
		return dl, fmt.Errorf("waiting for Download %s/%s to finish: %w", ns, name, err)
	}
	return dl, nil
}

func waitForFinishedIn(ctx context.Context, ns, name string) *downloadv1alpha1.Download {
	GinkgoHelper()
	dl, err := waitFinished(ctx, ns, name)
	Expect(err).NotTo(HaveOccurred())
	return dl
}

// forgery is how a hostile worker's attempt on a Job went.
type forgery struct {
	identity       string
	patches        int
	finishedForged bool
	err            error
}

// forgeResult acts as the worker ServiceAccount of ns, the identity every worker Pod there has:
// it patches the result annotation of the Download's Job to forged every 100 ms from the Job's
// creation until the Job is finished. The patch answers are its only view of the Job: that
// identity may not even get Jobs.
func forgeResult(ctx context.Context, ns, download, forged string) forgery {
	f := forgery{identity: "system:serviceaccount:" + ns + ":" + cluster.WorkerServiceAccount}
	hostile, err := impersonatingClient(f.identity, "system:serviceaccounts", "system:serviceaccounts:"+ns)
	if err != nil {
		f.err = err
		return f
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{cluster.ResultAnnotation: forged}}})
	if err != nil {
		f.err = err
		return f
	}
	f.err = pollUntil(ctx, 100*time.Millisecond, 3*time.Minute, func(ctx context.Context) (bool, error) {
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: download}}
		err := hostile.Patch(ctx, job, client.RawPatch(types.MergePatchType, patch))
		if apierrors.IsNotFound(err) {
			return false, nil // the controller has not created the Job yet
		}
		if err != nil {
			return false, fmt.Errorf("patching Job %s/%s as %s: %w", ns, download, f.identity, err)
		}
		f.patches++
		// The controller reads the result when the Job is Complete: until the Job is Complete
		// or Failed, the forgery is kept up over the honest worker's last write.
		if jobConditionTrue(job, batchv1.JobComplete, batchv1.JobFailed) {
			f.finishedForged = job.Annotations[cluster.ResultAnnotation] == forged
			return true, nil
		}
		return false, nil
	})
	return f
}

// impersonatingClient is a client of the demo cluster that acts as user (with groups) through
// impersonation by the admin kubeconfig.
func impersonatingClient(user string, groups ...string) (client.Client, error) {
	cfg, err := cluster.NewRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	c, err := cluster.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("acting as %s: %w", user, err)
	}
	return c, nil
}

// podSecurityLabels are the Pod Security labels of the demo namespace.
func podSecurityLabels(ctx context.Context) map[string]string {
	GinkgoHelper()
	var ns corev1.Namespace
	Expect(cluster.K8s.Get(ctx, client.ObjectKey{Name: cluster.Env.Namespace}, &ns)).To(Succeed())
	labels := map[string]string{}
	for k, v := range ns.Labels {
		if strings.HasPrefix(k, "pod-security.kubernetes.io/") {
			labels[k] = v
		}
	}
	Expect(labels).To(HaveKeyWithValue(cluster.PSAEnforceLabel, cluster.PSARestricted))
	return labels
}

// createTenantNamespaces creates a drill's tenant namespaces with the demo namespace's Pod
// Security labels, and registers their deletion. Registered first, it runs last of the drill's
// cleanups: Downloads go, the release is rolled back, then the namespaces go.
func createTenantNamespaces(ctx context.Context, drill string, tenants []string) {
	GinkgoHelper()
	By("creating " + strings.Join(tenants, " and ") + " with the demo namespace's Pod Security labels")
	psa := podSecurityLabels(ctx)
	for _, ns := range tenants {
		Expect(recreateNamespace(ctx, ns, drill, psa)).To(Succeed())
	}
	DeferCleanup(func(ctx SpecContext) {
		for _, ns := range tenants {
			Expect(deleteNamespaceAndWait(ctx, ns)).To(Succeed())
		}
	}, NodeTimeout(5*time.Minute))
}

// serveTenants makes the operator serve the tenant namespaces, with the further values of sets,
// by helm upgrade --reuse-values, and registers the rollback. It returns how long the upgrade
// and the rollout took.
func serveTenants(ctx context.Context, tenants []string, sets ...string) time.Duration {
	GinkgoHelper()
	revision, err := helmRevision(ctx)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		By(fmt.Sprintf("rolling the release back to revision %d", revision))
		_, err := cluster.Helm(ctx, "rollback", cluster.Env.HelmRelease, strconv.Itoa(revision), "--wait", "--timeout", "5m")
		Expect(err).NotTo(HaveOccurred())
		waitForOperator(ctx, nil, tenants)
	}, NodeTimeout(8*time.Minute))
	start := time.Now()
	sets = append([]string{"namespaces={" + strings.Join(tenants, ",") + "}"}, sets...)
	Expect(cluster.UpgradeRelease(ctx, 5*time.Minute, sets...)).To(Succeed())
	waitForOperator(ctx, tenants, nil)
	return time.Since(start)
}

// recreateNamespace creates the namespace, labelled with the drill, after removing one an
// aborted run left behind.
func recreateNamespace(ctx context.Context, name, drill string, labels map[string]string) error {
	if err := deleteNamespaceAndWait(ctx, name); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	ns.Labels[drillDownloadLabel] = drill
	if err := cluster.K8s.Create(ctx, ns); err != nil {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// deleteNamespaceAndWait deletes the namespace, if it exists, and waits until it and everything
// in it are gone.
func deleteNamespaceAndWait(ctx context.Context, name string) error {
	return cluster.DeleteAndWait(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, 4*time.Minute)
}

// createEditorRole creates (or replaces) the ClusterRole for editing Downloads.
func createEditorRole(ctx context.Context) error {
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: s5EditorRole, Labels: map[string]string{drillDownloadLabel: s5Drill}},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{downloadv1alpha1.GroupVersion.Group},
			Resources: []string{"downloads"},
			Verbs:     []string{"create", "get", "list", "watch", "delete"},
		}},
	}
	if err := cluster.K8s.Delete(ctx, role.DeepCopy()); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting ClusterRole %s: %w", s5EditorRole, err)
	}
	if err := cluster.K8s.Create(ctx, role); err != nil {
		return fmt.Errorf("creating ClusterRole %s: %w", s5EditorRole, err)
	}
	return nil
}

// bindEditor binds the editor ClusterRole to user in ns only.
func bindEditor(ctx context.Context, ns, user string) error {
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: s5EditorRole + "-" + user, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: s5EditorRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if err := cluster.K8s.Create(ctx, binding); err != nil {
		return fmt.Errorf("binding %s to %s in %s: %w", s5EditorRole, user, ns, err)
	}
	return nil
}

// helmRevision is the release's current revision.
func helmRevision(ctx context.Context) (int, error) {
	out, err := cluster.Helm(ctx, "status", cluster.Env.HelmRelease, "--output", "json")
	if err != nil {
		return 0, err
	}
	var status struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal([]byte(out), &status); err != nil || status.Version == 0 {
		return 0, fmt.Errorf("reading the revision from helm status: %v\n%s", err, out)
	}
	return status.Version, nil
}

// waitForOperator waits until the controller's rollout is over, with every replica, the leader
// included, serving the namespaces in serving and none in notServing (a replica of the old
// configuration could otherwise still mark a Download NamespaceNotServed), and until the facade
// answers through FACADE_URL again.
func waitForOperator(ctx context.Context, serving, notServing []string) {
	GinkgoHelper()
	cluster.WaitForDeploymentReady(ctx, cluster.ControllerDeployment, 4*time.Minute)
	Eventually(ctx, func(g Gomega) {
		pods, err := cluster.ComponentPods(ctx, cluster.ControllerComponent)
		g.Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, p := range pods {
			g.Expect(p.DeletionTimestamp).To(BeNil(), "controller Pod %s is still terminating", p.Name)
			args := strings.Join(p.Spec.Containers[0].Args, " ")
			for _, ns := range serving {
				g.Expect(args).To(ContainSubstring(ns), "controller Pod %s", p.Name)
			}
			for _, ns := range notServing {
				g.Expect(args).NotTo(ContainSubstring(ns), "controller Pod %s", p.Name)
			}
			names = append(names, p.Name)
		}
		holder, err := leaseHolder(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(names).To(ContainElement(podOfHolder(holder)), "the leader is a Pod of the new configuration")
	}).WithTimeout(4 * time.Minute).WithPolling(time.Second).Should(Succeed())
	cluster.WaitForDeploymentReady(ctx, cluster.FacadeDeployment, 4*time.Minute)
	Eventually(ctx, func() error { return cluster.GetOK(ctx, cluster.Env.FacadeURL+"/health") }).Should(Succeed())
}

// initiateAnswer is what POST /v1/download/initiate answered.
type initiateAnswer struct {
	code             int
	jobID, errorCode string
}

func (a initiateAnswer) String() string {
	return strings.TrimSpace(fmt.Sprintf("%d %s%s", a.code, a.errorCode, a.jobID))
}

// initiateVia POSTs an initiate through FACADE_URL with the given X-Forwarded-For and
// Idempotency-Key (each left out when empty). A 503 while a new facade Pod syncs is retried.
func initiateVia(ctx context.Context, c *http.Client, xff, key string, ids ...int64) (initiateAnswer, error) {
	body, err := json.Marshal(map[string][]int64{"file_ids": ids})
	if err != nil {
		return initiateAnswer{}, err
	}
	var a initiateAnswer
	err = pollUntil(ctx, time.Second, time.Minute, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, cluster.Env.FacadeURL+"/v1/download/initiate",
			bytes.NewReader(body))
		if err != nil {
			return false, err
		}
		req.Header.Set("Content-Type", "application/json")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := c.Do(req)
		if err != nil {
			return false, err
		}
		defer func() { _ = resp.Body.Close() }()
		var answer struct {
			JobID string `json:"jobId"`
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = json.Unmarshal(raw, &answer)
		a = initiateAnswer{code: resp.StatusCode, jobID: answer.JobID, errorCode: answer.Error.Code}
		return resp.StatusCode != http.StatusServiceUnavailable, nil
	})
	if err != nil {
		return a, fmt.Errorf("POST /v1/download/initiate with X-Forwarded-For %q: %w", xff, err)
	}
	GinkgoWriter.Printf("initiate with X-Forwarded-For %q, Idempotency-Key %q: %s\n", xff, key, a)
	return a, nil
}

// initiateAccepted is initiateVia that must answer 202; it registers the job's removal.
func initiateAccepted(ctx context.Context, c *http.Client, xff, key string, ids ...int64) string {
	GinkgoHelper()
	a, err := initiateVia(ctx, c, xff, key, ids...)
	Expect(err).NotTo(HaveOccurred())
	Expect(a.code).To(Equal(http.StatusAccepted), "initiate with X-Forwarded-For %q: %s", xff, a)
	Expect(a.jobID).NotTo(BeEmpty())
	cluster.CleanupDownload(a.jobID)
	return a.jobID
}

// clientLabelOf is the client label the facade gave the job's Download.
func clientLabelOf(ctx context.Context, jobID string) string {
	GinkgoHelper()
	dl, err := cluster.GetDownload(ctx, jobID)
	Expect(err).NotTo(HaveOccurred())
	Expect(dl.Labels).To(HaveKey(cluster.ClientLabel))
	return dl.Labels[cluster.ClientLabel]
}
