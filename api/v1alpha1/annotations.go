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

package v1alpha1

// Annotations on a Download that are part of its contract between the facade, which writes them
// when it creates the Download, and the controller, which reads them.
const (
	// TraceparentAnnotation holds the W3C traceparent of the facade's request span, so that the
	// controller's and the worker's spans join the trace of the HTTP call that asked for the
	// Download. An annotation rather than a spec field: it says how the object was made, not what
	// it should become, and a missing or malformed value only starts a new trace.
	TraceparentAnnotation = "download.operator.dev/traceparent"
)

// CredentialExpiresAnnotation is on a worker's credential Secret: when its short-lived storage
// key stops working (RFC 3339). It shows operators how long a leaked key would be of use.
const CredentialExpiresAnnotation = "download.operator.dev/credential-expires"

// CleanupFinalizer holds a deleted Download until the controller has removed its archive,
// because object storage is outside the reach of Kubernetes garbage collection. The facade sets
// it when it creates a Download, which saves the controller a write; the controller adds it to
// Downloads created otherwise.
const CleanupFinalizer = "download.operator.dev/cleanup"
