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
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"time"
)

// Names the facade writes on every Download it creates. They share the operator's prefix so that
// `kubectl get dl -l download.operator.dev/client=...` finds one client's Downloads.
const (
	// ClientLabel holds ClientLabelValue of the requesting client; the active-Download cap counts it.
	ClientLabel = "download.operator.dev/client"
	// IdempotencyKeyLabel holds a hash of the Idempotency-Key header, when one was sent.
	IdempotencyKeyLabel = "download.operator.dev/idempotency-key"
	// RequestHashAnnotation holds the sha256 of the normalised request body, so a replayed
	// Idempotency-Key can be told apart from the same key reused for a different request.
	RequestHashAnnotation = "download.operator.dev/request-sha256"
)

// Defaults of Config; the flags of Command use them too.
const (
	DefaultListen             = ":8080"
	DefaultProbeListen        = ":8081"
	DefaultRateLimit          = 20
	DefaultRateBurst          = 40
	DefaultMaxActivePerClient = 10
	// DefaultMaxConnections bounds the open client connections of one facade. Each costs a
	// goroutine and its buffers, about 16 KiB when idle: 4,096 stay near 64 MiB, a quarter of the
	// chart's memory limit, and leave room for many SSE streams before probes have to wait.
	DefaultMaxConnections = 4096
	// DefaultMaxConnectionsPerClient lets a browser (6 connections per host over HTTP/1.1) or a
	// small office behind one NAT work freely, while one host can take only 1/64 of
	// DefaultMaxConnections.
	DefaultMaxConnectionsPerClient = 64
	// DefaultMaxStreamsPerClient is more SSE streams than a client with a few tabs open needs.
	DefaultMaxStreamsPerClient = 8
	// DefaultETA is the initiate answer's etaSeconds before any Download completed.
	DefaultETA = 30 * time.Second
	// DefaultETAHistory is how many recent completions the ETA median considers.
	DefaultETAHistory      = 50
	DefaultHeartbeat       = 15 * time.Second
	DefaultHealthCacheTTL  = 5 * time.Second
	DefaultControllerCall  = 2 * time.Second
	DefaultReadHeaderLimit = 5 * time.Second
	DefaultReadTimeout     = 15 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultIdleTimeout     = 120 * time.Second
	// MaxBodyBytes bounds request bodies; 1000 ids of 9 digits need about 10 KiB.
	MaxBodyBytes = 64 << 10
	// PollAfter is the Retry-After of a 202: how soon a client should poll.
	PollAfter = 3 * time.Second
)

// Config is everything a Facade needs besides the Kubernetes connection.
type Config struct {
	// Namespace is where Downloads are created and cached; the only one the facade touches.
	Namespace string
	// ControllerURL is the base URL of the controller's file-check endpoint.
	ControllerURL string
	// CORSOrigins are the allowed browser origins; "*" allows any.
	CORSOrigins []string
	// TrustedProxies are the networks of the proxies in front of the facade. A request from one
	// of them is attributed to the rightmost X-Forwarded-For hop outside them (see
	// clientAddress); without any, X-Forwarded-For is ignored and the peer is the client.
	TrustedProxies []netip.Prefix
	// ClientIDKey keys the HMAC that turns a client address into its ClientLabel value and into
	// the client part of an idempotent jobId. All replicas must share it; nil uses a key random
	// per process (fine for one replica, or for tests).
	ClientIDKey []byte
	// RateLimit (requests per second) and RateBurst shape each client's token bucket.
	RateLimit float64
	RateBurst int
	// MaxActivePerClient caps each client's unfinished Downloads.
	MaxActivePerClient int
	// UIDir, when set, is served at /.
	UIDir string
	// MaxBytesPerSecond caps the bundling rate of every Download the facade creates (0: no cap),
	// so a burst of public downloads cannot saturate object storage.
	MaxBytesPerSecond int64
	// MaxConnections bounds the client connections served at once (0: no bound), so that an
	// overload queues connections in the kernel's accept backlog instead of growing the memory
	// without end. Open SSE streams and idle keep-alive connections count too.
	MaxConnections int
	// MaxConnectionsPerClient bounds the connections one peer address may hold open (0: no
	// bound); more are answered 429 and closed. Peers in TrustedProxies are exempt: they carry
	// many clients, which the per-request limits tell apart.
	MaxConnectionsPerClient int
	// MaxStreamsPerClient bounds the SSE streams one client (as clientAddress names it) may have
	// open on this replica (0: no bound); more are answered 429.
	MaxStreamsPerClient int

	// HeartbeatInterval is how often an SSE stream sends a comment to keep proxies from closing it.
	HeartbeatInterval time.Duration
	// HealthCacheTTL is how long /health reuses a probe result, so health polls cannot hammer
	// the apiserver or storage.
	HealthCacheTTL time.Duration
	// ControllerTimeout bounds each call to the controller's file-check endpoint.
	ControllerTimeout time.Duration
	// DefaultETA and ETAHistory tune the initiate answer's etaSeconds.
	DefaultETA time.Duration
	ETAHistory int

	// Server timeouts. WriteTimeout does not apply to SSE streams, which extend their own deadline.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration

	// Logger receives request and lifecycle logs; nil discards them.
	Logger *slog.Logger
	// Tracing makes a span of every request, as the OpenTelemetry export is on. Without it a
	// request still joins the trace its traceparent header names, so that the Download
	// carries the caller's trace on to the controller and the worker.
	Tracing bool
}

