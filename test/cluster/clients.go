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

package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/download-operator/download-operator/test/testenv"
)

// NewRESTConfig loads the demo kubeconfig. client-go would pace every client built from it at
// 5 requests per second; the drills create and watch hundreds of objects at once, and the
// apiserver's own priority and fairness is the limit worth testing, so the pace is raised.
func NewRESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", Env.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", Env.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	return cfg, nil
}

// NewClient is a client of the demo cluster, from cfg, that knows the Download kind.
func NewClient(cfg *rest.Config) (client.Client, error) {
	scheme, err := testenv.NewScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes client for %s: %w", cfg.Host, err)
	}
	return c, nil
}

// NewMinioClient reaches the demo's MinIO from the host with creds. The region is set because
// without one minio-go first asks for the bucket's location, which a narrow credential (a
// worker's) may not do.
func NewMinioClient(creds *credentials.Credentials) (*minio.Client, error) {
	u, err := url.Parse(Env.MinioURL)
	if err != nil {
		return nil, fmt.Errorf("parsing MINIO_URL %q: %w", Env.MinioURL, err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       u.Scheme == "https",
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("creating MinIO client for %s: %w", Env.MinioURL, err)
	}
	return c, nil
}

// Get GETs u with c. The caller closes the response body.
func Get(ctx context.Context, c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("building GET %s: %w", u, err)
	}
	return c.Do(req)
}

// GetStatusCode GETs u with c and returns the status code, the body read and discarded.
func GetStatusCode(ctx context.Context, c *http.Client, u string) (int, error) {
	resp, err := Get(ctx, c, u)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// GetOK GETs u and fails unless the answer is 200.
func GetOK(ctx context.Context, u string) error {
	code, err := GetStatusCode(ctx, http.DefaultClient, u)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, code, http.StatusText(code))
	}
	return nil
}
