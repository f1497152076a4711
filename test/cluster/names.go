//go:build e2e

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

package cluster

import "strconv"

// What the Helm chart (release download-operator) and the controller name and label. They live
// in one place so that a renamed chart object costs one edit here, not a hunt through the specs.
const (
	ControllerDeployment = "download-operator-controller"
	FacadeDeployment     = "download-operator-facade"

	ControllerServiceAccount = "download-operator-controller"
	FacadeServiceAccount     = "download-operator-facade"
	WorkerServiceAccount     = "download-operator-worker"

	// LeaderLease is the Lease the controller replicas elect their leader with (--leader-elect).
	LeaderLease = "download-operator.operator.dev"

	NameLabel           = "app.kubernetes.io/name"
	AppName             = "download-operator"
	ComponentLabel      = "app.kubernetes.io/component"
	ControllerComponent = "controller"
	FacadeComponent     = "facade"
	WorkerComponent     = "download-worker"
	// DownloadLabel marks a worker Job and its Pods with the Download they serve.
	DownloadLabel = "download.operator.dev/download"
	// ArchiveKeyFlag is how the controller tells the worker where to store the archive; until
	// the Download completes, the Job's arguments are the only place that key is visible.
	ArchiveKeyFlag = "--archive-key="

	PSAEnforceLabel = "pod-security.kubernetes.io/enforce"
	PSARestricted   = "restricted"

	// SamplePath is relative to the repository root.
	SamplePath = "config/samples/download_v1alpha1_download.yaml"

	// ClientLabel is where the facade records the client that created a Download (an HMAC of
	// the client's address), and what its per-client active cap counts.
	ClientLabel = "download.operator.dev/client"
	// ResultAnnotation is where a worker reports its archive on its Job (internal/jobreport).
	ResultAnnotation = "download.operator.dev/result"
	// CredentialSecretSuffix names a worker's storage credential Secret after its Job.
	CredentialSecretSuffix = "-storage"

	// suiteLabel marks the Downloads the suites create, so that SetUp can remove what an
	// aborted earlier run left behind.
	suiteLabel = "e2e.download.operator.dev/suite"
)

// Source files hack/demo/up seeds, by id.
const (
	File1MiB   int64 = 14000
	File32MiB  int64 = 70007
	File64MiB  int64 = 70000
	File128MiB int64 = 21000
	File512MiB int64 = 70014
	// FileMissing is never seeded.
	FileMissing int64 = 99999
)

const MiB = 1 << 20

// SeededSizes is what hack/demo/up promises; SetUp checks it so that a changed seed
// fails once, clearly, instead of as odd timings in every spec.
var SeededSizes = map[int64]int64{
	File1MiB:   1 * MiB,
	File32MiB:  32 * MiB,
	File64MiB:  64 * MiB,
	File128MiB: 128 * MiB,
	File512MiB: 512 * MiB,
}

// SourceKey is a file's object key in SOURCE_BUCKET (the chart's default template "{id}").
func SourceKey(id int64) string { return strconv.FormatInt(id, 10) }

// entryName is the name a file gets inside the archive. It is written out here rather than
// taken from internal/worker, because it is what users unpack: a rename must fail the suites.
func entryName(id int64) string { return "file-" + strconv.FormatInt(id, 10) + ".bin" }
