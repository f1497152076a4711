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

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/test/localproc"
	"github.com/download-operator/download-operator/test/stack"
)

// initiateNamespace holds P1's Downloads, so that they never reach the polled facade's cache
// (its size would then depend on the order of the figures). The controller does not serve it:
// it fails each Download there with one status patch instead of creating Jobs.
const initiateNamespace = "bench-initiate"

// sampleFileIDs are the ids of every Download the bench creates; initiate never checks them.
var sampleFileIDs = []int64{70000, 70007}

// environment is the stack plus the processes under test.
type environment struct {
	stack *stack.Stack
	dir   string
	// removeDir removes dir, or keeps it with --keep.
	removeDir func()
	// binary is `download-operator` built from ./cmd.
	binary string
	// user is the facade's least-privileged identity, for the bare creates.
	user *rest.Config

	// polled is the facade P2 and P2t poll. It reaches the apiserver through proxy, which
	// counts its requests.
	polled *process
	proxy  *countingProxy
	// proxiedKubeconfig points the polled facade at proxy.
	proxiedKubeconfig string
	// statusURL is the polled Download's status on polled; bareURL the same path on bare.
	statusURL, bareURL string
	body               []byte
	bare               *process
	// initiator is the facade P1 posts to, connected to the apiserver directly.
	initiator *process
	// polledIdleRSS is the polled facade's RSS before any load, in MiB.
	polledIdleRSS, polledIdleAnon float64
	// profiled is set once P2t has been profiled with perf.
	profiled bool
	// facadeEnv is added to the facade processes' environment (--facade-env).
	facadeEnv []string
}

// process is a role of the binary, or the bare handler, listening on url and logging to a file.
type process struct {
	*localproc.Process
	url string
	log *os.File
}

// stop ends the process if it runs; the bench stops what it started, so how it ended is moot.
func (p *process) stop() {
	if p == nil {
		return
	}
	_ = p.Stop(25 * time.Second)
	_ = p.log.Close()
}

func startEnvironment(ctx context.Context, opts options) (_ *environment, err error) {
	// Both facades and sampleDownload share one client id key, so that labels agree.
	env := &environment{facadeEnv: append([]string{facade.ClientIDKeyEnv + "=" + benchClientIDKey}, opts.facadeEnv...)}
	if env.dir, env.removeDir, err = workDir("download-bench-", opts.keep); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			env.stop()
		}
	}()
	logf("building download-operator from ./cmd")
	if env.binary, err = localproc.BuildOperator(ctx, env.dir); err != nil {
		return nil, err
	}

	logf("starting envtest, MinIO and the controller (test/stack)")
	if env.stack, err = stack.Start(ctx, stack.Options{}); err != nil {
		return nil, fmt.Errorf("starting the stack (KUBEBUILDER_ASSETS, MINIO_BIN and HELM_BIN must be set): %w", err)
	}
	if env.user, err = clientcmd.BuildConfigFromFlags("", env.stack.FacadeKubeconfig); err != nil {
		return nil, fmt.Errorf("loading the facade's kubeconfig: %w", err)
	}
	if err := env.grantInitiateNamespace(ctx); err != nil {
		return nil, err
	}

	if env.proxy, err = startCountingProxy(env.user); err != nil {
		return nil, err
	}
	if env.proxiedKubeconfig, err = writeProxyKubeconfig(filepath.Join(env.dir, "proxied-kubeconfig"), env.proxy.url); err != nil {
		return nil, err
	}
	if env.polled, err = env.startFacade(ctx, "polled-facade", env.proxiedKubeconfig, stack.Namespace); err != nil {
		return nil, err
	}
	if err := env.seedCache(ctx, opts.cached); err != nil {
		return nil, err
	}
	if err := env.preparePolledJob(ctx); err != nil {
		return nil, err
	}
	bodyFile := filepath.Join(env.dir, "status.json")
	if err := os.WriteFile(bodyFile, env.body, 0o600); err != nil {
		return nil, err
	}
	if env.bare, err = startBare(ctx, bodyFile, filepath.Join(env.dir, "bare.log")); err != nil {
		return nil, err
	}
	env.bareURL = env.bare.url + strings.TrimPrefix(env.statusURL, env.polled.url)
	if env.initiator, err = env.startFacade(ctx, "initiate-facade", env.stack.FacadeKubeconfig, initiateNamespace, "--trusted-proxies=127.0.0.0/8"); err != nil {
		return nil, err
	}
	env.idleRSS()
	logf("ready: polled facade pid %d, initiate facade pid %d, bare handler pid %d; %d other Downloads cached",
		env.polled.Pid(), env.initiator.Pid(), env.bare.Pid(), opts.cached)
	return env, nil
}

