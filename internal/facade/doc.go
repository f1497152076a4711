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

// Package facade is the HTTP API browsers and scripts use to ask for archives: `download-operator
// facade`. It turns POST /v1/download/initiate into a Download resource named by a fresh UUIDv4
// (the jobId) and answers status polls and Server-Sent Events from an informer cache, so that every
// request is answered in milliseconds and a poll costs the apiserver nothing.
//
// # Stateless replicas
//
// All state lives in Kubernetes: the Download (its name, spec, labels and annotations) is the
// job, so any replica can answer for any jobId and N replicas can run behind one Service. What a
// replica keeps in memory (rate-limit buckets, SSE subscribers, cached health probes) is only an
// optimisation and is rebuilt from nothing after a restart.
//
// # Least privilege
//
// The facade holds no storage credentials. POST /v1/download/check and the storage part of
// GET /health are answered by the controller's read-only file-check endpoint (package
// internal/filecheck, flag --controller-url), and the stable link GET /v1/download/{jobId}/archive
// redirects to a URL that the controller signs beside it (package internal/archivelink), because
// the controller already needs the credentials to presign and delete archives: keeping them in one component means the
// Internet-facing process, the one most likely to be attacked, cannot read or write any object
// even if compromised. Its Kubernetes ServiceAccount needs only a namespaced Role with
//
//	apiGroups: ["download.operator.dev"]  resources: ["downloads"]  verbs: [create, get, list, watch, delete]
//
// in the namespace given by --namespace; the health probe reads /readyz, which every
// authenticated identity may read through the built-in system:public-info-viewer role.
//
// # Idempotency
//
// With an Idempotency-Key header the jobId is derived from sha256(namespace, client, key), where
// client is the caller's ClientLabel value, and formatted as a version-4 UUID, so two replicas
// racing on the same key both try to create the same name and the apiserver lets exactly one win.
// The loser (and every later replay) compares the request's body hash with the
// RequestHashAnnotation of the existing Download: equal means the same jobId again, different
// means 409. Keys are scoped per client, as payment APIs scope them per account: the same key
// from another client derives another jobId, so it is another request and never reveals the
// first client's job. Keys must still be unguessable (a random UUID per logical request, as the
// IETF draft recommends): a jobId is a capability, and anyone who knows it may read or cancel
// the job.
//
// # ETA
//
// etaSeconds in the initiate answer is the median time from creation to completion of the last
// DefaultETAHistory completed Downloads in the cache, or DefaultETA when none completed yet. While
// a Download is processing, the controller's own estimate (from the bytes streamed so far) is
// reported instead.
//
// # Server-Sent Events
//
// GET /v1/download/events/{jobId} subscribes to the informer's notifications for that one
// Download and pushes every change of its status document. Each event's id is derived from the
// status itself (lifecycle rank, attempt, bytes done, URL expiry), so it grows monotonically and
// any replica can honour Last-Event-ID: a reconnecting client only gets what it has not seen,
// and a client that already saw the terminal event gets 204, which tells EventSource to stop.
//
// # Client identity
//
// A client is the peer address of its connection. Behind proxies, --trusted-proxies lists their
// networks: when the peer is one of them, X-Forwarded-For is read from the right, skipping the
// hops that are trusted proxies, and the first address that is not one is the client. Every
// proxy appends its own peer to the header, so that hop was written by a trusted proxy, while
// anything to its left was written by the client and is ignored: a forged header cannot move a
// caller into another client's limits. Without --trusted-proxies the header is ignored.
//
// The client's address never leaves the process as such: ClientLabel holds
// HMAC-SHA256(key, address), truncated to 128 bits, keyed by a per-install secret (CLIENT_ID_KEY,
// which the chart generates once into a Secret). A bare hash of an IPv4 address could be reversed
// by hashing all 2^32 of them. Replicas must share the key; a facade started without one draws a
// random key per process and says so loudly, and its replicas then disagree on who a client is.
//
// # Limits
//
// Every client has a token bucket (--rate-limit, --rate-burst) and may have at most
// --max-active-per-client unfinished Downloads, counted in the cache through ClientLabel (plus
// those this replica has created and its cache does not hold yet, see reservations), and at
// most --max-streams-per-client open event streams on a replica (429 TooManyStreams beyond it,
// which also ends EventSource's reconnects). Connections are capped per peer address when they
// are accepted (--max-connections-per-client, 429 TooManyConnections and closed beyond it), below
// the cap of all connections (--max-connections); trusted proxies are exempt from the per-peer
// cap, since they carry many clients, whom the per-request limits tell apart. The rate limit and
// the caps are per replica or per cache view and therefore soft across replicas; they protect the
// cluster from one noisy client, not from a coordinated attack, which belongs to the ingress.
//
// # Probes
//
// /healthz, /readyz and /metrics are served on a listener of their own (--probe-bind-address),
// which no client limit applies to, so that a host holding every connection it may have, or the
// whole --max-connections, cannot make the kubelet's probes time out and restart the Pod. The API
// port keeps GET /health, the replaced service's client-facing check, which the chart's Ingress
// publishes; it is rate limited like any request.
//
// # Public errors
//
// Every error.message comes from a fixed text per code, with file ids or the jobId filled in
// where that helps ("file 99999 does not exist"). The message of a failed Download's condition is
// written for operators by the controller and the worker and may name buckets, object keys and
// endpoints: the status document maps the condition's reason to a fixed text instead, and the
// detail stays in the Download and the logs. Under /v1/ only the API answers, in the JSON error
// shape, even with the demo page served at / (--ui-dir).
package facade
