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
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/keymutex"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
)

// fakeCache stands in for the manager's cache, with the index reuse lists by.
func fakeCache(t *testing.T, objects ...client.Object) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := downloadv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects...).
		WithIndex(&downloadv1alpha1.Download{}, requestIndex, func(obj client.Object) []string {
			return []string{requestKey(obj.(*downloadv1alpha1.Download).Spec)}
		}).Build()
}

// A leader's status write is paced, so its Job can start, and even finish, before its status
// names the Job. An identical Download arriving then must follow that Job rather than start a
// second one: the burst e2e spec once saw two Jobs for thirty identical requests this way.
func TestAnIdenticalDownloadFollowsALeaderWhoseStatusLagsItsJob(t *testing.T) {
	created := time.Date(2026, 12, 4, 4, 38, 52, 0, time.UTC)
	identical := func(name string, age time.Duration) *downloadv1alpha1.Download {
		return &downloadv1alpha1.Download{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", CreationTimestamp: metav1.NewTime(created.Add(-age))},
			Spec:       downloadv1alpha1.DownloadSpec{FileIDs: []int64{14000}},
		}
	}
	leader, unstarted, arriving := identical("leader", 2*time.Second), identical("unstarted", 3*time.Second), identical("arriving", 0)
	leaderJob := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: jobName(leader), Namespace: "shop"}}

	for name, tc := range map[string]struct {
		objects []client.Object
		want    string
	}{
		// The oldest identical Download has no Job yet: following it would only wait.
		"the Job is in the cache, the status not yet": {[]client.Object{leader, unstarted, arriving, leaderJob}, "leader"},
		"nobody has started a Job":                    {[]client.Object{leader, unstarted, arriving}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			r := &DownloadReconciler{Client: fakeCache(t, tc.objects...), requestLocks: keymutex.NewHashed(0)}
			got, err := r.inFlightLeader(context.Background(), arriving, leaderKey(arriving))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("inFlightLeader = %q, want %q", got, tc.want)
			}
		})
	}
}