func (env *environment) stop() {
	env.initiator.stop()
	env.polled.stop()
	env.bare.stop()
	if env.proxy != nil {
		env.proxy.close()
	}
	if env.stack != nil {
		if err := env.stack.Stop(); err != nil {
			logf("stopping the stack: %v", err)
		}
	}
	if env.removeDir != nil {
		env.removeDir()
	}
}

// grantInitiateNamespace gives the facade's user in initiateNamespace the Role it has in the
// stack's namespace.
func (env *environment) grantInitiateNamespace(ctx context.Context) error {
	admin := env.stack.Admin
	var role rbacv1.Role
	if err := admin.Get(ctx, client.ObjectKey{Namespace: stack.Namespace, Name: stack.FacadeRole}, &role); err != nil {
		return fmt.Errorf("reading the facade's Role: %w", err)
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: initiateNamespace}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: stack.FacadeRole, Namespace: initiateNamespace}, Rules: role.Rules},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: stack.FacadeRole, Namespace: initiateNamespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: stack.FacadeRole},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: stack.FacadeUser}},
		},
	}
	for _, obj := range objs {
		if err := admin.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return nil
}

// startFacade runs `download-operator facade` with limits out of the way, and waits until it
// is ready (its cache synced).
func (env *environment) startFacade(ctx context.Context, name, kubeconfig, namespace string, extra ...string) (*process, error) {
	addrs, err := localproc.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	addr, probeAddr := addrs[0], addrs[1]
	args := append([]string{"facade", "--kubeconfig", kubeconfig, "--namespace", namespace,
		"--listen", addr, "--probe-bind-address", probeAddr,
		"--rate-limit", "1e9", "--rate-burst", "1000000000", "--max-active-per-client", "1000000",
		// The load generators are one host with many connections.
		"--max-connections-per-client", "0", "--max-streams-per-client", "0"}, extra...)
	p, err := startProcess(name, env.binary, args, env.facadeEnv, filepath.Join(env.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	p.url = "http://" + addr
	if err := p.WaitReady(ctx, "http://"+probeAddr+"/readyz", readyTimeout); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// readyTimeout bounds a process's start-up; the facade's is mostly its cache sync.
const readyTimeout = 60 * time.Second

func startProcess(name, binary string, args, extraEnv []string, logFile string) (*process, error) {
	log, err := os.Create(logFile)
	if err != nil {
		return nil, fmt.Errorf("creating %s's log: %w", name, err)
	}
	p, err := localproc.Start(name, binary, args, extraEnv, log)
	if err != nil {
		_ = log.Close()
		return nil, err
	}
	return &process{Process: p, log: log}, nil
}

// benchClientIDKey is the facades' client id key; a benchmark has no secret to keep.
const benchClientIDKey = "download-operator-bench-client-id-key"

// sampleDownload is the object a facade initiate of sampleFileIDs creates, for a client.
func sampleDownload(namespace, client string) *downloadv1alpha1.Download {
	ids, _ := json.Marshal(sampleFileIDs)
	return &downloadv1alpha1.Download{
		ObjectMeta: metav1.ObjectMeta{
			Name: uuid.NewString(), Namespace: namespace,
			Labels:      map[string]string{facade.ClientLabel: facade.ClientLabelValue([]byte(benchClientIDKey), client)},
			Annotations: map[string]string{facade.RequestHashAnnotation: sha256Hex(ids)},
		},
		Spec: downloadv1alpha1.DownloadSpec{FileIDs: sampleFileIDs},
	}
}

// seedCache creates n Downloads in the polled namespace, so that the polled facade's cache is
// not trivially small. The controller gives each its Job, as it would in a cluster.
func (env *environment) seedCache(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	logf("creating %d Downloads for the polled facade's cache", n)
	var wg sync.WaitGroup
	var failed atomic.Value
	next := atomic.Int64{}
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				d := sampleDownload(stack.Namespace, fmt.Sprintf("10.1.%d.%d", i/250, i%250))
				if err := env.stack.Admin.Create(ctx, d); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return fmt.Errorf("seeding the cache: %w", err)
	}
	return nil
}

// preparePolledJob initiates the Download P2 polls and brings it to processing with progress,
// the answer most polls get.
func (env *environment) preparePolledJob(ctx context.Context) error {
	resp, err := http.Post(env.polled.url+"/v1/download/initiate", "application/json",
		strings.NewReader(`{"file_ids":[70000,70007]}`))
	if err != nil {
		return fmt.Errorf("initiating the polled Download: %w", err)
	}
	var accepted facade.InitiateResponse
	err = json.NewDecoder(resp.Body).Decode(&accepted)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("initiating the polled Download: %d %v", resp.StatusCode, err)
	}
	job, err := env.stack.WaitForStartedJob(ctx, accepted.JobID)
	if err != nil {
		return err
	}
	if err := annotateProgress(ctx, env.stack.Admin, job, jobreport.Progress{BytesDone: 40 << 20, BytesTotal: 96 << 20}); err != nil {
		return err
	}
	env.statusURL = env.polled.url + "/v1/download/status/" + accepted.JobID
	deadline := time.Now().Add(30 * time.Second)
	for {
		raw, status, err := get(env.statusURL)
		if err == nil && status.Status == facade.StatusProcessing && status.Progress != nil && *status.Progress > 0 {
			env.body = raw
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the polled Download never showed progress: %s %v", raw, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func annotateProgress(ctx context.Context, admin client.Client, job *batchv1.Job, p jobreport.Progress) error {
	value, err := jobreport.Encode(p)
	if err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		jobreport.ProgressAnnotation: value}}})
	if err := admin.Patch(ctx, job, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("reporting progress on Job %s: %w", job.Name, err)
	}
	return nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func urlParse(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("apiserver address %q is not a URL", raw)
	}
	return u, nil
}

