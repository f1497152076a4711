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

package localproc_test

import (
	"strings"
	"testing"
	"time"

	"github.com/download-operator/download-operator/test/localproc"
)

func TestFreeAddrsAreDistinctLoopbackPorts(t *testing.T) {
	addrs, err := localproc.FreeAddrs(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") || seen[a] {
			t.Errorf("address %q: want distinct 127.0.0.1 ports, got %q", a, addrs)
		}
		seen[a] = true
	}
}

// A process that exits on SIGTERM, as the operator's roles do, stops cleanly; one that had
// already exited, or that ignores SIGTERM, is reported.
func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		// exitsAlone: the process ends before Stop is called.
		exitsAlone bool
		wantErr    string
	}{
		{"exits on SIGTERM", `trap 'exit 0' TERM; echo trapped; while :; do sleep 0.05; done`, false, ""},
		{"exited before", `exit 3`, true, "had exited before it was stopped: exit status 3"},
		{"ignores SIGTERM", `trap '' TERM; echo trapped; while :; do sleep 0.05; done`, false, "ignored SIGTERM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trapped := make(signalWriter, 1)
			p, err := localproc.Start(tc.name, "/bin/sh", []string{"-c", tc.script}, nil, trapped)
			if err != nil {
				t.Fatal(err)
			}
			if tc.exitsAlone {
				<-p.Done()
			} else {
				<-trapped // SIGTERM before the trap would end the shell whatever the case
			}
			err = p.Stop(time.Second)
			if tc.wantErr == "" && err != nil {
				t.Errorf("Stop: %v, want nil", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Stop: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// signalWriter signals each write of the process's output.
type signalWriter chan struct{}

func (w signalWriter) Write(p []byte) (int, error) {
	select {
	case w <- struct{}{}:
	default:
	}
	return len(p), nil
}

// WaitReady gives up as soon as the process dies: the error says so, where waiting out the
// timeout would report a deadline.
func TestWaitReadyReportsAnEarlyExit(t *testing.T) {
	addr, err := localproc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p, err := localproc.Start("short-lived", "/bin/sh", []string{"-c", "exit 1"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(t.Context(), "http://"+addr+"/readyz", time.Minute)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("WaitReady: %v, want an early-exit error", err)
	}
}
