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
// internal/filecheck, flag --controller-url), because the controller already needs the
// credentials to presign and delete archives: keeping them in one component means the
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
// With an Idempotency-Key header the jobId is derived from sha256(namespace, key) and formatted as
// a version-4 UUID, so two replicas racing on the same key both try to create the same name and
// the apiserver lets exactly one win. The loser (and every later replay) compares the request's
// body hash with the RequestHashAnnotation of the existing Download: equal means the same jobId
// again, different means 409. Because the jobId is derivable from the key, keys must be
// unguessable (a random UUID per logical request, as the IETF draft recommends): a jobId is a
// capability, and anyone who knows it may read or cancel the job.
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
// # Limits
//
// Every client (the RemoteAddr host, or the first X-Forwarded-For hop with --trust-proxy) has a
// token bucket (--rate-limit, --rate-burst) and may have at most --max-active-per-client
// unfinished Downloads, counted in the cache through ClientLabel. Both limits are per replica or
// per cache view and therefore soft across replicas; they protect the cluster from one noisy
// client, not from a coordinated attack, which belongs to the ingress.
package facade
