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
	"fmt"
	"io"

	"golang.org/x/time/rate"
)

// maxBurst bounds the bytes read ahead of the cap: a burst of a second's worth of a fast cap would
// let a short file through unthrottled.
const maxBurst = 64 << 10

// newLimiter caps reads at bytesPerSecond; nil means unlimited.
func newLimiter(bytesPerSecond int64) *rate.Limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSecond), int(min(bytesPerSecond, maxBurst)))
}

// rateLimitedReader waits for the limiter after each read. Reads are cut to the burst, since
// WaitN fails outright for more than the burst.
type rateLimitedReader struct {
	ctx     context.Context
	r       io.Reader
	limiter *rate.Limiter
}

func (l *rateLimitedReader) Read(p []byte) (int, error) {
	if burst := l.limiter.Burst(); len(p) > burst {
		p = p[:burst]
	}
	n, err := l.r.Read(p)
	if n > 0 {
		if werr := l.limiter.WaitN(l.ctx, n); werr != nil {
			return n, fmt.Errorf("waiting for bandwidth: %w", werr)
		}
	}
	return n, err
}
