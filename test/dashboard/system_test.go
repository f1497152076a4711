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

package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	batchv1 "k8s.io/api/batch/v1"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/facade"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/test/localproc"
	"github.com/download-operator/download-operator/test/logbuffer"
	"github.com/download-operator/download-operator/test/promscrape"
	"github.com/download-operator/download-operator/test/stack"
)

// system is download-operator as it ships: the binary built from ./cmd, run as
// `download-operator controller` and `download-operator facade`, against envtest and MinIO from
// test/stack. The stack's Job helpers play the Job controller and the kubelet, and run the
// worker of each Job in this process: workers export no metrics, so where they run changes
// nothing the scrapes see.
type system struct {
	stack             *stack.Stack
	controller        *process
	facade            *process
	controllerMetrics string
	facadeURL         string
	facadeProbeURL    string
	tempDir           string
	http              *http.Client

	// identifiers are every name and id a Download gave rise to: none may appear in a label.
	identifiers []string
	// done counts the outcomes so far, to wait for the metrics to account for them.
	completed, failedKnown, failedOther, pending int
	archivedBytes                                int64
}

// The system is shared by the package's tests and started on first use, so the tests that only
// read the dashboard run without it.
var (
	systemOnce sync.Once
	shared     *system
	sharedErr  error
)

func getSystem() (*system, error) {
	systemOnce.Do(func() {
		// Most of it is `go build`, which takes minutes on a cold build cache.
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		shared, sharedErr = startSystem(ctx)
	})
	return shared, sharedErr
}

func startSystem(ctx context.Context) (_ *system, err error) {
	sys := &system{http: &http.Client{Timeout: 30 * time.Second}}
	defer func() {
		if err != nil {
			err = errors.Join(err, sys.stop())
		}
	}()
	if sys.tempDir, err = os.MkdirTemp("", "dashboard-test-"); err != nil {
		return nil, fmt.Errorf("creating a temp dir: %w", err)
	}
	bin, err := localproc.BuildOperator(ctx, sys.tempDir)
	if err != nil {
		return nil, err
	}
	if sys.stack, err = stack.Start(ctx, stack.Options{WithoutOperator: true}); err != nil {
		return nil, fmt.Errorf("starting envtest and MinIO: %w", err)
	}
	ports, err := localproc.FreeAddrs(5)
	if err != nil {
		return nil, err
	}
	metricsAddr, probeAddr, fileCheckAddr, facadeAddr, facadeProbeAddr := ports[0], ports[1], ports[2], ports[3], ports[4]
	opts, minio := sys.stack.Controller, sys.stack.MinIO
	sys.controller, err = startProcess(bin, []string{
		"KUBECONFIG=" + sys.stack.ControllerKubeconfig,
		"STORAGE_ACCESS_KEY=" + sys.stack.OperatorAccessKey, "STORAGE_SECRET_KEY=" + sys.stack.OperatorSecretKey,
	},
		"controller",
		// Plain HTTP: the HTTPS filter would send every scrape to the apiserver for a TokenReview,
		// which is the chart's business (test/chart), not the metrics'.
		"--metrics-bind-address="+metricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address="+probeAddr, "--file-check-bind-address="+fileCheckAddr,
		"--namespaces="+stack.Namespace, "--worker-image="+opts.WorkerImage,
		"--worker-service-account="+opts.WorkerServiceAccount,
		"--storage-endpoint="+minio.Endpoint, "--storage-public-endpoint=http://"+minio.Endpoint,
		"--source-bucket="+opts.SourceBucket, "--source-key-template="+opts.SourceKeyTemplate,
		"--archive-bucket="+opts.ArchiveBucket, "--reuse="+string(opts.Reuse),
	)
	if err != nil {
		return nil, err
	}
	sys.controllerMetrics = "http://" + metricsAddr + "/metrics"
	sys.facade, err = startProcess(bin, nil,
		"facade", "--listen="+facadeAddr, "--probe-bind-address="+facadeProbeAddr, "--namespace="+stack.Namespace,
		"--controller-url=http://"+fileCheckAddr, "--kubeconfig="+sys.stack.FacadeKubeconfig,
		// Every request comes from this one client; the limits are not what is measured.
		"--rate-limit=100000", "--rate-burst=100000", "--max-active-per-client=100000",
	)
	if err != nil {
		return nil, err
	}
	sys.facadeURL = "http://" + facadeAddr
	// Probes and metrics have a port of their own, so clients cannot crowd them out.
	sys.facadeProbeURL = "http://" + facadeProbeAddr
	for _, ready := range []struct {
		who     string
		process *process
		url     string
	}{
		{"controller", sys.controller, "http://" + probeAddr + "/readyz"},
		{"controller metrics", sys.controller, sys.controllerMetrics},
		{"facade", sys.facade, sys.facadeProbeURL + "/readyz"},
	} {
		// ctx bounds the whole start-up; the controller's cache sync is most of this wait.
		if err := ready.process.WaitReady(ctx, ready.url, 2*time.Minute); err != nil {
			return nil, fmt.Errorf("waiting for the %s: %w\ncontroller log:\n%s\nfacade log:\n%s",
				ready.who, err, sys.controller.log.String(), sys.facade.log.String())
		}
	}
	return sys, nil
}

