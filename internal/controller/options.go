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
	"net/url"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/download-operator/download-operator/internal/storage"
)

// Options configure what the controller asks of each worker Job.
type Options struct {
	// Namespaces are the namespaces where worker Jobs may run: each needs the worker
	// ServiceAccount with its Role, and the controller's Role (Jobs, Pods, credential Secrets).
	Namespaces sets.Set[string]

	WorkerImage          string
	WorkerServiceAccount string
	WorkerResources      corev1.ResourceRequirements
	// MaxConcurrentReconciles is how many Downloads are reconciled at once. A reconcile mostly
	// waits on the apiserver, so one at a time leaves a controller that starts with thousands of
	// Downloads, or meets a burst of them, working through them slowly.
	MaxConcurrentReconciles int
	// WorkerTracingEnv is the controller's own OpenTelemetry export settings (OTEL_* variables),
	// passed on so that workers export their spans to the same collector.
	WorkerTracingEnv []corev1.EnvVar

	// StorageEndpoint is where workers reach storage, with the short-lived credential the
	// controller mints for each of them.
	StorageEndpoint string
	StorageSecure   bool

	SourceBucket      string
	SourceKeyTemplate string
	ArchiveBucket     string

	// Reuse is how far identical Downloads share Jobs and archives.
	Reuse ReuseScope
	// StatusWriteInterval is the shortest time between two status writes of a Download still in
	// flight, counted from its creation: changes in between (Job created, attempts, progress)
	// are folded into the next write. Finishing is written at once. 0 writes every change.
	StatusWriteInterval time.Duration

	// QueueName is the Kueue LocalQueue of the worker Jobs in every served namespace that
	// NamespaceQueueNames does not name; "" means none. A Job with a queue is created suspended,
	// with the kueue.x-k8s.io/queue-name label, and runs once Kueue admits it.
	QueueName string
	// NamespaceQueueNames gives a served namespace a LocalQueue of its own.
	NamespaceQueueNames map[string]string
}

// DefaultStatusWriteInterval lets a Download that finishes within 5 s cost one status write,
// and a longer one a write per 5 s of progress, while clients still see it move.
const DefaultStatusWriteInterval = 5 * time.Second

func (o Options) serves(namespace string) bool { return o.Namespaces.Has(namespace) }

// queueName is the Kueue LocalQueue of the namespace's worker Jobs, or "" for none.
func (o Options) queueName(namespace string) string {
	if queue, found := o.NamespaceQueueNames[namespace]; found {
		return queue
	}
	return o.QueueName
}

// ArchiveStore is the object storage the controller needs: minting each worker's credential,
// checking and presigning finished archives, removing what killed attempts left, removing
// archives when their last Download goes, and reading source ETags to find reusable archives.
type ArchiveStore interface {
	MintWorkerCredential(ctx context.Context, scope storage.WorkerScope, lifetime time.Duration, sessionName string) (storage.Credential, error)
	ArchiveSize(ctx context.Context, bucket, key string) (int64, error)
	PresignGet(ctx context.Context, bucket, key string, expiry time.Duration, fileName string) (*url.URL, error)
	RemoveIncompleteUploads(ctx context.Context, bucket, key string) error
	SourceETags(ctx context.Context, bucket string, keys []string) ([]string, error)
	DeleteArchive(ctx context.Context, bucket, key string) error
}
