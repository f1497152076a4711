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

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpiresAt(t *testing.T) {
	done := metav1.NewTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	zero, ten := int32(0), int32(10)
	for name, tc := range map[string]struct {
		completion *metav1.Time
		ttl        *int32
		want       time.Time
	}{
		"not finished":          {nil, &ten, time.Time{}},
		"the default TTL":       {&done, nil, done.Add(DefaultTTLSecondsAfterFinished * time.Second)},
		"an explicit TTL":       {&done, &ten, done.Add(10 * time.Second)},
		"a TTL of zero":         {&done, &zero, done.Time},
		"not finished, default": {nil, nil, time.Time{}},
	} {
		d := &Download{Spec: DownloadSpec{TTLSecondsAfterFinished: tc.ttl}, Status: DownloadStatus{CompletionTime: tc.completion}}
		if got := d.ExpiresAt(); !got.Equal(tc.want) || got.IsZero() != tc.want.IsZero() {
			t.Errorf("%s: ExpiresAt() = %v, want %v", name, got, tc.want)
		}
	}
}
