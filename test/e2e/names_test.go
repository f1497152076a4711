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

package e2e

import "strconv"

// What the Helm chart (release download-operator) and the controller name and label. They live
// in one place so that a renamed chart object costs one edit here, not a hunt through the specs.
const (
	controllerDeployment = "download-operator-controller"
	facadeDeployment     = "download-operator-facade"

	controllerServiceAccount = "download-operator-controller"
	facadeServiceAccount     = "download-operator-facade"
	workerServiceAccount     = "download-operator-worker"

	// leaderLease is the Lease the controller replicas elect their leader with (--leader-elect).
	leaderLease = "download-operator.operator.dev"

	nameLabel           = "app.kubernetes.io/name"
	appName             = "download-operator"
	componentLabel      = "app.kubernetes.io/component"
	controllerComponent = "controller"
	facadeComponent     = "facade"
	workerComponent     = "download-worker"
	// downloadLabel marks a worker Job and its Pods with the Download they serve.
	downloadLabel = "download.operator.dev/download"
	// archiveKeyFlag is how the controller tells the worker where to store the archive; until
	// the Download completes, the Job's arguments are the only place that key is visible.
	archiveKeyFlag = "--archive-key="

	psaEnforceLabel = "pod-security.kubernetes.io/enforce"
	psaRestricted   = "restricted"

	// samplePath is relative to the repository root.
	samplePath = "config/samples/download_v1alpha1_download.yaml"

	// clientLabel is where the facade records the client that created a Download (an HMAC of
	// the client's address), and what its per-client active cap counts.
	clientLabel = "download.operator.dev/client"
	// resultAnnotation is where a worker reports its archive on its Job (internal/jobreport).
	resultAnnotation = "download.operator.dev/result"
	// credentialSecretSuffix names a worker's storage credential Secret after its Job.
	credentialSecretSuffix = "-storage"

	// suiteLabel marks the Downloads this suite creates, so that BeforeSuite can remove what an
	// aborted earlier run left behind.
	suiteLabel = "e2e.download.operator.dev/suite"
)

// Source files hack/demo/up seeds, by id.
const (
	file1MiB   int64 = 14000
	file32MiB  int64 = 70007
	file64MiB  int64 = 70000
	file128MiB int64 = 21000
	file512MiB int64 = 70014
	// fileMissing is never seeded.
	fileMissing int64 = 99999
)

const mib = 1 << 20

// seededSizes is what hack/demo/up promises; BeforeSuite checks it so that a changed seed
// fails once, clearly, instead of as odd timings in every spec.
var seededSizes = map[int64]int64{
	file1MiB:   1 * mib,
	file32MiB:  32 * mib,
	file64MiB:  64 * mib,
	file128MiB: 128 * mib,
	file512MiB: 512 * mib,
}

// sourceKey is a file's object key in SOURCE_BUCKET (the chart's default template "{id}").
func sourceKey(id int64) string { return strconv.FormatInt(id, 10) }

// entryName is the name a file gets inside the archive. It is written out here rather than
// taken from internal/worker, because it is what users unpack: a rename must fail this suite.
func entryName(id int64) string { return "file-" + strconv.FormatInt(id, 10) + ".bin" }