func get(url string) ([]byte, facade.Status, error) {
	var status facade.Status
	resp, err := http.Get(url)
	if err != nil {
		return nil, status, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, status, err
	}
	if resp.StatusCode != http.StatusOK {
		return raw, status, fmt.Errorf("status %d", resp.StatusCode)
	}
	return raw, status, json.Unmarshal(raw, &status)
}

// countingProxy stands between a facade process and the apiserver and counts every request,
// so that P2 can show how many a poll costs. The facade talks plain HTTP to it without
// credentials; it forwards with the facade user's client certificate, so RBAC is unchanged.
type countingProxy struct {
	url    string
	server *http.Server
	ln     net.Listener

	mu       sync.Mutex
	requests []string
}

func startCountingProxy(user *rest.Config) (*countingProxy, error) {
	transport, err := rest.TransportFor(user)
	if err != nil {
		return nil, fmt.Errorf("building the apiserver transport: %w", err)
	}
	target, err := urlParse(user.Host)
	if err != nil {
		return nil, err
	}
	p := &countingProxy{}
	reverse := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport: transport,
		// Watches stream; pass every chunk on at once.
		FlushInterval: -1,
	}
	if p.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	p.url = "http://" + p.ln.Addr().String()
	p.server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Method+" "+r.URL.RequestURI())
		p.mu.Unlock()
		reverse.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.server.Serve(p.ln) }()
	return p, nil
}

// count returns how many requests went through so far.
func (p *countingProxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.requests)
}

// since returns the requests after the first n.
func (p *countingProxy) since(n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests[n:]...)
}

func (p *countingProxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.server.Shutdown(ctx)
	_ = p.server.Close()
}

func writeProxyKubeconfig(path, server string) (string, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["proxy"] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	cfg.CurrentContext = "proxy"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// The bare handler: this program re-executed with bareServerEnv set to the body's file.
const bareServerEnv = "DOWNLOAD_BENCH_BARE_BODY"

// startBare runs the bare handler in its own process, as the facade runs in its own: this
// program, built with `go build` (`go run` leaves out what perf needs to name functions).
func startBare(ctx context.Context, bodyFile, logFile string) (*process, error) {
	self, err := localproc.Build(ctx, "./hack/bench", filepath.Dir(bodyFile), "bare-handler", nil, nil)
	if err != nil {
		return nil, fmt.Errorf("building the bare handler: %w", err)
	}
	addr, err := localproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startProcess("bare handler", self, nil, []string{bareServerEnv + "=" + bodyFile, "DOWNLOAD_BENCH_BARE_ADDR=" + addr}, logFile)
	if err != nil {
		return nil, err
	}
	p.url = "http://" + addr
	if err := p.WaitReady(ctx, p.url+"/", readyTimeout); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// serveBare is the reference for P2 and P2t: net/http answering every request with the same
// JSON bytes the facade answers a poll with, and nothing else (no routing, middleware, cache).
func serveBare() int {
	body, err := os.ReadFile(os.Getenv(bareServerEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := http.ListenAndServe(os.Getenv("DOWNLOAD_BENCH_BARE_ADDR"), stack.BareHandler(body)); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// tailLog returns the last lines of a child's log, for error messages.
func tailLog(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
