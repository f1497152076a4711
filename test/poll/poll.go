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

// Package poll waits for what another goroutine or process does: in plain tests (Until), and
// for a server process to answer (HTTPReady).
package poll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// interval is short: the conditions are cheap, and the effects waited for mostly come in
// milliseconds.
const interval = 5 * time.Millisecond

// Until polls cond until it holds, and fails the test once within has passed. what names what
// is awaited in the failure; a fmt.Stringer is asked only then, so it can describe the state at
// the time of failure.
func Until(tb testing.TB, within time.Duration, what any, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %v", within, what)
		}
		time.Sleep(interval)
	}
}

// HTTPReady polls url every interval until it answers 200 OK. name is what serves url, for the
// errors. exited is closed when the process that is to serve url ends, which ends the wait at
// once; exitErr then says how it ended (nil for a clean exit).
func HTTPReady(ctx context.Context, name, url string, interval time.Duration, exited <-chan struct{}, exitErr func() error) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("probing %s: %w", name, err)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			err := exitErr()
			if err == nil {
				err = errors.New("exit status 0")
			}
			return fmt.Errorf("%s exited before it was ready: %w", name, err)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w", name, url, ctx.Err())
		case <-time.After(interval):
		}
	}
}
