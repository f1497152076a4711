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

package controller

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/minio/minio-go/v7"
	"k8s.io/apimachinery/pkg/util/sets"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/download-operator/download-operator/internal/events"
	"github.com/download-operator/download-operator/internal/storage"
	"github.com/download-operator/download-operator/test/chartrbac"
	"github.com/download-operator/download-operator/test/eventsink"
	"github.com/download-operator/download-operator/test/logbuffer"
	"github.com/download-operator/download-operator/test/miniotest"
	"github.com/download-operator/download-operator/test/testenv"
)

// The suite runs the real controller in a manager against envtest (kube-apiserver and etcd) and
// real MinIO. envtest has no Job controller, so tests drive Job status the way it would.
//
// The controller acts as the Helm chart's controller ServiceAccount with the chart's RBAC
// (test/chartrbac, which needs HELM_BIN); after every spec, any request the apiserver refused it
// fails the spec, so a grant missing from the chart fails the suite. Tests themselves act as
// cluster admin (k8sClient), playing users and the Job controller.

const (
	servedNamespace = "default"
	sourceBucket    = "files"
	archiveBucket   = "downloads"
	storageSecret   = "download-storage"
	// publicStorageURL differs from MinIO's real address: URLs must be signed for the host
	// browsers use, which the operator itself may not even resolve.
	publicStorageURL = "http://downloads.public.test:9000"
	// publicFacadeURL makes the archive links in completion events absolute.
	publicFacadeURL = "https://downloads.public.test"
	// eventSinkKey signs the completion events the suite's receiver checks.
	eventSinkKey = "envtest-event-sink-key-0123456789"
)

var (
	ctx       context.Context
	cancel    context.CancelFunc
	env       *testenv.Env
	k8sClient client.Client
	minioSrv  *miniotest.Server
	s3        *minio.Client
	store     *storage.Store
	fakeClock *clocktesting.FakeClock
	logs      = &logbuffer.Buffer{}

	stopManager context.CancelFunc
	managerDone chan struct{}
	// operatorAccessKey is the operator's own MinIO user, which must never reach a worker.
	operatorAccessKey string

	// eventReceiver is the one event sink, for the served namespace; eventSinks its validated
	// configuration, loaded from a sinks file as the controller binary loads it.
	eventReceiver *eventsink.Receiver
	eventSinks    []events.Sink
)

// controllerUser is the chart's controller ServiceAccount, and controllerClient an uncached
// client acting as it.
var (
	// chartRelease holds the chart's ServiceAccounts and RBAC as installed into envtest.
	chartRelease     *chartrbac.Release
	controllerUser   *chartrbac.Identity
	controllerClient client.Client
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	// Every log line also lands in logs, so a test can prove credentials never appear there.
	logf.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, logs)), zap.UseDevMode(true)))
	// Generous bounds: CI shares two cores with MinIO, etcd and kube-apiserver. Eventually returns
	// as soon as its condition holds, so this only costs time when something is really wrong.
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(25 * time.Millisecond)
	ctx, cancel = context.WithCancel(context.Background())

	By("starting kube-apiserver and etcd with the generated CRDs installed")
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient = env.Client

	By("starting MinIO")
	minioSrv, err = miniotest.Start(ctx)
	Expect(err).NotTo(HaveOccurred())
	s3, err = minioSrv.Client()
	Expect(err).NotTo(HaveOccurred())
	for _, bucket := range []string{sourceBucket, archiveBucket} {
		Expect(s3.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})).To(Succeed())
	}
	By("creating the operator's own MinIO user, which mints each worker's credential")
	var operatorSecret string
	operatorAccessKey, operatorSecret, err = minioSrv.OperatorUser(ctx, sourceBucket, archiveBucket)
	Expect(err).NotTo(HaveOccurred())
	store, err = storage.New(storage.Config{
		Endpoint: minioSrv.Endpoint, PublicURL: publicStorageURL, AccessKey: operatorAccessKey, SecretKey: operatorSecret,
	})
	Expect(err).NotTo(HaveOccurred())

	By("applying the Helm chart's RBAC, which is all the controller holds")
	chartRelease, err = chartrbac.Install(ctx, env.Config, chartrbac.Options{
		Namespace: servedNamespace,
		Values:    map[string]any{"storage": map[string]any{"existingSecret": storageSecret}},
	})
	Expect(err).NotTo(HaveOccurred())
	controllerUser, err = chartRelease.Identity(chartrbac.Controller, "")
	Expect(err).NotTo(HaveOccurred())
	controllerClient, err = client.New(controllerUser.Config(), client.Options{Scheme: env.Scheme})
	Expect(err).NotTo(HaveOccurred())

	By("starting the receiver of completion events, the sink of the served namespace")
	eventReceiver, err = eventsink.Start("127.0.0.1:0", []byte(eventSinkKey), nil)
	Expect(err).NotTo(HaveOccurred())
	eventSinks = loadEventSinks(eventReceiver.URL("127.0.0.1"))

	fakeClock = clocktesting.NewFakeClock(time.Now().Truncate(time.Second))
	Expect(RegisterStateMetrics(k8sClient)).To(Succeed())
	startManager()
})

