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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/download-operator/download-operator/internal/restconfig"
	"github.com/download-operator/download-operator/internal/tracing"
)

// shutdownGrace is how long a stopping facade finishes requests in flight. It stays below the
// Pod's default 30 s termination grace period, so the kubelet never has to kill it.
const shutdownGrace = 20 * time.Second

// Command is `download-operator facade`: it parses args, serves until ctx ends or SIGTERM, logs
// JSON to stderr and returns the process exit code.
func Command(ctx context.Context, args []string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(tracing.NewLogHandler(slog.NewJSONHandler(stderr, nil)))
	// client-go and controller-runtime log through logr; route them into the same JSON stream.
	logf.SetLogger(logr.FromSlogHandler(log.Handler()))

	cfg, addrs, kubeconfig, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		log.Error("invalid arguments", "error", err)
		return 2
	}
	cfg.Logger = log
	shutdownTracing, err := tracing.Setup(ctx, tracing.ServiceFacade, tracing.WithLogger(log))
	if err != nil {
		// Traces help, but a misconfigured collector must not take the API down.
		log.Warn("tracing is off", "error", err)
	}
	defer func() { _ = tracing.Flush(ctx, shutdownTracing) }()
	cfg.Tracing = tracing.Enabled()
	restConfig, err := restconfig.Load(kubeconfig, config.GetConfig, "Kubernetes config")
	if err != nil {
		log.Error("cannot reach Kubernetes", "error", err)
		return 1
	}
	f, err := New(restConfig, cfg)
	if err != nil {
		log.Error("cannot start the facade", "error", err)
		return 2
	}
	if err := serve(ctx, f, addrs, log); err != nil {
		log.Error("facade stopped", "error", err)
		return 1
	}
	return 0
}

// listenAddrs are the facade's two listeners.
type listenAddrs struct {
	api, probes string
}

func parseFlags(args []string, stderr io.Writer) (cfg Config, addrs listenAddrs, kubeconfig string, err error) {
	cfg = DefaultConfig(os.Getenv("POD_NAMESPACE"))
	if key := os.Getenv(ClientIDKeyEnv); key != "" {
		cfg.ClientIDKey = []byte(key)
	}
	var origins, proxies string
	fs := flag.NewFlagSet("facade", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&addrs.api, "listen", DefaultListen, "address to serve the API on")
	fs.StringVar(&addrs.probes, "probe-bind-address", DefaultProbeListen,
		"address to serve /healthz, /readyz and /metrics on, apart from the API's connections and limits")
	fs.StringVar(&cfg.Namespace, "namespace", cfg.Namespace, "namespace of the Downloads (default: POD_NAMESPACE)")
	fs.StringVar(&cfg.ControllerURL, "controller-url", "",
		"base URL of the controller's file-check endpoint, e.g. http://download-operator-controller:8082")
	fs.StringVar(&origins, "cors-origins", "*", "comma-separated browser origins allowed by CORS; * allows any")
	fs.StringVar(&proxies, "trusted-proxies", "",
		"comma-separated CIDRs of the proxies in front of the facade; a request from one is attributed to the "+
			"rightmost X-Forwarded-For address outside them (none: X-Forwarded-For is ignored)")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", DefaultRateLimit, "requests per second allowed per client")
	fs.IntVar(&cfg.RateBurst, "rate-burst", DefaultRateBurst, "requests a client may send at once")
	fs.IntVar(&cfg.MaxActivePerClient, "max-active-per-client", DefaultMaxActivePerClient,
		"unfinished downloads allowed per client")
	fs.StringVar(&cfg.UIDir, "ui-dir", "", "directory of static files to serve at / (none by default)")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file; empty means KUBECONFIG, in-cluster or ~/.kube/config")
	fs.Int64Var(&cfg.MaxBytesPerSecond, "max-bytes-per-second", 0,
		"bundling rate cap of each Download the facade creates, in bytes per second (0: none)")
	fs.IntVar(&cfg.MaxConnections, "max-connections", DefaultMaxConnections,
		"client connections served at once, SSE streams and idle keep-alives included; more wait to be accepted (0: no limit)")
	fs.IntVar(&cfg.MaxConnectionsPerClient, "max-connections-per-client", DefaultMaxConnectionsPerClient,
		"connections one peer address may hold open, trusted proxies exempt; more are answered 429 (0: no limit)")
	fs.IntVar(&cfg.MaxStreamsPerClient, "max-streams-per-client", DefaultMaxStreamsPerClient,
		"SSE streams one client may hold open on this replica; more are answered 429 (0: no limit)")
	fs.DurationVar(&cfg.HeartbeatInterval, "sse-heartbeat", DefaultHeartbeat, "interval of SSE heartbeat comments")
	if err := fs.Parse(args); err != nil {
		return cfg, addrs, "", err
	}
	if fs.NArg() > 0 {
		return cfg, addrs, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.TrustedProxies, err = ParseTrustedProxies(proxies); err != nil {
		return cfg, addrs, "", fmt.Errorf("--trusted-proxies: %w", err)
	}
	if addrs.api == addrs.probes {
		return cfg, addrs, "", fmt.Errorf("--listen and --probe-bind-address are both %s; probes need a port of their own", addrs.api)
	}
	cfg.CORSOrigins = nil
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.CORSOrigins = append(cfg.CORSOrigins, o)
		}
	}
	return cfg, addrs, kubeconfig, cfg.validate()
}

// serve runs the cache and the two HTTP servers until ctx ends, then shuts down gracefully: the
// listeners close, SSE streams drain, and requests in flight finish within shutdownGrace.
func serve(ctx context.Context, f *Facade, addrs listenAddrs, log *slog.Logger) error {
	apiLn, err := f.Listen(addrs.api)
	if err != nil {
		return err
	}
	probeLn, err := net.Listen("tcp", addrs.probes)
	if err != nil {
		_ = apiLn.Close()
		return fmt.Errorf("listening on %s: %w", addrs.probes, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- f.Start(ctx) }()
	api, probes := f.NewServer(addrs.api), f.NewProbeServer(addrs.probes)
	serveDone := make(chan error, 2)
	go func() { serveDone <- api.Serve(apiLn) }()
	go func() { serveDone <- probes.Serve(probeLn) }()
	log.Info("facade serving", "listen", apiLn.Addr().String(), "probes", probeLn.Addr().String(),
		"namespace", f.cfg.Namespace, "trustedProxies", len(f.cfg.TrustedProxies))

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveDone:
		runErr = fmt.Errorf("serving HTTP: %w", err)
	case err := <-cacheDone:
		runErr = fmt.Errorf("informer cache stopped: %w", err)
	}
	shutdownCtx, cancelShutdown := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancelShutdown()
	// The API first: probes and scrapes keep being answered while its clients drain.
	for _, srv := range []*http.Server{api, probes} {
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			runErr = errors.Join(runErr, fmt.Errorf("shutting down: %w", err))
		}
	}
	cancel()
	log.Info("facade stopped")
	return runErr
}