// DefaultConfig is the configuration of a facade started without flags, in namespace.
func DefaultConfig(namespace string) Config {
	return Config{
		Namespace:          namespace,
		CORSOrigins:        []string{"*"},
		RateLimit:          DefaultRateLimit,
		RateBurst:          DefaultRateBurst,
		MaxActivePerClient: DefaultMaxActivePerClient,
		MaxConnections:     DefaultMaxConnections,
		HeartbeatInterval:  DefaultHeartbeat,
		HealthCacheTTL:     DefaultHealthCacheTTL,
		ControllerTimeout:  DefaultControllerCall,
		DefaultETA:         DefaultETA,
		ETAHistory:         DefaultETAHistory,
		ReadHeaderTimeout:  DefaultReadHeaderLimit,
		ReadTimeout:        DefaultReadTimeout,
		WriteTimeout:       DefaultWriteTimeout,
		IdleTimeout:        DefaultIdleTimeout,
	}
}

func (c Config) validate() error {
	var errs []error
	if c.Namespace == "" {
		errs = append(errs, errors.New("namespace is required (--namespace or POD_NAMESPACE)"))
	}
	if c.ControllerURL != "" {
		if u, err := url.Parse(c.ControllerURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("controller URL %q must look like http://host:port", c.ControllerURL))
		}
	}
	if c.RateLimit <= 0 || c.RateBurst < 1 {
		errs = append(errs, fmt.Errorf("rate limit %v/s with burst %d: both must be positive", c.RateLimit, c.RateBurst))
	}
	if c.MaxActivePerClient < 1 {
		errs = append(errs, fmt.Errorf("max active Downloads per client %d must be positive", c.MaxActivePerClient))
	}
	if c.MaxBytesPerSecond < 0 {
		errs = append(errs, fmt.Errorf("max bytes per second %d must not be negative", c.MaxBytesPerSecond))
	}
	if c.MaxConnections < 0 || c.MaxConnectionsPerClient < 0 || c.MaxStreamsPerClient < 0 {
		errs = append(errs, fmt.Errorf("max connections %d, per client %d and streams per client %d must not be negative",
			c.MaxConnections, c.MaxConnectionsPerClient, c.MaxStreamsPerClient))
	}
	if c.ClientIDKey != nil && len(c.ClientIDKey) < MinClientIDKey {
		errs = append(errs, fmt.Errorf("the client id key has %d bytes, fewer than %d", len(c.ClientIDKey), MinClientIDKey))
	}
	for name, d := range map[string]time.Duration{
		"heartbeat interval": c.HeartbeatInterval, "controller timeout": c.ControllerTimeout, "default ETA": c.DefaultETA,
		"read header timeout": c.ReadHeaderTimeout, "read timeout": c.ReadTimeout, "write timeout": c.WriteTimeout,
		"idle timeout": c.IdleTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s must be positive", name, d))
		}
	}
	if c.HealthCacheTTL < 0 || c.ETAHistory < 1 {
		errs = append(errs, fmt.Errorf("health cache TTL %s must not be negative and ETA history %d must be positive",
			c.HealthCacheTTL, c.ETAHistory))
	}
	return errors.Join(errs...)
}
