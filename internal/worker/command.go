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

package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/jobreport"
	"github.com/download-operator/download-operator/internal/restconfig"
	"github.com/download-operator/download-operator/internal/tracing"
)

// Environment variables read by Command. Credentials come only from the environment (a Secret
// in the Pod spec), never from flags, which anyone who can read the Pod or its process list sees.
const (
	EnvNamespace = "POD_NAMESPACE"
	// EnvPodName names the worker's Pod in its progress reports (see jobreport.Progress.Pod).
	EnvPodName   = "POD_NAME"
	EnvAccessKey = "STORAGE_ACCESS_KEY"
	EnvSecretKey = "STORAGE_SECRET_KEY"
	// EnvSessionToken completes the short-lived credential the controller minted for this
	// worker's Download alone.
	EnvSessionToken = "STORAGE_SESSION_TOKEN"
)

// options are Command's flags beyond Config.
type options struct {
	namespace  string
	jobName    string
	endpoint   string
	secure     bool
	region     string
	kubeconfig string
}

// Command is `download-operator worker`: it parses args, runs the worker until done or until
// SIGTERM/SIGINT, logs to stderr and returns the process exit code: 0, or one of the jobreport
// Exit codes.
//
// It continues the trace in TRACEPARENT (set by the controller on the Job's Pod) and exports its
// spans when the OTEL_* environment asks for it, flushing them before it returns, whatever the
// outcome: the Pod, and any span still queued, is gone right after.
func Command(ctx context.Context, args []string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(tracing.NewLogHandler(slog.NewJSONHandler(stderr, nil)))
	// Before anything logs, so that even a usage error is logged with the Download's trace id.
	ctx = tracing.ContextFromEnv(ctx)

	cfg, opts, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		log.ErrorContext(ctx, "invalid arguments", "error", err)
		return jobreport.ExitUsage
	}
	shutdownTracing, err := tracing.Setup(ctx, tracing.ServiceWorker, tracing.WithLogger(log))
	if err != nil {
		// Tracing is an aid: the archive matters more than its spans.
		log.WarnContext(ctx, "tracing is off", "error", err)
	}
	defer func() {
		if err := tracing.Flush(ctx, shutdownTracing); err != nil {
			log.WarnContext(ctx, "could not export the last spans", "error", err)
		}
	}()
	deps, err := connect(opts, log)
	if err != nil {
		log.ErrorContext(ctx, "cannot start worker", "error", err)
		return jobreport.ExitUsage
	}
	log.InfoContext(ctx, "worker starting", "namespace", opts.namespace, "job", opts.jobName, "files", len(cfg.FileIDs),
		"sourceBucket", cfg.SourceBucket, "archiveBucket", cfg.ArchiveBucket, "archiveKey", cfg.ArchiveKey,
		"endpoint", opts.endpoint, "maxBytesPerSecond", cfg.MaxBytesPerSecond)
	_, err = Run(ctx, cfg, deps)
	code := ExitCode(err)
	if err != nil {
		log.ErrorContext(ctx, "worker failed", "exit", code, "error", err)
	}
	return code
}

func parseArgs(args []string, stderr io.Writer) (Config, options, error) {
	var (
		cfg          Config
		opts         options
		fileIDs      string
		missingFiles string
	)
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opts.namespace, "namespace", os.Getenv(EnvNamespace), "namespace of the worker's Job")
	fs.StringVar(&opts.jobName, "job-name", "", "name of the worker's Job, which receives the reports (required)")
	fs.StringVar(&fileIDs, "file-ids", "", "comma-separated file ids to bundle (required)")
	fs.StringVar(&cfg.SourceBucket, "source-bucket", "files", "bucket holding the files")
	fs.StringVar(&cfg.SourceKeyTemplate, "source-key-template", idPlaceholder, "object key of a file; "+idPlaceholder+" stands for its id")
	fs.StringVar(&cfg.ArchiveBucket, "archive-bucket", "downloads", "bucket receiving the archive")
	fs.StringVar(&cfg.ArchiveKey, "archive-key", "", "object key of the archive (required)")
	fs.Int64Var(&cfg.MaxBytesPerSecond, "max-bytes-per-second", 0, "cap on source reads; 0 means unlimited")
	fs.Uint64Var(&cfg.PartSize, "part-size", DefaultPartSize, "multipart upload part size in bytes; the worker holds two parts in memory")
	fs.DurationVar(&cfg.ProgressInterval, "progress-interval", DefaultProgressInterval, "shortest time between progress reports")
	fs.StringVar(&missingFiles, "missing-files", string(downloadv1alpha1.MissingFilesFail),
		"what to do about file ids without a source object: Fail the run, or Skip them and list them in the manifest")
	fs.StringVar(&opts.endpoint, "storage-endpoint", "", "object storage host:port (required)")
	fs.BoolVar(&opts.secure, "storage-secure", false, "use TLS for object storage")
	fs.StringVar(&opts.region, "storage-region", "us-east-1", "object storage region")
	fs.StringVar(&opts.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster config")
	if err := fs.Parse(args); err != nil {
		return Config{}, options{}, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	ids, err := parseFileIDs(fileIDs)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.FileIDs = ids
	// Validate rejects any other value, naming both that it accepts.
	cfg.MissingFiles = downloadv1alpha1.MissingFilesPolicy(missingFiles)
	for name, value := range map[string]string{"namespace": opts.namespace, "job-name": opts.jobName, "storage-endpoint": opts.endpoint} {
		if value == "" {
			errs = append(errs, fmt.Errorf("--%s is required", name))
		}
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	return cfg, opts, errors.Join(errs...)
}

func parseFileIDs(list string) ([]int64, error) {
	if strings.TrimSpace(list) == "" {
		return nil, errors.New("--file-ids is required")
	}
	fields := strings.Split(list, ",")
	ids := make([]int64, len(fields))
	for i, field := range fields {
		id, err := strconv.ParseInt(strings.TrimSpace(field), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--file-ids: %w", err)
		}
		ids[i] = id
	}
	return ids, nil
}

// connect builds the storage client and the Job reporter. It fails only on configuration
// mistakes; nothing is contacted yet.
func connect(opts options, log *slog.Logger) (Deps, error) {
	accessKey, secretKey := os.Getenv(EnvAccessKey), os.Getenv(EnvSecretKey)
	if accessKey == "" || secretKey == "" {
		return Deps{}, fmt.Errorf("%s and %s must be set", EnvAccessKey, EnvSecretKey)
	}
	storage, err := minio.New(opts.endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(accessKey, secretKey, os.Getenv(EnvSessionToken)),
		Secure: opts.secure,
		Region: opts.region,
	})
	if err != nil {
		return Deps{}, fmt.Errorf("configuring storage client for %s: %w", opts.endpoint, err)
	}
	restConfig, err := restconfig.Load(opts.kubeconfig, rest.InClusterConfig, "in-cluster Kubernetes config")
	if err != nil {
		return Deps{}, err
	}
	restConfig.UserAgent = "download-operator-worker"
	clientset, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return Deps{}, fmt.Errorf("creating Kubernetes client: %w", err)
	}
	return Deps{
		Source:   storage,
		Reporter: NewJobReporter(clientset, opts.namespace, opts.jobName).FromPod(os.Getenv(EnvPodName)),
		Logger:   log,
	}, nil
}
