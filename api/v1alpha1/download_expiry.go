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

import "time"

// ExpiresAt is when a finished Download and its archive are deleted: status.completionTime plus
// spec.ttlSecondsAfterFinished (DefaultTTLSecondsAfterFinished when unset, as the apiserver
// defaults it). The controller deletes the Download then, the archive link endpoint signs nothing
// past it, and the facade's status document reports it as archiveExpiresAt. Every one of them
// asks this method, so they cannot disagree about the moment.
//
// It returns the zero time when status.completionTime is unset, which is the case until the
// Download completes or fails: an unfinished Download has no expiry yet. Callers that act on the
// result must look at the phase (or IsZero) first, since the zero time lies in the past.
func (d *Download) ExpiresAt() time.Time {
	if d.Status.CompletionTime == nil {
		return time.Time{}
	}
	ttl := int32(DefaultTTLSecondsAfterFinished)
	if d.Spec.TTLSecondsAfterFinished != nil {
		ttl = *d.Spec.TTLSecondsAfterFinished
	}
	return d.Status.CompletionTime.Add(time.Duration(ttl) * time.Second)
}
