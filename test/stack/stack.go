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

// Package stack runs all of download-operator inside one test process against real parts:
// kube-apiserver and etcd (envtest), the MinIO server, the controller in a controller-runtime
// manager, the controller's file-check endpoint (with its archive links) and the facade, the last
// two on loopback httptest servers. envtest has no kubelet and no Job controller, so the helpers
// StartJob, RunWorker, CompleteJob and FailJob play those parts when a test says so, in the order
// the real ones act; the apiserver validates every Job status transition as it would in a cluster.
//
// The controller, the facade and RunWorker's workers talk to the apiserver as their Helm chart
// ServiceAccounts, holding only the RBAC that charts/download-operator grants (test/chartrbac
// renders it with HELM_BIN and applies it), so every test also proves the chart grants enough.
// Stop fails when the apiserver refused the controller or a facade anything. Every request a
// facade makes is counted (Facade.APIRequests).
//
// The package is plain Go: it returns errors and never calls testing or Ginkgo, so Ginkgo
// suites and plain tests use it alike.
//
//	s, err := stack.Start(ctx, stack.Options{})
//	defer s.Stop()
//	resp, _ := http.Post(s.Facade.URL+"/v1/download/initiate", "application/json", body)
//	...
//	download, err := s.RunToCompletion(ctx, jobID)
//
// It needs KUBEBUILDER_ASSETS and MINIO_BIN, as every envtest suite here does, and HELM_BIN.
package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/minio/minio-go/v7"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/download-operator/download-operator/internal/archivelink"
	"github.com/download-operator/download-operator/internal/controller"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/internal/filecheck"
	"github.com/download-operator/download-operator/internal/storage"
	"github.com/download-operator/download-operator/internal/worker"
	"github.com/download-operator/download-operator/test/chartrbac"
	"github.com/download-operator/download-operator/test/miniotest"
	"github.com/download-operator/download-operator/test/testenv"
)

// Names the stack uses, as the Helm chart would.
const (
	// Namespace is the one served namespace: Downloads, Jobs and the worker credential Secrets live here.
	Namespace     = "default"
	SourceBucket  = "files"
	ArchiveBucket = "downloads"
	StorageSecret = "download-storage"
	// FacadeUser is the identity of every facade the stack starts: the chart's facade
	// ServiceAccount, which holds only the chart's FacadeRole.
	FacadeUser = "system:serviceaccount:" + Namespace + ":" + chartrbac.DefaultRelease + "-facade"
	FacadeRole = chartrbac.DefaultRelease + "-facade"
	// WorkerImage is what the controller writes into Jobs; RunWorker runs the code in-process.
	WorkerImage = "download-operator:test"
)

// DefaultWait bounds every Wait* helper whose context has no earlier deadline.
const DefaultWait = 30 * time.Second

// Options adjust the stack.
type Options struct {
	// Facade adjusts the configuration of the stack's facade. It starts from
	// facade.DefaultConfig(Namespace) with ControllerURL set to the file-check server, the
	// client taken from X-Forwarded-For when it comes from loopback (TrustedProxies = facade.Loopback)
	// and rate limits high enough for tests.
	Facade func(*facade.Config)
	// Log receives the logs of the controller and the facades; nil discards them. Start points
	// controller-runtime's global logger at it.
	Log io.Writer
	// WithoutOperator starts only what the operator runs against: the control plane, MinIO with
	// its buckets, the operator's MinIO user and the chart's RBAC. Neither the controller, nor the
	// file-check server, nor a facade is started, for tests that run `download-operator
	// controller` and `download-operator facade` as processes of their own (with
	// ControllerKubeconfig and FacadeKubeconfig). Controller still holds the options the
	// controller is to be started with, and the Job helpers play their parts as usual.
	WithoutOperator bool
	// EditRBAC, when set, changes the chart's RBAC before it is applied
	// (chartrbac.Options.Edit), for tests that prove a grant is needed by taking it away.
	EditRBAC func([]client.Object) error
}

