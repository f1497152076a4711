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

package facade

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// Facade serves the HTTP API. Build it with New, run its cache with Start, and serve Handler
// (NewServer returns an http.Server with the right timeouts and SSE draining).
type Facade struct {
	cfg Config
	log *slog.Logger

	// cache answers every read; it watches only Downloads, only in cfg.Namespace.
	cache cache.Cache
	// api reaches the apiserver directly, for the few writes and the rare read around the cache.
	api client.Client
	// docs holds every cached Download's status document, which polls and streams serve.
	docs *documents
	// registered is closed once Start has given the informer the event handler that feeds docs;
	// registration then tells when docs holds every Download of the initial list.
	registered   chan struct{}
	registration toolscache.ResourceEventHandlerRegistration
	// synced is set once both the cache and docs hold every Download of the namespace.
	synced atomic.Bool

	apiProbe     *cachedProbe
	storageProbe *cachedProbe
	controller   *http.Client

	// anyOrigin is whether CORSOrigins holds "*", decided once instead of per request.
	anyOrigin bool

	hub          *hub
	streams      *perKey[string]
	limiter      *rateLimiter
	metrics      *metrics
	eta          *etaEstimator
	reservations reservations

	drainOnce sync.Once
	draining  chan struct{}

	handler, probeHandler http.Handler
}

// New builds a Facade for the apiserver behind restConfig. It contacts nothing: Start does.
func New(restConfig *rest.Config, cfg Config) (*Facade, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("invalid facade configuration: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClientIDKey == nil {
		cfg.ClientIDKey = processKey()
		cfg.Logger.Warn("NO CLIENT ID KEY: " + ClientIDKeyEnv + " is not set, so this process keys client ids with a " +
			"random key of its own. Replicas will not agree on who a client is (the active-download cap and " +
			"Idempotency-Key replays then hold per replica) and a restart forgets every client; set " +
			ClientIDKeyEnv + " to a secret shared by all replicas")
	}
	scheme := runtime.NewScheme()
	if err := downloadv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building scheme: %w", err)
	}
	restConfig = rest.CopyConfig(restConfig)
	if restConfig.UserAgent == "" {
		restConfig.UserAgent = "download-operator-facade"
	}
	// Creates are the only steady apiserver traffic; client-go's default of 5/s would queue a
	// burst of initiates behind each other long before the apiserver's own fairness kicks in.
	if restConfig.QPS == 0 {
		restConfig.QPS, restConfig.Burst = 50, 100
	}
	c, err := cache.New(restConfig, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{cfg.Namespace: {}},
		// Reads of any other kind must fail loudly instead of starting an informer the
		// ServiceAccount may not list.
		ReaderFailOnMissingInformer: true,
		DefaultTransform:            cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("creating informer cache: %w", err)
	}
	api, err := client.New(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes client: %w", err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("creating discovery client: %w", err)
	}

	f := &Facade{
		cfg:        cfg,
		log:        cfg.Logger,
		cache:      c,
		api:        api,
		controller: &http.Client{Timeout: cfg.ControllerTimeout},
		anyOrigin:  slices.Contains(cfg.CORSOrigins, "*"),
		docs:       newDocuments(),
		registered: make(chan struct{}),
		hub:        newHub(),
		streams:    newPerKey[string](cfg.MaxStreamsPerClient),
		limiter:    newRateLimiter(cfg.RateLimit, cfg.RateBurst),
		metrics:    newMetrics(),
		eta:        newETAEstimator(cfg.DefaultETA, cfg.ETAHistory),
		draining:   make(chan struct{}),
	}
	f.apiProbe = newCachedProbe(cfg.HealthCacheTTL, func(ctx context.Context) error {
		return disco.RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	})
	f.storageProbe = newCachedProbe(cfg.HealthCacheTTL, f.checkStorage)
	f.handler = f.buildHandler()
	f.probeHandler = f.buildProbeHandler()
	return f, nil
}

// Start runs the informer cache until ctx ends. Requests are answered as soon as the cache has
// synced (see WaitForCacheSync); until then /readyz says 503 and reads say 503.
func (f *Facade) Start(ctx context.Context) error {
	if err := f.cache.IndexField(ctx, &downloadv1alpha1.Download{}, clientIndex, clientOf); err != nil {
		return fmt.Errorf("indexing Downloads by client: %w", err)
	}
	informer, err := f.cache.GetInformer(ctx, &downloadv1alpha1.Download{})
	if err != nil {
		return fmt.Errorf("getting the Download informer: %w", err)
	}
	// One handler registration keeps the documents and wakes the waiters, in that order, so a
	// waiter woken by a change always reads the document of that change or a later one.
	f.registration, err = informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    f.downloadChanged,
		UpdateFunc: func(_, obj any) { f.downloadChanged(obj) },
		DeleteFunc: f.downloadDeleted,
	})
	if err != nil {
		return fmt.Errorf("watching Downloads: %w", err)
	}
	close(f.registered)
	go func() {
		if f.WaitForCacheSync(ctx) {
			f.log.Info("cache synced", "namespace", f.cfg.Namespace, "downloads", f.docs.size())
		}
	}()
	defer f.Drain()
	if err := f.cache.Start(ctx); err != nil {
		return fmt.Errorf("running the informer cache: %w", err)
	}
	return nil
}

