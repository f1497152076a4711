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

// Package controllercmd is the controller command (download-operator controller): its flags, the
// controller-runtime manager built from controller.ManagerOptions, and the servers beside it.
package controllercmd

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/archivelink"
	"github.com/download-operator/download-operator/internal/controller"
	"github.com/download-operator/download-operator/internal/events"
	"github.com/download-operator/download-operator/internal/filecheck"
	"github.com/download-operator/download-operator/internal/storage"
	"github.com/download-operator/download-operator/internal/tracing"
)

// Flags are the controller's command line.
type Flags struct {
	MetricsAddr          string
	SecureMetrics        bool
	EnableHTTP2          bool
	ProbeAddr            string
	FileCheckAddr        string
	EnableLeaderElection bool

	Namespaces           string
	WorkerImage          string
	WorkerServiceAccount string
	// Worker requests and limits, as Kubernetes quantities.
	WorkerCPURequest    string
	WorkerMemoryRequest string
	WorkerCPULimit      string
	WorkerMemoryLimit   string
	// MaxConcurrentReconciles is how many Downloads the controller reconciles at once.
	MaxConcurrentReconciles int
	StorageEndpoint         string
	StorageSTSEndpoint      string
	StorageRoleARN          string
	StorageSecure           bool
	StoragePublicURL        string
	StorageRegion           string
	SourceBucket            string
	SourceKeyTemplate       string
	ArchiveBucket           string
	// Reuse is how far identical Downloads share Jobs and archives (controller.ReuseScopes).
	Reuse string
	// StatusWriteInterval is the shortest time between two status writes of a Download in flight.
	StatusWriteInterval time.Duration
	// QueueName and NamespaceQueueNames (namespace=queue,...) put worker Jobs in Kueue LocalQueues.
	QueueName           string
	NamespaceQueueNames string
	// EventSinksFile lists the sinks of Download events (internal/events); empty sends none.
	EventSinksFile string
	// PublicBaseURL is the facade's URL as clients reach it; it makes the archive links in
	// events absolute.
	PublicBaseURL string
	// EventRetryFor bounds the retries of one event; EventQueueSize the events a sink holds.
	EventRetryFor  time.Duration
	EventQueueSize int
}

