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

// Package client is a Go client for the download-operator HTTP API: ask for a bundle of files,
// follow its preparation over server-sent events (or polling where a proxy breaks them), and
// download the finished zip archive with its sha256 verified.
//
//	c, err := client.New("http://localhost:8080")
//	job, err := c.Initiate(ctx, []int64{70000, 70007}, "")
//	status, err := c.Wait(ctx, job.JobID, nil)
//	if err := status.Err(); err != nil { ... }          // the job failed, with the server's reason
//	sum, n, err := c.Download(ctx, status, file, nil)   // *ChecksumError if the bytes are wrong
//
// Error responses become *APIError. Requests answered 429 or 503 are retried after the
// server's Retry-After, with exponential backoff and jitter, within a RetryPolicy. The package
// depends on no Kubernetes code, so API users can import it on its own.
//
// When ctx carries an OpenTelemetry span, or a traceparent given to ContextWithTraceparent, API
// requests send it as a W3C traceparent header, so that the server's trace of the download
// continues the caller's.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/propagation"
)

// DefaultUserAgent identifies this client unless WithUserAgent replaces it.
const DefaultUserAgent = "download-operator-client/v1"

// DefaultPollInterval is how often Wait polls when the server names no Retry-After. It matches
// the server's own Retry-After on initiate.
const DefaultPollInterval = 3 * time.Second

// DefaultHeartbeatTimeout is how long an event stream may stay silent before Wait treats it as
// broken. The server sends a heartbeat every 15 s, so three missed ones mean a dead connection
// that no FIN announced (a proxy or NAT dropped it).
const DefaultHeartbeatTimeout = 45 * time.Second

// RetryPolicy bounds the retries of requests answered 429 or 503, and DownloadArchive's resumes
// that bring no new byte.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt too; 1 disables retries.
	MaxAttempts int
	// InitialBackoff is the first wait, doubled on every further attempt up to MaxBackoff, each
	// randomised by ±50% so that many clients do not retry in step. A longer Retry-After wins.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxElapsed gives up early when the next wait would end later than this after the first
	// attempt, so that a Retry-After of an hour fails fast instead of hanging.
	MaxElapsed time.Duration
}

// DefaultRetryPolicy is used unless WithRetryPolicy replaces it.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:    5,
	InitialBackoff: 500 * time.Millisecond,
	MaxBackoff:     30 * time.Second,
	MaxElapsed:     2 * time.Minute,
}

// Client calls one download-operator API server. It is safe for concurrent use.
type Client struct {
	base             string
	http             *http.Client
	userAgent        string
	requestID        func() string
	retry            RetryPolicy
	pollInterval     time.Duration
	heartbeatTimeout time.Duration
	propagator       propagation.TextMapPropagator
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends every request, the archive download included, through h. It must not
// set a Timeout, because event streams and large downloads outlive any fixed limit; use
// contexts instead.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithRequestID sends the result of fn as X-Request-ID on every API request, so that the
// caller's logs and the server's share an id. Without it the server makes one up.
func WithRequestID(fn func() string) Option { return func(c *Client) { c.requestID = fn } }

// WithPropagator replaces the W3C trace-context propagator that writes the trace headers of API
// requests, for example with otel.GetTextMapPropagator() to send baggage as well. The default is
// not the global propagator because that sends nothing until an application sets one.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *Client) { c.propagator = p }
}

// ContextWithTraceparent returns ctx carrying the W3C traceparent, for callers that have one
// (from an incoming request, say) but no OpenTelemetry SDK: the client's API requests then send
// it. A malformed traceparent is ignored.
func ContextWithTraceparent(ctx context.Context, traceparent string) context.Context {
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// WithRetryPolicy replaces DefaultRetryPolicy.
func WithRetryPolicy(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithPollInterval replaces DefaultPollInterval.
func WithPollInterval(d time.Duration) Option { return func(c *Client) { c.pollInterval = d } }

// WithHeartbeatTimeout replaces DefaultHeartbeatTimeout.
func WithHeartbeatTimeout(d time.Duration) Option {
	return func(c *Client) { c.heartbeatTimeout = d }
}

// New returns a client for the API served at baseURL, for example "http://localhost:8080".
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing server URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q must be http:// or https:// with a host", baseURL)
	}
	c := &Client{
		base:             strings.TrimRight(u.String(), "/"),
		http:             &http.Client{},
		userAgent:        DefaultUserAgent,
		retry:            DefaultRetryPolicy,
		pollInterval:     DefaultPollInterval,
		heartbeatTimeout: DefaultHeartbeatTimeout,
		propagator:       propagation.TraceContext{},
	}
	for _, opt := range opts {
		opt(c)
	}
	if c.retry.MaxAttempts < 1 {
		c.retry.MaxAttempts = 1
	}
	return c, nil
}

// Initiate asks for one archive of fileIDs, in that order. A non-empty idempotencyKey makes a
// repeated call (after a timeout, say) return the same job instead of preparing a second one.
func (c *Client) Initiate(ctx context.Context, fileIDs []int64, idempotencyKey string, opts ...InitiateOption) (*Initiated, error) {
	req := initiateRequest{FileIDs: fileIDs}
	for _, opt := range opts {
		opt(&req)
	}
	header := http.Header{}
	if idempotencyKey != "" {
		header.Set("Idempotency-Key", idempotencyKey)
	}
	var out Initiated
	resp, err := c.call(ctx, http.MethodPost, "/v1/download/initiate", req, header, &out)
	if err != nil {
		return nil, fmt.Errorf("initiating a download (%d file ids): %w", len(fileIDs), err)
	}
	out.Location = resp.Header.Get("Location")
	out.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return &out, nil
}

