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

package facade_test

import (
	"net/http"
	"testing"
)

// TestANewReplicaAnswersExistingJobsOnceReady starts a replica after jobs exist and polls them
// the moment it is ready: the documents of Downloads that only came with the informer's initial
// list, which no change has touched since, must be there, or a client moved to the new replica
// would see 404.
func TestANewReplicaAnswersExistingJobsOnceReady(t *testing.T) {
	s := sharedStack(t)
	c := newCaller(t, s.Facade)
	var jobIDs []string
	for i := range int64(3) {
		jobIDs = append(jobIDs, c.initiate([]int64{79600 + i}).JobID)
	}
	replica := newFacade(t, nil)
	moved := &caller{tb: t, base: replica.URL, ip: c.ip}
	for _, jobID := range jobIDs {
		if resp := moved.do(http.MethodGet, "/v1/download/status/"+jobID, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("the new replica answered %d for %s: %s", resp.StatusCode, jobID, resp.body)
		}
	}
}