func (f *Flags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.MetricsAddr, "metrics-bind-address", "0",
		"Address of the metrics endpoint: :8443 for HTTPS, :8080 for HTTP, 0 to disable it.")
	fs.BoolVar(&f.SecureMetrics, "metrics-secure", true, "Serve metrics over HTTPS with authn/authz.")
	fs.BoolVar(&f.EnableHTTP2, "enable-http2", false,
		"Enable HTTP/2 for the metrics server (off because of the HTTP/2 Rapid Reset CVEs).")
	fs.StringVar(&f.ProbeAddr, "health-probe-bind-address", ":8081", "Address of the health probes.")
	fs.StringVar(&f.FileCheckAddr, "file-check-bind-address", ":8082",
		"Address of the read-only endpoint the facade calls (GET /v1/files/{id}, /v1/storage/health, /v1/archives/{namespace}/{name}); 0 disables it.")
	fs.BoolVar(&f.EnableLeaderElection, "leader-elect", false, "Elect a leader, so several replicas are safe.")

	fs.StringVar(&f.Namespaces, "namespaces", "",
		"Comma-separated namespaces where worker Jobs run (default: the operator's own, from POD_NAMESPACE).")
	fs.StringVar(&f.WorkerImage, "worker-image", "", "Image of the worker Jobs; the operator's own image.")
	fs.StringVar(&f.WorkerServiceAccount, "worker-service-account", "download-worker",
		"ServiceAccount of the worker Pods, in each served namespace.")
	// The defaults fit the worker's bounded streaming: under 64 MiB RSS whatever the archive size.
	fs.StringVar(&f.WorkerCPURequest, "worker-cpu-request", "100m", "CPU request of each worker Pod.")
	fs.StringVar(&f.WorkerMemoryRequest, "worker-memory-request", "64Mi", "Memory request of each worker Pod.")
	fs.StringVar(&f.WorkerCPULimit, "worker-cpu-limit", "1", "CPU limit of each worker Pod.")
	fs.StringVar(&f.WorkerMemoryLimit, "worker-memory-limit", "128Mi", "Memory limit of each worker Pod.")
	fs.IntVar(&f.MaxConcurrentReconciles, "max-concurrent-reconciles", 4,
		"Downloads reconciled at once; each reconcile mostly waits on the apiserver.")
	fs.StringVar(&f.StorageEndpoint, "storage-endpoint", "", "host:port of object storage as seen from inside the cluster.")
	fs.StringVar(&f.StorageSTSEndpoint, "storage-sts-endpoint", "",
		"URL of the STS service that mints each worker's short-lived credential (AssumeRole); empty means the storage endpoint, where MinIO serves STS.")
	fs.StringVar(&f.StorageRoleARN, "storage-role-arn", "",
		"Role that STS AssumeRole assumes for workers; required by AWS STS, ignored by MinIO.")
	fs.BoolVar(&f.StorageSecure, "storage-secure", false, "Use TLS to reach --storage-endpoint.")
	fs.StringVar(&f.StoragePublicURL, "storage-public-endpoint", "",
		"URL (https://host[:port]) browsers use to reach object storage; download URLs are signed for it.")
	fs.StringVar(&f.StorageRegion, "storage-region", storage.DefaultRegion, "Region to sign URLs for.")
	fs.StringVar(&f.SourceBucket, "source-bucket", "files", "Bucket holding the source files.")
	fs.StringVar(&f.SourceKeyTemplate, "source-key-template", "{id}", "Key of a source file; {id} is its id.")
	fs.StringVar(&f.ArchiveBucket, "archive-bucket", "downloads", "Bucket receiving the archives.")
	fs.DurationVar(&f.StatusWriteInterval, "status-write-interval", controller.DefaultStatusWriteInterval,
		"Shortest time between two status writes of a Download in flight (progress, attempts); finishing is written at once. 0 writes every change.")
	fs.StringVar(&f.Reuse, "reuse", string(controller.ReuseNamespace),
		"How far identical Downloads share Jobs and archives: Off, Namespace, or Cluster (stored archives across namespaces too).")
	fs.StringVar(&f.QueueName, "queue-name", "",
		"Kueue LocalQueue of the worker Jobs in every served namespace not named by --namespace-queue-names; empty runs Jobs at once, without Kueue.")
	fs.StringVar(&f.NamespaceQueueNames, "namespace-queue-names", "",
		"Comma-separated namespace=queue pairs: the Kueue LocalQueue of each named served namespace's worker Jobs (queue may be empty: no Kueue there).")
	fs.StringVar(&f.EventSinksFile, "event-sinks-file", "",
		"YAML or JSON file of the sinks that receive Download events ({sinks: [{name, namespaces, url, hmacKeyFile}]}); empty sends none.")
	fs.StringVar(&f.PublicBaseURL, "public-base-url", "",
		"The facade's URL as clients reach it (e.g. https://downloads.example.com); makes the archive links in events absolute.")
	fs.DurationVar(&f.EventRetryFor, "event-retry-for", events.DefaultRetryFor,
		"How long one event is retried, with exponential backoff, before it counts as failed.")
	fs.IntVar(&f.EventQueueSize, "event-queue-size", events.DefaultQueueSize,
		"Events each sink holds, queued or waiting for a retry; more are dropped, counted and logged.")
}

func (f *Flags) options() (controller.Options, error) {
	if f.WorkerImage == "" {
		return controller.Options{}, fmt.Errorf("--worker-image is required")
	}
	if f.StorageEndpoint == "" {
		return controller.Options{}, fmt.Errorf("--storage-endpoint is required")
	}
	namespaces := sets.New[string]()
	for _, ns := range strings.Split(f.Namespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			namespaces.Insert(ns)
		}
	}
	if namespaces.Len() == 0 {
		own := os.Getenv("POD_NAMESPACE")
		if own == "" {
			return controller.Options{}, fmt.Errorf("--namespaces is empty and POD_NAMESPACE is unset")
		}
		namespaces.Insert(own)
	}
	resources, err := f.workerResources()
	if err != nil {
		return controller.Options{}, err
	}
	if !slices.Contains(controller.ReuseScopes, controller.ReuseScope(f.Reuse)) {
		return controller.Options{}, fmt.Errorf("--reuse=%q: want one of %v", f.Reuse, controller.ReuseScopes)
	}
	namespaceQueues, err := f.namespaceQueueNames(namespaces)
	if err != nil {
		return controller.Options{}, err
	}
	return controller.Options{
		Namespaces:              namespaces,
		WorkerImage:             f.WorkerImage,
		WorkerServiceAccount:    f.WorkerServiceAccount,
		WorkerResources:         resources,
		StorageEndpoint:         f.StorageEndpoint,
		StorageSecure:           f.StorageSecure,
		SourceBucket:            f.SourceBucket,
		SourceKeyTemplate:       f.SourceKeyTemplate,
		ArchiveBucket:           f.ArchiveBucket,
		WorkerTracingEnv:        workerTracingEnv(os.Environ()),
		MaxConcurrentReconciles: f.MaxConcurrentReconciles,
		Reuse:                   controller.ReuseScope(f.Reuse),
		StatusWriteInterval:     f.StatusWriteInterval,
		QueueName:               f.QueueName,
		NamespaceQueueNames:     namespaceQueues,
	}, nil
}

