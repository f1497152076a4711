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

package controllercmd

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// unreachableManagerError builds a manager, cached like the real one, against an address where
// nothing listens, so the tests classify the error controller-runtime really returns.
func unreachableManagerError(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err = ctrl.NewManager(&rest.Config{Host: "http://" + addr}, ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&batchv1.Job{}: {Namespaces: map[string]cache.Config{"downloads": {}}},
		}},
	})
	if err == nil {
		t.Fatal("building a manager against a closed port succeeded")
	}
	return err
}

func fastStartupBackoff(t *testing.T) {
	saved := startupBackoff
	startupBackoff = wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 1 << 30}
	t.Cleanup(func() { startupBackoff = saved })
}

func TestWhenReachableRetriesWhileTheApiserverIsDown(t *testing.T) {
	fastStartupBackoff(t)
	unreachable := unreachableManagerError(t)
	if !apiserverUnreachable(unreachable) {
		t.Fatalf("the error of an unreachable apiserver is not recognised: %v", unreachable)
	}
	calls := 0
	got, err := whenReachable(t.Context(), func() (string, error) {
		calls++
		if calls < 3 {
			return "", unreachable
		}
		return "manager", nil
	})
	if err != nil || got != "manager" || calls != 3 {
		t.Fatalf("got %q, %v after %d builds; want the manager after 3", got, err, calls)
	}
}

func TestWhenReachableFailsAtOnceOnAConfigurationError(t *testing.T) {
	fastStartupBackoff(t)
	misconfigured := errors.New("no kind is registered for the type v1alpha1.Download")
	calls := 0
	_, err := whenReachable(t.Context(), func() (string, error) { calls++; return "", misconfigured })
	if !errors.Is(err, misconfigured) || calls != 1 {
		t.Fatalf("got %v after %d builds; want the configuration error after 1", err, calls)
	}
}

func TestWhenReachableStopsWithTheLastErrorOnShutdown(t *testing.T) {
	fastStartupBackoff(t)
	unreachable := unreachableManagerError(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := whenReachable(ctx, func() (string, error) { return "", unreachable })
	if !errors.Is(err, unreachable) {
		t.Fatalf("got %v; want the apiserver error that kept the manager from starting", err)
	}
}