// Stack is a running download-operator with its dependencies.
type Stack struct {
	// Env is the control plane; Admin is a cluster-admin client without cache.
	Env   *testenv.Env
	Admin client.Client
	// MinIO is the storage server and S3 a root client for it.
	MinIO *miniotest.Server
	S3    *minio.Client
	// Controller is the reconciler's configuration (buckets, key template, served namespace).
	Controller controller.Options
	// FileCheck serves internal/filecheck for the source bucket, as the controller process does.
	FileCheck *httptest.Server
	// Facade is the facade the stack started; StartFacade starts more (for other configurations
	// or for replicas).
	Facade *Facade
	// OperatorAccessKey and OperatorSecretKey are the controller's own MinIO user (never root);
	// workers get only the credentials the controller mints from it.
	OperatorAccessKey string
	OperatorSecretKey string
	// RBAC is the chart's RBAC as applied: the ServiceAccounts the controller, the facades and
	// the workers act as.
	RBAC *chartrbac.Release
	// FacadeKubeconfig is a kubeconfig file for the facade's ServiceAccount, for running a
	// facade elsewhere: `download-operator facade --kubeconfig`, or a fuzz worker process.
	FacadeKubeconfig string
	// ControllerKubeconfig is a kubeconfig file for the controller's ServiceAccount, for running
	// `download-operator controller` elsewhere.
	ControllerKubeconfig string

	log            io.Writer
	facadeOptions  func(*facade.Config)
	controllerUser *chartrbac.Identity
	// store and controllerCache are the controller's signer and cache, which the archive links
	// of NewFileCheckServer use as the controller process does.
	store           *storage.Store
	controllerCache cache.Cache
	facadeUser      *chartrbac.Identity
	// workerServiceAccount is the chart's worker ServiceAccount in Namespace, which Jobs name.
	workerServiceAccount string
	tempDir              string
	stopManager          context.CancelFunc
	managerDone          chan error

	mu       sync.Mutex
	facades  []*Facade
	savedEnv map[string]*string
}

// Start brings everything up and returns once the facade's cache has synced. On error it stops
// whatever it had started.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	s := &Stack{log: opts.Log, facadeOptions: opts.Facade, savedEnv: map[string]*string{}}
	if s.log == nil {
		s.log = io.Discard
	}
	logf.SetLogger(zap.New(zap.WriteTo(s.log), zap.UseDevMode(true)))
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
		}
	}()

	if s.tempDir, err = os.MkdirTemp("", "download-stack-"); err != nil {
		return nil, fmt.Errorf("creating temp dir: %w", err)
	}
	if s.Env, err = testenv.Start(); err != nil {
		return nil, err
	}
	s.Admin = s.Env.Client
	if s.MinIO, err = miniotest.Start(ctx); err != nil {
		return nil, fmt.Errorf("starting MinIO: %w", err)
	}
	if s.S3, err = s.MinIO.Client(); err != nil {
		return nil, err
	}
	for _, bucket := range []string{SourceBucket, ArchiveBucket} {
		if err := s.S3.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
			return nil, fmt.Errorf("creating bucket %s: %w", bucket, err)
		}
	}
	// The controller holds a dedicated MinIO user, as the chart README asks; workers get only
	// what it mints for them.
	if s.OperatorAccessKey, s.OperatorSecretKey, err = s.MinIO.OperatorUser(ctx, SourceBucket, ArchiveBucket); err != nil {
		return nil, err
	}
	if err := s.installRBAC(ctx, opts.EditRBAC); err != nil {
		return nil, err
	}
	s.Controller = s.controllerOptions()
	if opts.WithoutOperator {
		return s, nil
	}
	if err := s.startController(); err != nil {
		return nil, err
	}
	s.FileCheck = s.NewFileCheckServer()
	if s.Facade, err = s.StartFacade(ctx, s.facadeOptions); err != nil {
		return nil, err
	}
	return s, nil
}

// installRBAC applies the chart's RBAC, as installed into Namespace, and writes the kubeconfigs
// of the controller's and the facade's ServiceAccounts.
func (s *Stack) installRBAC(ctx context.Context, edit func([]client.Object) error) error {
	var err error
	if s.RBAC, err = chartrbac.Install(ctx, s.Env.Config, chartrbac.Options{
		Namespace: Namespace,
		Values:    map[string]any{"storage": map[string]any{"existingSecret": StorageSecret}},
		Edit:      edit,
	}); err != nil {
		return fmt.Errorf("applying the chart's RBAC: %w", err)
	}
	if s.controllerUser, err = s.RBAC.Identity(chartrbac.Controller, ""); err != nil {
		return err
	}
	if s.facadeUser, err = s.RBAC.Identity(chartrbac.Facade, ""); err != nil {
		return err
	}
	workerUser, err := s.RBAC.Identity(chartrbac.Worker, Namespace)
	if err != nil {
		return err
	}
	s.workerServiceAccount = workerUser.Name
	if s.facadeUser.User() != FacadeUser {
		return fmt.Errorf("the chart's facade is %s, not FacadeUser %s", s.facadeUser.User(), FacadeUser)
	}
	if s.FacadeKubeconfig, err = writeKubeconfig(s.facadeUser, filepath.Join(s.tempDir, "facade-kubeconfig")); err != nil {
		return err
	}
	s.ControllerKubeconfig, err = writeKubeconfig(s.controllerUser, filepath.Join(s.tempDir, "controller-kubeconfig"))
	return err
}