// namespaceQueueNames parses --namespace-queue-names and checks every queue name, so that a
// typo stops the controller at start rather than leaving Jobs suspended in no queue.
func (f *Flags) namespaceQueueNames(served sets.Set[string]) (map[string]string, error) {
	if problems := validation.IsValidLabelValue(f.QueueName); len(problems) > 0 {
		return nil, fmt.Errorf("--queue-name=%q: %s", f.QueueName, strings.Join(problems, "; "))
	}
	queues := map[string]string{}
	for pair := range strings.SplitSeq(f.NamespaceQueueNames, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		namespace, queue, found := strings.Cut(pair, "=")
		switch {
		case !found:
			return nil, fmt.Errorf("--namespace-queue-names: %q is not namespace=queue", pair)
		case !served.Has(namespace):
			return nil, fmt.Errorf("--namespace-queue-names: namespace %q is not served (--namespaces)", namespace)
		}
		if problems := validation.IsValidLabelValue(queue); len(problems) > 0 {
			return nil, fmt.Errorf("--namespace-queue-names: queue %q of namespace %q: %s", queue, namespace, strings.Join(problems, "; "))
		}
		queues[namespace] = queue
	}
	return queues, nil
}

// eventSinks loads and checks the event sinks, so that a bad file, URL or key stops the
// controller at start with the reason instead of losing events later.
func (f *Flags) eventSinks(served sets.Set[string]) ([]events.Sink, events.Options, error) {
	base, err := events.ParseBaseURL(f.PublicBaseURL)
	if err != nil || f.EventSinksFile == "" {
		return nil, events.Options{}, err
	}
	if f.EventRetryFor <= 0 || f.EventQueueSize <= 0 {
		return nil, events.Options{}, fmt.Errorf("--event-retry-for=%s and --event-queue-size=%d must be positive", f.EventRetryFor, f.EventQueueSize)
	}
	sinks, err := events.Load(f.EventSinksFile, served)
	if err != nil {
		return nil, events.Options{}, fmt.Errorf("--event-sinks-file: %w", err)
	}
	return sinks, events.Options{PublicBaseURL: base, RetryFor: f.EventRetryFor, QueueSize: f.EventQueueSize}, nil
}

// workerTracingEnv picks the OpenTelemetry settings workers should share with the controller,
// so that their spans reach the same collector. OTEL_SERVICE_NAME stays behind (the worker
// names itself), and so do the exporter headers, which may hold credentials: the Job would show
// them to anyone who can read it.
func workerTracingEnv(environ []string) []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "OTEL_") || name == "OTEL_SERVICE_NAME" || strings.HasSuffix(name, "_HEADERS") {
			continue
		}
		env = append(env, corev1.EnvVar{Name: name, Value: value})
	}
	slices.SortFunc(env, func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return env
}

func (f *Flags) workerResources() (corev1.ResourceRequirements, error) {
	var errs []error
	quantity := func(flagName, value string) resource.Quantity {
		q, err := resource.ParseQuantity(value)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s=%q: %w", flagName, value, err))
		}
		return q
	}
	resources := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    quantity("worker-cpu-request", f.WorkerCPURequest),
			corev1.ResourceMemory: quantity("worker-memory-request", f.WorkerMemoryRequest),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:    quantity("worker-cpu-limit", f.WorkerCPULimit),
			corev1.ResourceMemory: quantity("worker-memory-limit", f.WorkerMemoryLimit),
		},
	}
	return resources, errors.Join(errs...)
}

// Command runs the controller until SIGTERM and returns the process exit code.
func Command(args []string) int {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	var f Flags
	f.bind(fs)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	if err := run(f); err != nil {
		log.Error(err, "controller stopped")
		return 1
	}
	return 0
}

