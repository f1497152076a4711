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

package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/download-operator/download-operator/pkg/client"
)

var errInterrupted = errors.New("interrupted")

// interruptible runs fn with a context that the first SIGINT cancels, and reports whether one
// did. It returns only after it stopped listening, so a later phase gets the next Ctrl-C.
func (g *getCmd) interruptible(ctx context.Context, fn func(context.Context)) bool {
	ctx, cancel := context.WithCancelCause(ctx)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		select {
		case <-g.interrupts:
			cancel(errInterrupted)
		case <-ctx.Done():
		}
	}()
	fn(ctx)
	cancel(nil)
	<-watching
	return errors.Is(context.Cause(ctx), errInterrupted)
}

// cancelAfterInterrupt decides what happens to the server job after Ctrl-C while waiting.
// On a terminal the user is asked, defaulting to keeping it: the job may be nearly done, and
// it can be picked up again with the same idempotency key. Without a terminal (a script, CI)
// nobody is left to pick it up, so it is cancelled rather than left to use the cluster.
func (g *getCmd) cancelAfterInterrupt(ctx context.Context, c *client.Client, jobID, key string) {
	if g.canPrompt && !g.confirmCancel() {
		_, _ = fmt.Fprintf(g.stdout, "job %s goes on on the server; %s\n", jobID, resumeHint(key))
		return
	}
	if !g.canPrompt {
		g.errorf("interrupted: cancelling job %s on the server", jobID)
	}
	// The command's own context may be the one that ended; the cancel must still go out.
	ctx, stop := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer stop()
	if err := c.Cancel(ctx, jobID); err != nil {
		g.errorf("%v", err)
		return
	}
	_, _ = fmt.Fprintf(g.stdout, "cancelled job %s on the server\n", jobID)
}

// confirmCancel asks on the terminal. A second Ctrl-C or the end of input count as no.
func (g *getCmd) confirmCancel() bool {
	_, _ = fmt.Fprint(g.stdout, "\ncancel the download on the server? [y/N] ")
	answers := make(chan string, 1)
	go func() {
		// Left blocked on the terminal if a second Ctrl-C comes first; the process ends anyway.
		line, _ := bufio.NewReader(g.stdin).ReadString('\n')
		answers <- line
	}()
	select {
	case line := <-answers:
		answer := strings.ToLower(strings.TrimSpace(line))
		return answer == "y" || answer == "yes"
	case <-g.interrupts:
		_, _ = fmt.Fprintln(g.stdout)
		return false
	}
}

func resumeHint(key string) string {
	return fmt.Sprintf("run the same command with --idempotency-key %s to pick it up", key)
}
