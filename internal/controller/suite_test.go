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
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/minio/minio-go/v7"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/download-operator/download-operator/internal/storage"
	"github.com/download-operator/download-operator/test/logbuffer"
	"github.com/download-operator/download-operator/test/miniotest"
	"github.com/download-operator/download-operator/test/testenv"
)

// The suite runs the real controller in a manager against envtest (kube-apiserver and etcd) and
// real MinIO. envtest has no Job controller, so tests drive Job status the way it would.

const (
	servedNamespace = "default"
	archiveBucket   = "downloads"
	storageSecret   = "download-storage"
	// publicStorageURL differs from MinIO's real address: URLs must be signed for the host
	// browsers use, which the operator itself may not even resolve.
	publicStorageURL = "http://downloads.public.test:9000"
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
	Expect(s3.MakeBucket(ctx, archiveBucket, minio.MakeBucketOptions{})).To(Succeed())
	store, err = storage.New(storage.Config{
		Endpoint: minioSrv.Endpoint, PublicURL: publicStorageURL,
		AccessKey: minioSrv.AccessKey, SecretKey: minioSrv.SecretKey,
	})
	Expect(err).NotTo(HaveOccurred())

	Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: storageSecret, Namespace: servedNamespace},
		StringData: map[string]string{StorageAccessKeyKey: minioSrv.AccessKey, StorageSecretKeyKey: minioSrv.SecretKey},
	})).To(Succeed())

	fakeClock = clocktesting.NewFakeClock(time.Now().Truncate(time.Second))
	Expect(RegisterStateMetrics(k8sClient)).To(Succeed())
	startManager()
})

var _ = AfterSuite(func() {
	By("tearing down the manager, MinIO and the control plane")
	if stopManager != nil {
		stopManager()
		<-managerDone
	}
	cancel()
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
		StorageSecret:        storageSecret,
		StorageEndpoint:      minioSrv.Endpoint,
		SourceBucket:         "files",
		SourceKeyTemplate:    "{id}",
		ArchiveBucket:        archiveBucket,
	}
}

// newReconciler builds a reconciler wired like cmd/main.go does, on the given manager.
func newReconciler(mgr ctrl.Manager) *DownloadReconciler {
	r := NewDownloadReconciler(mgr, store, testOptions())
	r.Clock = fakeClock
	return r
}

// startManager runs the controller as the operator would; stopping and starting it again is how
// tests simulate an operator restart.
func startManager() {
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:     env.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(newReconciler(mgr).SetupWithManager(mgr)).To(Succeed())

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

func restartManager() {
	stopManager()
	<-managerDone
	startManager()
}
