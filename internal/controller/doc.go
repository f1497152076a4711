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

// Package controller reconciles Downloads into worker Jobs.
//
// Reconcile (download_controller.go) reads as numbered steps; each concern has its file:
//   - download_job.go builds the worker Job (and puts it in a Kueue queue when configured);
//   - download_credentials.go mints each worker's storage credential, scoped to its Download;
//   - download_reuse.go lets identical Downloads share a Job or a stored archive;
//   - download_status.go mirrors the Job and the worker's reports into status, with the
//     conditions, in one status write;
//   - download_lifecycle.go re-signs URLs and expires finished Downloads;
//   - download_finalizer.go removes the Job, the archive and any upload in flight;
//   - download_events.go hands transitions to the CloudEvents dispatcher (internal/events).
//
// ManagerOptions (manager_options.go) is the manager's cache and leader election; the controller
// command (internal/controllercmd) and the test set-ups (this package's suite, test/stack) all
// build their manager from it.
package controller
