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
	"net"
	"net/http"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/archivelink"
	"github.com/download-operator/download-operator/internal/storage"
	"github.com/download-operator/download-operator/test/miniotest"
)

// recordingManager keeps what is added to it; nothing else of the manager is used.
type recordingManager struct {
	ctrl.Manager
	added []manager.Runnable
}

func (m *recordingManager) Add(r manager.Runnable) error {
	m.added = append(m.added, r)
	return nil
}

// The file-check endpoint must run on every replica, leader or not, with the controller's
// storage credentials, and answer the facade's questions: files, storage health and archive links.
func TestFileCheckRunsWithoutLeaderElection(t *testing.T) {
	server := miniotest.StartForTest(t)
	server.ClientForTest(t, "files")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	mgr := &recordingManager{}
	flags := Flags{FileCheckAddr: addr, SourceBucket: "files", SourceKeyTemplate: "{id}", ArchiveBucket: "downloads"}
	storageConfig := storage.Config{Endpoint: server.Endpoint, AccessKey: server.AccessKey, SecretKey: server.SecretKey}
	store, err := storage.New(storageConfig)
	if err != nil {
		t.Fatal(err)
	}
	// An empty cache: the link endpoint answers, and finds no such job.
	scheme := runtime.NewScheme()
	if err := downloadv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	links := archivelink.New(fake.NewClientBuilder().WithScheme(scheme).Build(), store, sets.New("downloads"), flags.ArchiveBucket)
	if err := addFileCheck(mgr, flags, storageConfig, links); err != nil {
		t.Fatal(err)
	}
	if len(mgr.added) != 1 {
		t.Fatalf("%d runnables added, want 1", len(mgr.added))
	}
	runnable := mgr.added[0]
	if le, ok := runnable.(manager.LeaderElectionRunnable); !ok || le.NeedLeaderElection() {
		t.Fatal("the file-check endpoint would wait for leadership; standby replicas must serve it too")
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runnable.Start(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("file-check endpoint: %v", err)
		}
	}()
	for path, want := range map[string]int{
		"/v1/storage/health": http.StatusOK,
		"/v1/files/70000":    http.StatusOK,
		archivelink.Path("downloads", "123e4567-e89b-42d3-a456-426614174000", ""): http.StatusNotFound,
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}

	if err := addFileCheck(&recordingManager{}, Flags{FileCheckAddr: "0"}, storage.Config{}, links); err != nil {
		t.Errorf("--file-check-bind-address=0 must disable it: %v", err)
	}
}
