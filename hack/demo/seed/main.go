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

// Command seed fills a MinIO source bucket with the demo's files and creates the archive bucket.
// Each file's bytes are a pseudo-random stream seeded by its id: incompressible like real media,
// identical on every machine, and generated while uploading so nothing touches the disk.
// Objects that already exist with the right size are kept, so running it again costs nothing.
//
//	go run ./hack/demo/seed --endpoint 127.0.0.1:9000 --source-bucket files --archive-bucket downloads \
//	    70000=64Mi 70007=32Mi
//
// Credentials come from MINIO_ACCESS_KEY and MINIO_SECRET_KEY (root). With OPERATOR_ACCESS_KEY and
// OPERATOR_SECRET_KEY it also creates the operator's own MinIO user, limited to the two buckets,
// with MinIO's admin client (MC_BIN).
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/download-operator/download-operator/internal/storage"
	"github.com/download-operator/download-operator/test/miniotest"
)

type file struct {
	id   int64
	size int64
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "127.0.0.1:9000", "MinIO host:port")
	sourceBucket := fs.String("source-bucket", "files", "bucket of the source files")
	archiveBucket := fs.String("archive-bucket", "downloads", "bucket of the archives, created empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files, err := parseFiles(fs.Args())
	if err != nil {
		return err
	}
	s3, err := minio.New(*endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(os.Getenv("MINIO_ACCESS_KEY"), os.Getenv("MINIO_SECRET_KEY"), ""),
	})
	if err != nil {
		return fmt.Errorf("creating the MinIO client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, bucket := range []string{*sourceBucket, *archiveBucket} {
		if err := ensureBucket(ctx, s3, bucket); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := ensureObject(ctx, s3, *sourceBucket, f); err != nil {
			return err
		}
	}
	return ensureOperatorUser(ctx, *endpoint, *sourceBucket, *archiveBucket)
}

// ensureOperatorUser creates the operator's MinIO user with the policy the chart README gives.
func ensureOperatorUser(ctx context.Context, endpoint, sourceBucket, archiveBucket string) error {
	accessKey, secretKey := os.Getenv("OPERATOR_ACCESS_KEY"), os.Getenv("OPERATOR_SECRET_KEY")
	if accessKey == "" {
		return nil
	}
	policy, err := storage.OperatorPolicy(sourceBucket, archiveBucket)
	if err != nil {
		return err
	}
	admin := miniotest.Admin{Endpoint: endpoint, AccessKey: os.Getenv("MINIO_ACCESS_KEY"), SecretKey: os.Getenv("MINIO_SECRET_KEY")}
	if err := admin.AddUser(ctx, accessKey, secretKey, policy); err != nil {
		return fmt.Errorf("creating the operator's MinIO user: %w", err)
	}
	fmt.Printf("seed: MinIO user %s may use %s and %s only\n", accessKey, sourceBucket, archiveBucket)
	return nil
}

// parseFiles reads ID=SIZE arguments, SIZE being a Kubernetes quantity such as 64Mi.
func parseFiles(args []string) ([]file, error) {
	if len(args) == 0 {
		return nil, errors.New("no files given; want ID=SIZE arguments such as 70000=64Mi")
	}
	files := make([]file, 0, len(args))
	for _, arg := range args {
		idText, sizeText, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want ID=SIZE", arg)
		}
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: file id: %w", arg, err)
		}
		size, err := resource.ParseQuantity(sizeText)
		if err != nil {
			return nil, fmt.Errorf("%q: size: %w", arg, err)
		}
		files = append(files, file{id: id, size: size.Value()})
	}
	return files, nil
}

func ensureBucket(ctx context.Context, s3 *minio.Client, bucket string) error {
	exists, err := s3.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("checking bucket %s: %w", bucket, err)
	}
	if exists {
		return nil
	}
	if err := s3.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("creating bucket %s: %w", bucket, err)
	}
	return nil
}

func ensureObject(ctx context.Context, s3 *minio.Client, bucket string, f file) error {
	key := strconv.FormatInt(f.id, 10)
	if info, err := s3.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); err == nil && info.Size == f.size {
		fmt.Printf("seed: %s/%s already has %d bytes\n", bucket, key, f.size)
		return nil
	}
	start := time.Now()
	content := io.LimitReader(newStream(f.id), f.size)
	if _, err := s3.PutObject(ctx, bucket, key, content, f.size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
	}); err != nil {
		return fmt.Errorf("uploading %s/%s: %w", bucket, key, err)
	}
	fmt.Printf("seed: %s/%s: %d bytes in %s\n", bucket, key, f.size, time.Since(start).Round(time.Millisecond))
	return nil
}

// newStream is an endless byte sequence determined by id alone.
func newStream(id int64) io.Reader {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(id))
	return rand.NewChaCha8(seed)
}