// WaitForCacheSync blocks until the cache, and the status documents built from it, hold every
// Download of the namespace, or ctx ends. The informer reports synced when its store has the
// initial list; the documents follow once the event handler has been handed all of it, which is
// a moment later: before that, a poll could get 404 for a job the cache has.
func (f *Facade) WaitForCacheSync(ctx context.Context) bool {
	select {
	case <-f.registered:
	case <-ctx.Done():
		return false
	}
	if !f.cache.WaitForCacheSync(ctx) {
		return false
	}
	select {
	case <-f.registration.HasSyncedChecker().Done():
	case <-ctx.Done():
		return false
	}
	f.synced.Store(true)
	return true
}

// Drain ends every SSE stream, so a graceful shutdown is not held up by clients that would
// otherwise listen forever. EventSource clients reconnect to another replica on their own.
func (f *Facade) Drain() {
	f.drainOnce.Do(func() { close(f.draining) })
}

// Handler is the whole API with its middleware.
func (f *Facade) Handler() http.Handler { return f.handler }

// ProbeHandler serves /healthz, /readyz and /metrics, on a listener of their own: the kubelet
// and Prometheus must never wait behind clients for a connection, a token or a goroutine.
func (f *Facade) ProbeHandler() http.Handler { return f.probeHandler }

// NewServer returns an http.Server for Handler on addr, with timeouts against slow clients and
// a shutdown hook that drains SSE streams.
func (f *Facade) NewServer(addr string) *http.Server {
	srv := f.newServer(addr, f.handler)
	srv.RegisterOnShutdown(f.Drain)
	return srv
}

// NewProbeServer returns an http.Server for ProbeHandler on addr.
func (f *Facade) NewProbeServer(addr string) *http.Server { return f.newServer(addr, f.probeHandler) }

func (f *Facade) newServer(addr string, handler http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: f.cfg.ReadHeaderTimeout,
		ReadTimeout:       f.cfg.ReadTimeout,
		WriteTimeout:      f.cfg.WriteTimeout,
		IdleTimeout:       f.cfg.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(f.log.Handler(), slog.LevelWarn),
	}
}

// route is one operation of the API. The same table builds the router and, in tests, is
// compared with the OpenAPI document.
type route struct {
	method, path string
	// muxPath, when set, is what the muxes register instead of path, which they would refuse:
	// ServeMux panics on two patterns that both match some path while neither is more specific.
	// The handler then answers only the paths that path describes.
	muxPath string
	handler http.HandlerFunc
}

func (r route) pattern() string { return r.method + " " + r.path }

// muxPattern is the pattern the muxes register for the route.
func (r route) muxPattern() string {
	if r.muxPath == "" {
		return r.pattern()
	}
	return r.method + " " + r.muxPath
}

// apiRoutes are what the API port serves besides the optional demo page.
func (f *Facade) apiRoutes() []route {
	return []route{
		{method: http.MethodPost, path: "/v1/download/initiate", handler: f.initiate},
		{method: http.MethodGet, path: "/v1/download/status/{jobId}", handler: f.status},
		{method: http.MethodGet, path: "/v1/download/events/{jobId}", handler: f.events},
		{method: http.MethodDelete, path: "/v1/download/{jobId}", handler: f.cancel},
		// Both this path and status's match /v1/download/status/archive, and neither is more
		// specific, so the muxes take any last segment here and f.archive answers only "archive".
		{method: http.MethodGet, path: "/v1/download/{jobId}/archive", muxPath: "/v1/download/{jobId}/{action}", handler: f.archive},
		{method: http.MethodPost, path: "/v1/download/check", handler: f.check},
		// /health stays on the API port: it is the replaced service's client-facing check, and the
		// Ingress publishes it. It spends a rate-limit token like any request.
		{method: http.MethodGet, path: "/health", handler: f.health},
		{method: http.MethodGet, path: "/openapi.json", handler: serveOpenAPI},
	}
}

// uiRoute is the demo page's route, when --ui-dir is set. It never serves a path under /v1/.
func (f *Facade) uiRoute() (route, bool) {
	if f.cfg.UIDir == "" {
		return route{}, false
	}
	return route{method: http.MethodGet, path: "/", handler: f.ui()}, true
}

// routes are every route of the API port.
func (f *Facade) routes() []route {
	routes := f.apiRoutes()
	if ui, ok := f.uiRoute(); ok {
		routes = append(routes, ui)
	}
	return routes
}

// probeRoutes are the routes of the probe port.
func (f *Facade) probeRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/healthz", handler: f.healthz},
		{method: http.MethodGet, path: "/readyz", handler: f.readyz},
		{method: http.MethodGet, path: "/metrics", handler: f.metrics.serve},
	}
}