func writeKubeconfig(user *chartrbac.Identity, path string) (string, error) {
	raw, err := user.Kubeconfig()
	if err != nil {
		return "", fmt.Errorf("rendering the kubeconfig %s: %w", path, err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// workerKubeconfig writes a kubeconfig for the ServiceAccount job's Pod runs as, which must be
// the chart's worker ServiceAccount in the Job's namespace: a Job naming another would get no
// grant in a cluster.
func (s *Stack) workerKubeconfig(job *batchv1.Job) (string, error) {
	user, err := s.RBAC.Identity(chartrbac.Worker, job.Namespace)
	if err != nil {
		return "", err
	}
	if sa := job.Spec.Template.Spec.ServiceAccountName; sa != user.Name {
		return "", fmt.Errorf("job %s/%s runs as ServiceAccount %q, but the chart's worker is %q", job.Namespace, job.Name, sa, user.Name)
	}
	return writeKubeconfig(user, filepath.Join(s.tempDir, "worker-kubeconfig-"+job.Namespace))
}

// controllerOptions configure the controller as the chart would for this stack.
func (s *Stack) controllerOptions() controller.Options {
	return controller.Options{
		Namespaces:           sets.New(Namespace),
		WorkerImage:          WorkerImage,
		WorkerServiceAccount: s.workerServiceAccount,
		StorageEndpoint:      s.MinIO.Endpoint,
		SourceBucket:         SourceBucket,
		SourceKeyTemplate:    "{id}",
		ArchiveBucket:        ArchiveBucket,
		// The Job helpers play one Job per Download, and the suites on this stack ask for the
		// same files again and again; reuse has its own specs (internal/controller, test/e2e).
		Reuse: controller.ReuseOff,
	}
}

// startController runs the reconciler as the chart's controller ServiceAccount,
// in a manager built from controller.ManagerOptions, as the binary builds its own.
func (s *Stack) startController() error {
	// URLs are signed for MinIO's real address, so tests can download the archive through them.
	store, err := storage.New(storage.Config{
		Endpoint: s.MinIO.Endpoint, PublicURL: "http://" + s.MinIO.Endpoint,
		AccessKey: s.OperatorAccessKey, SecretKey: s.OperatorSecretKey,
	})
	if err != nil {
		return fmt.Errorf("configuring storage: %w", err)
	}
	// The binary's manager options, cache included; no metrics server, and a controller name
	// that may repeat when a test starts a second stack.
	options := controller.ManagerOptions(s.Env.Scheme, s.Controller.Namespaces)
	options.Metrics = metricsserver.Options{BindAddress: "0"}
	options.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	mgr, err := ctrl.NewManager(s.controllerUser.Config(), options)
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	s.store, s.controllerCache = store, mgr.GetCache()
	reconciler := controller.NewDownloadReconciler(mgr, store, s.Controller)
	if err := reconciler.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the reconciler: %w", err)
	}
	var mgrCtx context.Context
	mgrCtx, s.stopManager = context.WithCancel(context.Background())
	s.managerDone = make(chan error, 1)
	go func() { s.managerDone <- mgr.Start(mgrCtx) }()
	return nil
}

// NewFileCheckServer starts another file-check server over the source bucket, with the archive
// links of internal/archivelink beside it, as the controller process serves them. Close it to
// simulate the controller (or storage behind it) going away.
func (s *Stack) NewFileCheckServer() *httptest.Server {
	var handler http.Handler = filecheck.New(s.S3, SourceBucket, s.Controller.SourceKeyTemplate)
	if s.controllerCache != nil {
		links := archivelink.New(s.controllerCache, s.store, s.Controller.Namespaces, s.Controller.ArchiveBucket)
		links.Log = logf.Log.WithName("archive-link")
		handler = links.Beside(handler)
	}
	return httptest.NewServer(handler)
}

// Facade is one running facade: the handler on a loopback server, with its cache.
type Facade struct {
	*facade.Facade
	// Server serves the facade through facade.NewServer's http.Server (timeouts, SSE draining).
	Server *httptest.Server
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL string

	requests atomic.Int64
	cancel   context.CancelFunc
	done     chan error
	once     sync.Once
	closeErr error
}

// APIRequests is how many HTTP requests this facade has sent to the apiserver so far.
func (f *Facade) APIRequests() int64 { return f.requests.Load() }

// Close shuts the server down (draining SSE streams) and stops the cache.
func (f *Facade) Close() error {
	f.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.Server.Config.Shutdown(ctx); err != nil {
			f.closeErr = fmt.Errorf("shutting down the facade: %w", err)
		}
		f.Server.Close()
		f.cancel()
		if err := <-f.done; err != nil {
			f.closeErr = errors.Join(f.closeErr, err)
		}
	})
	return f.closeErr
}