func (sys *system) stop() error {
	if sys == nil {
		return nil
	}
	var errs []error
	for _, p := range []*process{sys.facade, sys.controller} {
		if p != nil {
			errs = append(errs, p.stop())
		}
	}
	if sys.stack != nil {
		errs = append(errs, sys.stack.Stop())
	}
	if sys.tempDir != "" {
		errs = append(errs, os.RemoveAll(sys.tempDir))
	}
	return errors.Join(errs...)
}

// process is one running role of the binary, its output kept for failure messages.
type process struct {
	*localproc.Process
	log *logbuffer.Buffer
}

func startProcess(bin string, env []string, args ...string) (*process, error) {
	log := &logbuffer.Buffer{}
	p, err := localproc.Start("download-operator "+args[0], bin, args, env, log)
	if err != nil {
		return nil, err
	}
	return &process{Process: p, log: log}, nil
}

// stop ends the process as Kubernetes does, and reports a process that had died before or did
// not exit cleanly, with its output.
func (p *process) stop() error {
	if err := p.Stop(20 * time.Second); err != nil {
		return fmt.Errorf("%w\n%s", err, p.log.String())
	}
	return nil
}

// call sends one request to the facade and returns the status and body.
func (sys *system) call(ctx context.Context, method, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, sys.facadeURL+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("building %s %s: %w", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := sys.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("reading %s %s: %w", method, path, err)
	}
	return resp.StatusCode, raw, nil
}

func (sys *system) expect(ctx context.Context, want int, method, path, body string) ([]byte, error) {
	code, raw, err := sys.call(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if code != want {
		return nil, fmt.Errorf("%s %s: %d %s, want %d", method, path, code, raw, want)
	}
	return raw, nil
}

// outcome is how one Download of a round ends.
type outcome int

const (
	completes outcome = iota
	failsWithKnownReason
	// failsWithUnknownReason has its worker report a reason of its own, as a buggy or hostile
	// worker could: a reason passed through to a label would grow with every such Download.
	failsWithUnknownReason
	isCancelled
	staysPending
	outcomes
)

// round runs perOutcome Downloads of each outcome through the facade, the controller and the
// stack's Job helpers, touching every facade route on the way, and waits until the metrics
// account for them.
func (sys *system) round(ctx context.Context, perOutcome int) error {
	const fileID = 70000
	if err := sys.stack.PutSource(ctx, fileID, []byte("the dashboard test's source file")); err != nil {
		return err
	}
	// Routes that are the same whatever the Downloads: the public health check, the API
	// document, a file check, a poll of an unknown job and an unknown path. Probes and scrapes
	// go to the probe port, which serves no API routes.
	for _, c := range []struct {
		want         int
		method, path string
		body         string
	}{
		{http.StatusOK, http.MethodGet, "/health", ""},
		{http.StatusOK, http.MethodGet, "/openapi.json", ""},
		{http.StatusOK, http.MethodPost, "/v1/download/check", fmt.Sprintf(`{"file_id":%d}`, fileID)},
		{http.StatusNotFound, http.MethodGet, "/v1/download/status/" + uuid.NewString(), ""},
		{http.StatusNotFound, http.MethodGet, "/no/such/" + uuid.NewString(), ""},
	} {
		if _, err := sys.expect(ctx, c.want, c.method, c.path, c.body); err != nil {
			return err
		}
	}

	for range perOutcome {
		for o := range outcomes {
			if err := sys.download(ctx, o, fileID); err != nil {
				return err
			}
		}
	}
	return sys.waitForAccounts(ctx)
}

// download runs one Download to its outcome.
func (sys *system) download(ctx context.Context, o outcome, fileID int64) error {
	raw, err := sys.expect(ctx, http.StatusAccepted, http.MethodPost, "/v1/download/initiate",
		fmt.Sprintf(`{"file_ids":[%d]}`, fileID))
	if err != nil {
		return err
	}
	var accepted facade.InitiateResponse
	if err := json.Unmarshal(raw, &accepted); err != nil {
		return fmt.Errorf("decoding the initiate answer %s: %w", raw, err)
	}
	name := accepted.JobID
	sys.identifiers = append(sys.identifiers, name)
	if _, err := sys.expect(ctx, http.StatusOK, http.MethodGet, "/v1/download/status/"+name, ""); err != nil {
		return err
	}
	if err := sys.followEvents(ctx, name); err != nil {
		return err
	}
	job, err := sys.stack.WaitForJob(ctx, name)
	if err != nil {
		return err
	}
	sys.identifiers = append(sys.identifiers, job.Name, string(job.UID))
	if d, err := sys.stack.Download(ctx, name); err == nil {
		sys.identifiers = append(sys.identifiers, string(d.UID))
	}

	switch o {
	case completes:
		d, err := sys.stack.RunToCompletion(ctx, name)
		if err != nil {
			return err
		}
		sys.completed++
		sys.archivedBytes += d.Status.Archive.Size
	case failsWithKnownReason, failsWithUnknownReason:
		reason := downloadv1alpha1.ReasonSourceNotFound
		if o == failsWithUnknownReason {
			// Condition reasons allow letters, digits and underscores only.
			reason = "Unheard" + strings.ReplaceAll(uuid.NewString(), "-", "")
			sys.identifiers = append(sys.identifiers, reason)
		}
		if err := sys.stack.StartJob(ctx, job); err != nil {
			return err
		}
		if err := sys.stack.FailJob(ctx, job, &jobreport.Failure{Reason: reason, Message: "made to fail by the test"},
			batchv1.JobReasonPodFailurePolicy, 1); err != nil {
			return err
		}
		if _, err := sys.stack.WaitForPhase(ctx, name, downloadv1alpha1.PhaseFailed); err != nil {
			return err
		}
		if o == failsWithKnownReason {
			sys.failedKnown++
		} else {
			sys.failedOther++
		}
	case isCancelled:
		if _, err := sys.expect(ctx, http.StatusAccepted, http.MethodDelete, "/v1/download/"+name, ""); err != nil {
			return err
		}
		if err := sys.stack.WaitGone(ctx, name); err != nil {
			return err
		}
	case staysPending:
		sys.pending++
	}
	return nil
}

// followEvents opens the Download's event stream, reads its first event and hangs up, as a
// browser tab that is closed does.
func (sys *system) followEvents(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sys.facadeURL+"/v1/download/events/"+name, nil)
	if err != nil {
		return fmt.Errorf("building the events request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("opening the events of %s: %w", name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("events of %s: %s", name, resp.Status)
	}
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "data:") {
			return nil
		}
	}
	return fmt.Errorf("the events of %s ended without an event: %w", name, errors.Join(lines.Err(), io.ErrUnexpectedEOF))
}