func run(f Flags) error {
	opts, err := f.options()
	if err != nil {
		return err
	}
	eventSinks, eventOptions, err := f.eventSinks(opts.Namespaces)
	if err != nil {
		return err
	}
	// Credentials come from the environment (a Secret), never from flags that show in `ps`.
	storageConfig := storage.Config{
		Endpoint: f.StorageEndpoint, Secure: f.StorageSecure, PublicURL: f.StoragePublicURL, Region: f.StorageRegion,
		AccessKey: os.Getenv("STORAGE_ACCESS_KEY"), SecretKey: os.Getenv("STORAGE_SECRET_KEY"),
		SigningAccessKey: os.Getenv("STORAGE_SIGNING_ACCESS_KEY"), SigningSecretKey: os.Getenv("STORAGE_SIGNING_SECRET_KEY"),
		STSEndpoint: f.StorageSTSEndpoint, RoleARN: f.StorageRoleARN,
	}
	store, err := storage.New(storageConfig)
	if err != nil {
		return err
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(downloadv1alpha1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !f.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: f.MetricsAddr, SecureServing: f.SecureMetrics, TLSOpts: tlsOpts}
	if f.SecureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	ctx := ctrl.SetupSignalHandler()
	shutdownTracing, err := tracing.Setup(ctx, tracing.ServiceController)
	if err != nil {
		// Traces help, but a collector that is misconfigured must not stop Downloads.
		ctrl.Log.WithName("setup").Error(err, "tracing is off")
	}
	defer func() { _ = tracing.Flush(ctx, shutdownTracing) }()
	restConfig := ctrl.GetConfigOrDie()
	managerOptions := controller.ManagerOptions(scheme, opts.Namespaces)
	managerOptions.Metrics = metricsOpts
	managerOptions.HealthProbeBindAddress = f.ProbeAddr
	managerOptions.LeaderElection = f.EnableLeaderElection
	mgr, err := whenReachable(ctx, func() (ctrl.Manager, error) { return ctrl.NewManager(restConfig, managerOptions) })
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}

	reconciler := controller.NewDownloadReconciler(mgr, store, opts)
	if err := addEvents(mgr, reconciler, eventSinks, eventOptions); err != nil {
		return err
	}
	if err := reconciler.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Download controller: %w", err)
	}
	if err := controller.RegisterStateMetrics(mgr.GetClient()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	links := archivelink.New(mgr.GetCache(), store, opts.Namespaces, f.ArchiveBucket)
	links.Log = ctrl.Log.WithName("archive-link")
	if err := addFileCheck(mgr, f, storageConfig, links); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	ctrl.Log.WithName("setup").Info("starting controller", "namespaces", sets.List(opts.Namespaces), "workerImage", opts.WorkerImage)
	return mgr.Start(ctx)
}

// startupBackoff paces whenReachable: quick at first, for a blip, then every 10 s at most.
var startupBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: 10 * time.Second}

// whenReachable builds the manager, retrying while the apiserver cannot be reached. Building it
// asks the apiserver which resources are namespaced, so a replica that starts during an
// apiserver outage would otherwise exit, and CrashLoopBackOff would keep it down for minutes
// after the apiserver is back. Any other error is a configuration mistake and returns at once.
func whenReachable[T any](ctx context.Context, build func() (T, error)) (T, error) {
	log := ctrl.Log.WithName("setup")
	var built T
	var buildErr error
	err := wait.ExponentialBackoffWithContext(ctx, startupBackoff, func(context.Context) (bool, error) {
		built, buildErr = build()
		switch {
		case buildErr == nil:
			return true, nil
		case apiserverUnreachable(buildErr):
			log.Info("the apiserver cannot be reached yet; retrying", "error", buildErr.Error())
			return false, nil
		default:
			return false, buildErr
		}
	})
	if err != nil && buildErr != nil {
		return built, buildErr
	}
	return built, err
}

// apiserverUnreachable tells a failure to talk to the apiserver (no connection, a timeout, or
// an apiserver that is starting or shutting down) from a request it refused.
func apiserverUnreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err)
}

// addEvents sends the reconciler's Download events to the sinks, from the leader (the
// dispatcher is a leader-elected Runnable, as the reconciles that emit are).
func addEvents(mgr ctrl.Manager, reconciler *controller.DownloadReconciler, sinks []events.Sink, opts events.Options) error {
	if len(sinks) == 0 {
		return nil
	}
	opts.Reader = mgr.GetCache()
	dispatcher := events.New(sinks, opts)
	if err := mgr.Add(dispatcher); err != nil {
		return fmt.Errorf("adding the event dispatcher: %w", err)
	}
	reconciler.Events = dispatcher
	return nil
}

// addFileCheck serves internal/filecheck, and the archive links of internal/archivelink beside
// it, from the controller, the one component that already holds storage credentials, so the
// facade can answer file checks and sign archive links without them. Every replica serves it,
// leader or not: it only reads, and the facade's Service may pick any replica.
func addFileCheck(mgr ctrl.Manager, f Flags, storageConfig storage.Config, links *archivelink.Handler) error {
	if f.FileCheckAddr == "0" {
		return nil
	}
	s3, err := storage.NewClient(storageConfig)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.FileCheckAddr)
	if err != nil {
		return fmt.Errorf("listening for the file-check endpoint on %s: %w", f.FileCheckAddr, err)
	}
	shutdown := 5 * time.Second
	if err := mgr.Add(&manager.Server{
		Name:     "file-check",
		Listener: ln,
		Server: &http.Server{
			Handler:           links.Beside(filecheck.New(s3, f.SourceBucket, f.SourceKeyTemplate)),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		OnlyServeWhenLeader: false,
		ShutdownTimeout:     &shutdown,
	}); err != nil {
		return fmt.Errorf("adding the file-check endpoint: %w", err)
	}
	return nil
}
