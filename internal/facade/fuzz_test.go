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
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/test/stack"
)

// The fuzz targets drive a real facade handler (real informer cache, real apiserver behind
// it) in-process, without a network hop per input. With -fuzz the inputs run in worker processes
// that the fuzzing engine kills when it is done, which would orphan any kube-apiserver, etcd or
// MinIO they had started; so only the process running the target's setup (the coordinator, or
// the one process of a plain `go test`) starts the stack, and each worker only builds a facade
// against it, from the kubeconfig named by fuzzKubeconfigEnv.
//
// Valid bodies really create Downloads until the fuzz client reaches its cap on active ones;
// from then on they are answered 429, which is fine: the targets hunt for 5xx and panics.

const (
	// fuzzKubeconfigEnv passes the facade user's kubeconfig to fuzz worker processes.
	fuzzKubeconfigEnv = "FACADE_FUZZ_KUBECONFIG"
	// fuzzClient is the address every fuzz input comes from, apart from the other tests' clients.
	fuzzClient = "192.0.2.200"
)

var fuzzTarget struct {
	once    sync.Once
	handler http.Handler
	err     error
}

// prepareFuzz runs in the target's setup: it makes sure a stack runs for the workers to use.
func prepareFuzz(f *testing.F) {
	if os.Getenv(fuzzKubeconfigEnv) == "" {
		f.Setenv(fuzzKubeconfigEnv, sharedStack(f).FacadeKubeconfig)
	}
}

// fuzzHandler builds, once per process, a facade against the stack's apiserver.
func fuzzHandler(t *testing.T) http.Handler {
	t.Helper()
	fuzzTarget.once.Do(func() {
		restConfig, err := clientcmd.BuildConfigFromFlags("", os.Getenv(fuzzKubeconfigEnv))
		if err != nil {
			fuzzTarget.err = err
			return
		}
		cfg := facade.DefaultConfig(stack.Namespace)
		cfg.TrustedProxies = facade.Loopback
		cfg.RateLimit, cfg.RateBurst = 1e9, 1e9
		f, err := facade.New(restConfig, cfg)
		if err != nil {
			fuzzTarget.err = err
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		stopFuzzFacade = cancel
		go func() { _ = f.Start(ctx) }()
		syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
		defer cancelSync()
		if !f.WaitForCacheSync(syncCtx) {
			fuzzTarget.err = errors.New("the fuzz facade's cache did not sync")
			return
		}
		trackFacade(f)
		fuzzTarget.handler = f.Handler()
	})
	if fuzzTarget.err != nil {
		t.Fatalf("building the fuzz facade: %v", fuzzTarget.err)
	}
	return fuzzTarget.handler
}

func serveFuzz(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	h := fuzzHandler(t)
	req.RemoteAddr = fuzzClient + ":40000"
	req.Header.Set("X-Forwarded-For", fuzzClient)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s %s answered %d: %s", req.Method, req.URL, rec.Code, rec.Body)
	}
	if rec.Code >= 400 {
		var e facade.ErrorResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%d without an error document: %q (%v)", rec.Code, rec.Body, err)
		}
	}
	return rec
}

func FuzzInitiate(f *testing.F) {
	for _, seed := range []struct{ body, contentType, key string }{
		{`{"file_ids":[70000]}`, "application/json", ""},
		{`{"file_ids":[70000,70001,70002]}`, "application/json; charset=utf-8", ""},
		{`{"file_ids":[10000,100000000]}`, "application/json", "key-1"},
		{`{"file_ids":[10000,100000000]}`, "application/json", "key-1"},
		{`{"file_ids":[10000]}`, "application/json", "key-1"},
		{`{"file_ids":[]}`, "application/json", ""},
		{`{"file_ids":[9999]}`, "application/json", ""},
		{`{"file_ids":[70000,70000]}`, "application/json", ""},
		{`{"file_ids":["70000"]}`, "application/json", ""},
		{`{"file_ids":[7e4]}`, "application/json", ""},
		{`{"file_ids":[70000],"x":1}`, "application/json", ""},
		{`{"file_ids":[70000]}garbage`, "application/json", ""},
		{`{"file_ids":[70000]}`, "text/plain", ""},
		{`{"file_ids":[70000]}`, "", ""},
		{`{"file_ids":[70000]}`, "application/json", strings.Repeat("k", 300)},
		{`{"file_ids":[70000]}`, "application/json", "k\n"},
		{"\xff\xfe", "application/json", ""},
		{`null`, "application/json", ""},
		{`{"file_ids":null}`, "application/json", ""},
		{`{"file_ids":[` + strings.Repeat("70000,", 1001) + `70000]}`, "application/json", ""},
	} {
		f.Add(seed.body, seed.contentType, seed.key)
	}
	prepareFuzz(f)
	f.Fuzz(func(t *testing.T, body, contentType, key string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/download/initiate", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if key != "" {
			req.Header["Idempotency-Key"] = []string{key}
		}
		rec := serveFuzz(t, req)
		allowed := []int{http.StatusAccepted, http.StatusBadRequest, http.StatusConflict,
			http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusTooManyRequests}
		if !slices.Contains(allowed, rec.Code) {
			t.Fatalf("answered %d: %s", rec.Code, rec.Body)
		}
		if rec.Code == http.StatusAccepted {
			var accepted facade.InitiateResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &accepted); err != nil || uuid.Validate(accepted.JobID) != nil {
				t.Fatalf("202 with %q (%v)", rec.Body, err)
			}
		}
	})
}

func FuzzStatusPath(f *testing.F) {
	for _, seed := range []string{
		uuid.NewString(), strings.ToUpper(uuid.NewString()), "", "x", "../health", "..", "%2e%2e", "a/b",
		"{" + uuid.NewString() + "}", "urn:uuid:" + uuid.NewString(), strings.Repeat("a", 10000), "\x00", "ü",
		"00000000-0000-0000-0000-000000000000", "?x=1", "#frag",
	} {
		f.Add(seed)
	}
	prepareFuzz(f)
	f.Fuzz(func(t *testing.T, jobID string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL = &url.URL{Path: "/v1/download/status/" + jobID}
		req.RequestURI = req.URL.RequestURI()
		rec := serveFuzz(t, req)
		allowed := []int{http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed}
		if !slices.Contains(allowed, rec.Code) {
			t.Fatalf("status of %q answered %d: %s", jobID, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusOK {
			var st facade.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.JobID == "" {
				t.Fatalf("200 with %q (%v)", rec.Body, err)
			}
		}
	})
}