// A grant missing from the chart fails the spec that needed it, even where the controller only
// logs the 403 (Events) or retries forever (a reconcile).
var _ = AfterEach(func() {
	Expect(controllerUser.Refused()).To(Succeed())
})

var _ = AfterSuite(func() {
	By("tearing down the manager, MinIO and the control plane")
	if stopManager != nil {
		stopManager()
		<-managerDone
	}
	if controllerUser != nil {
		Expect(controllerUser.Refused()).To(Succeed())
	}
	cancel()
	if eventReceiver != nil {
		Expect(eventReceiver.Close()).To(Succeed())
	}
	if minioSrv != nil {
		Expect(minioSrv.Stop()).To(Succeed())
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

func testOptions() Options {
	return Options{
		Namespaces:           sets.New(servedNamespace),
		WorkerImage:          "download-operator:test",
		WorkerServiceAccount: "download-worker",
		StorageEndpoint:      minioSrv.Endpoint,
		SourceBucket:         sourceBucket,
		SourceKeyTemplate:    "{id}",
		ArchiveBucket:        archiveBucket,
		Reuse:                ReuseNamespace,
	}
}

// newReconciler builds a reconciler wired as the controller's command does, on the given manager.
func newReconciler(mgr ctrl.Manager, opts Options) *DownloadReconciler {
	r := NewDownloadReconciler(mgr, store, opts)
	r.Clock = fakeClock
	return r
}

// startManager runs the controller as the operator would, as the chart's controller
// ServiceAccount; stopping and starting it again is how tests simulate an operator restart, or
// one whose flags changed (the tweaks).
func startManager(tweaks ...func(*Options)) {
	opts := testOptions()
	for _, tweak := range tweaks {
		tweak(&opts)
	}
	// The binary's manager options, cache included, for the same namespaces as the reconciler;
	// no metrics server, and a controller name that may repeat across restarts.
	options := ManagerOptions(env.Scheme, opts.Namespaces)
	options.Metrics = metricsserver.Options{BindAddress: "0"}
	options.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	mgr, err := ctrl.NewManager(controllerUser.Config(), options)
	Expect(err).NotTo(HaveOccurred())
	r := newReconciler(mgr, opts)
	// Each manager gets its dispatcher, as the binary does: a restart loses the queue and
	// replays recent transitions.
	dispatcher := events.New(eventSinks, events.Options{
		PublicBaseURL: publicFacadeURL, Reader: mgr.GetCache(), Clock: fakeClock, BaseDelay: 50 * time.Millisecond,
	})
	Expect(mgr.Add(dispatcher)).To(Succeed())
	r.Events = dispatcher
	Expect(r.SetupWithManager(mgr)).To(Succeed())

	var mgrCtx context.Context
	mgrCtx, stopManager = context.WithCancel(ctx)
	managerDone = make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(managerDone)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	// Specs start only once the controller sees the cluster, so none races the cache sync.
	Expect(mgr.GetCache().WaitForCacheSync(mgrCtx)).To(BeTrue())
}

// loadEventSinks writes the key and the sinks file the chart would mount, and loads them.
func loadEventSinks(url string) []events.Sink {
	dir := GinkgoT().TempDir()
	keyFile := filepath.Join(dir, "hmacKey")
	Expect(os.WriteFile(keyFile, []byte(eventSinkKey), 0o600)).To(Succeed())
	sinksFile := filepath.Join(dir, "sinks.yaml")
	Expect(os.WriteFile(sinksFile, []byte("sinks:\n- name: envtest\n  namespaces: [\""+servedNamespace+"\"]\n  url: "+url+
		"\n  hmacKeyFile: "+keyFile+"\n"), 0o600)).To(Succeed())
	sinks, err := events.Load(sinksFile, sets.New(servedNamespace))
	Expect(err).NotTo(HaveOccurred())
	return sinks
}

func restartManager(tweaks ...func(*Options)) {
	stopManager()
	<-managerDone
	startManager(tweaks...)
}