// StartFacade starts a facade with the stack's default configuration, adjusted by configure
// (which may be nil), and waits for its cache. Stop closes it; so may the caller.
func (s *Stack) StartFacade(ctx context.Context, configure func(*facade.Config)) (*Facade, error) {
	cfg := facade.DefaultConfig(Namespace)
	cfg.ControllerURL = s.FileCheck.URL
	cfg.TrustedProxies = facade.Loopback
	cfg.RateLimit, cfg.RateBurst = 10_000, 10_000
	cfg.Logger = slog.New(logr.ToSlogHandler(logf.Log.WithName("facade")))
	if configure != nil {
		configure(&cfg)
	}
	f := &Facade{done: make(chan error, 1)}
	restConfig := s.facadeUser.Config()
	restConfig.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			f.requests.Add(1)
			return rt.RoundTrip(req)
		})
	})
	var err error
	if f.Facade, err = facade.New(restConfig, cfg); err != nil {
		return nil, err
	}
	var runCtx context.Context
	runCtx, f.cancel = context.WithCancel(context.Background())
	go func() { f.done <- f.Start(runCtx) }()
	syncCtx, cancel := withDefaultWait(ctx)
	defer cancel()
	if !f.WaitForCacheSync(syncCtx) {
		f.cancel()
		return nil, errors.Join(errors.New("the facade's cache did not sync"), <-f.done)
	}
	f.Server = httptest.NewUnstartedServer(nil)
	f.Server.Config = f.NewServer("")
	f.Server.Start()
	f.URL = f.Server.URL
	s.mu.Lock()
	s.facades = append(s.facades, f)
	s.mu.Unlock()
	return f, nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Stop stops everything Start started, in reverse order, and restores the environment
// variables RunWorker set.
func (s *Stack) Stop() error {
	var errs []error
	s.mu.Lock()
	facades := s.facades
	s.facades = nil
	s.mu.Unlock()
	for _, f := range facades {
		errs = append(errs, f.Close())
	}
	if s.FileCheck != nil {
		s.FileCheck.Close()
	}
	if s.stopManager != nil {
		s.stopManager()
		if err := <-s.managerDone; err != nil {
			errs = append(errs, fmt.Errorf("controller manager: %w", err))
		}
	}
	// A grant the chart lacks fails the test even when the code shrugged the 403 off.
	for _, user := range []*chartrbac.Identity{s.controllerUser, s.facadeUser} {
		if user != nil {
			errs = append(errs, user.Refused())
		}
	}
	if s.MinIO != nil {
		errs = append(errs, s.MinIO.Stop())
	}
	if s.Env != nil {
		errs = append(errs, s.Env.Stop())
	}
	s.restoreEnv()
	if s.tempDir != "" {
		errs = append(errs, os.RemoveAll(s.tempDir))
	}
	return errors.Join(errs...)
}

// PutSource stores a source file under the id the worker will look for.
func (s *Stack) PutSource(ctx context.Context, id int64, content []byte) error {
	key := worker.Config{SourceKeyTemplate: s.Controller.SourceKeyTemplate}.SourceKey(id)
	if _, err := s.S3.PutObject(ctx, SourceBucket, key, bytes.NewReader(content), int64(len(content)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"}); err != nil {
		return fmt.Errorf("putting source %d: %w", id, err)
	}
	return nil
}

func withDefaultWait(ctx context.Context) (context.Context, context.CancelFunc) {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < DefaultWait {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultWait)
}
