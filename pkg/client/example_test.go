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
*/package client_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/download-operator/download-operator/pkg/client"
)

// A whole download: ask for two files, wait for the archive and save it, verified.
func Example() {
	ctx := context.Background()
	c, err := client.New("http://localhost:8080")
	if err != nil {
		log.Fatal(err)
	}
	job, err := c.Initiate(ctx, []int64{70000, 70007}, "a-random-key-per-request")
	if err != nil {
		log.Fatal(err) // an *client.APIError for a rejected request
	}
	status, err := c.Wait(ctx, job.JobID, func(s client.Status) {
		fmt.Printf("%s %d%%\n", s.Status, s.Progress)
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := status.Err(); err != nil {
		log.Fatal(err) // the job failed: a *client.JobFailedError with the server's reason
	}
	// Write to a temporary file and keep it only if the checksum matched.
	f, err := os.CreateTemp(".", ".archive-*.part")
	if err != nil {
		log.Fatal(err)
	}
	_, _, err = c.Download(ctx, status, f, nil)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		log.Fatal(err) // a *client.ChecksumError when the bytes are not the prepared archive
	}
	if err := os.Rename(f.Name(), "archive.zip"); err != nil {
		log.Fatal(err)
	}
}