// Status fetches a job's current state.
func (c *Client) Status(ctx context.Context, jobID string) (*Status, error) {
	path, err := jobPath("/v1/download/status/", jobID)
	if err != nil {
		return nil, err
	}
	var out Status
	resp, err := c.call(ctx, http.MethodGet, path, nil, nil, &out)
	if err != nil {
		return nil, fmt.Errorf("getting status of job %s: %w", jobID, err)
	}
	out.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return &out, nil
}

// Cancel deletes a job on the server, stopping its worker and removing its archive.
func (c *Client) Cancel(ctx context.Context, jobID string) error {
	path, err := jobPath("/v1/download/", jobID)
	if err != nil {
		return err
	}
	if _, err := c.call(ctx, http.MethodDelete, path, nil, nil, nil); err != nil {
		return fmt.Errorf("cancelling job %s: %w", jobID, err)
	}
	return nil
}

// Check asks whether a source file exists, and how large it is.
func (c *Client) Check(ctx context.Context, fileID int64) (*FileCheck, error) {
	var out FileCheck
	if _, err := c.call(ctx, http.MethodPost, "/v1/download/check", checkRequest{FileID: fileID}, nil, &out); err != nil {
		return nil, fmt.Errorf("checking file %d: %w", fileID, err)
	}
	return &out, nil
}

// Health fetches the server's health. An unhealthy server answers 503 with the same body; that
// is returned as a Health whose Healthy() is false, not as an error, and is not retried.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/health", nil, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("getting health: %w", err)
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return nil, fmt.Errorf("getting health: %w", newAPIError(resp))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("reading health response: %w", err)
	}
	var out Health
	if json.Unmarshal(raw, &out) != nil || out.Status == "" {
		// Not the health body: a proxy in front of the server answered, or something else did.
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		return nil, fmt.Errorf("getting health: %w", newAPIError(resp))
	}
	return &out, nil
}

// call sends a JSON request and decodes a 2xx JSON answer into out (when out is non-nil).
func (c *Client) call(ctx context.Context, method, path string, in any, header http.Header, out any) (*http.Response, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
	}
	resp, err := c.do(ctx, method, path, body, header)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return nil, fmt.Errorf("decoding %s %s response: %w", method, path, err)
		}
	}
	return resp, nil
}

// do sends one request until it gets a 2xx answer, which the caller must close, retrying 429
// and 503 under the retry policy. Any other answer becomes an *APIError. Both statuses mean the
// server did not act on the request, so even a POST without an idempotency key is safe to send
// again.
func (c *Client) do(ctx context.Context, method, path string, body []byte, header http.Header) (*http.Response, error) {
	return c.doWith(ctx, c.http, is2xx, method, path, body, header)
}

func is2xx(status int) bool { return status >= 200 && status < 300 }

// doWith is do through h, taking the answers accept approves as success (a redirect that h does
// not follow, say).
func (c *Client) doWith(ctx context.Context, h *http.Client, accept func(status int) bool, method, path string, body []byte,
	header http.Header) (*http.Response, error) {
	delays := c.backoff()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		req, err := c.newRequest(ctx, method, path, body, header)
		if err != nil {
			return nil, err
		}
		resp, err := h.Do(req)
		if err != nil {
			return nil, err // a *url.Error, which names the method and URL already
		}
		if accept(resp.StatusCode) {
			return resp, nil
		}
		apiErr := newAPIError(resp)
		closeBody(resp)
		if !apiErr.Temporary() || attempt >= c.retry.MaxAttempts {
			return nil, apiErr
		}
		wait := max(delays.NextBackOff(), jittered(apiErr.RetryAfter))
		if c.retry.MaxElapsed > 0 && time.Since(start)+wait > c.retry.MaxElapsed {
			return nil, apiErr
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, errors.Join(apiErr, err)
		}
	}
}

// backoff paces retries as the RetryPolicy says: doubling from InitialBackoff up to MaxBackoff,
// each wait randomised by ±50%.
func (c *Client) backoff() *backoff.ExponentialBackOff {
	delays := &backoff.ExponentialBackOff{
		InitialInterval:     c.retry.InitialBackoff,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         c.retry.MaxBackoff,
	}
	delays.Reset()
	return delays
}

func (c *Client) newRequest(ctx context.Context, method, path string, body []byte, header http.Header) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("building %s %s: %w", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", c.userAgent)
	if c.requestID != nil {
		req.Header.Set("X-Request-ID", c.requestID())
	}
	// Writes nothing when ctx carries no valid span context.
	if c.propagator != nil {
		c.propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	return req, nil
}

// newAPIError reads an error response. It never fails: a body that is not the API's JSON still
// yields the status, so that a proxy's HTML error page is reported rather than a decode error.
func newAPIError(resp *http.Response) *APIError {
	e := &APIError{
		StatusCode: resp.StatusCode,
		RequestID:  resp.Header.Get("X-Request-ID"),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env errorEnvelope
	if json.Unmarshal(raw, &env) == nil && env.Error != nil && env.Error.Code != "" {
		e.Code, e.Message = env.Error.Code, env.Error.Message
		return e
	}
	e.Code = strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "")
	e.Message = truncate(strings.TrimSpace(string(raw)), 200)
	return e
}

// parseRetryAfter reads either form RFC 9110 allows: delay seconds or an HTTP date.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// jittered stretches a server-given wait by up to a tenth, so that the clients a 429 turned
// away all at once do not all come back at the same instant.
func jittered(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + rand.N(d/10+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

func jobPath(prefix, jobID string) (string, error) {
	if jobID == "" {
		return "", errors.New("empty job id")
	}
	return prefix + url.PathEscape(jobID), nil
}

// closeBody drains a little of what is left so that the connection can be reused.
func closeBody(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