// waitForAccounts waits until the controller's metrics count every outcome so far: its counters
// move just after the status write the test waited for.
func (sys *system) waitForAccounts(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var mismatch error
	for {
		s, err := sys.scrapeController(ctx)
		if err == nil {
			mismatch = sys.accounted(s)
			if mismatch == nil {
				return nil
			}
		} else {
			mismatch = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the controller's metrics do not add up: %w", mismatch)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// accounted compares the controller's metrics with what the test did. It reads no reason
// label, so that a label gone wrong is reported by the label checks, not as a timeout here.
func (sys *system) accounted(s scrape) error {
	var errs []error
	check := func(what string, got float64, want float64) {
		if got != want {
			errs = append(errs, fmt.Errorf("%s = %v, want %v", what, got, want))
		}
	}
	check("completions", valueOf(s, "download_operator_download_completion_seconds", nil), float64(sys.completed))
	check("archived bytes", valueOf(s, "download_operator_archived_bytes_total", nil), float64(sys.archivedBytes))
	check("failures", valueOf(s, "download_operator_download_failures_total", nil), float64(sys.failedKnown+sys.failedOther))
	for phase, want := range map[downloadv1alpha1.DownloadPhase]int{
		downloadv1alpha1.PhasePending: sys.pending, downloadv1alpha1.PhaseProcessing: 0,
		downloadv1alpha1.PhaseCompleted: sys.completed, downloadv1alpha1.PhaseFailed: sys.failedKnown + sys.failedOther,
	} {
		check(string(phase)+" Downloads", valueOf(s, "download_operator_downloads", map[string]string{"phase": string(phase)}), float64(want))
	}
	check("active Jobs", valueOf(s, "download_operator_active_jobs", nil), float64(sys.pending))
	return errors.Join(errs...)
}

func (sys *system) scrapeController(ctx context.Context) (scrape, error) {
	return sys.scrapeURL(ctx, sys.controllerMetrics)
}

func (sys *system) scrapeFacade(ctx context.Context) (scrape, error) {
	return sys.scrapeURL(ctx, sys.facadeProbeURL+"/metrics")
}

// scrapeBoth scrapes the controller and the facade; their metric names do not overlap except
// for the Go and process collectors, whose series are the same in both.
func (sys *system) scrapeBoth(ctx context.Context) (map[string]scrape, error) {
	c, err := sys.scrapeController(ctx)
	if err != nil {
		return nil, err
	}
	f, err := sys.scrapeFacade(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]scrape{"controller": c, "facade": f}, nil
}

func (sys *system) scrapeURL(ctx context.Context, url string) (scrape, error) {
	return promscrape.Fetch(ctx, sys.http, url)
}

// scrape is one /metrics answer, by metric family name.
type scrape = promscrape.Scrape

// valueOf is s.Value, or -1 when s lacks the family: a metric that is not exported never equals
// a count, not even 0.
func valueOf(s scrape, name string, labels map[string]string) float64 {
	if _, ok := s[name]; !ok {
		return -1
	}
	return s.Value(name, labels)
}
