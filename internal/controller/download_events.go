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
	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/events"
)

// EventEmitter sends the completion events of Downloads to the operator's sinks
// (internal/events.Dispatcher). Emit must not block: it is called inside reconciles.
type EventEmitter interface {
	Emit(download *downloadv1alpha1.Download, eventType string)
}

// emitEvents hands the events a status write newly implies (started, completed, failed) to the
// sinks. It runs after the write succeeded, so an event never announces a status that a
// conflict threw away; the dispatcher's replay at start covers a crash in between.
func (r *DownloadReconciler) emitEvents(original, download *downloadv1alpha1.Download) {
	if r.Events == nil {
		return
	}
	for _, eventType := range events.Transitions(original, download) {
		r.Events.Emit(download, eventType)
	}
}
