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

package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries an event's signature: "t=<unix seconds>,v1=<hex>", where v1 is
// HMAC-SHA256 under the sink's key of "<t>.<body>", the exact request body. The timestamp is
// inside the MAC, so a captured request cannot be replayed later than the receiver's tolerance
// with a fresh timestamp; each delivery attempt is signed anew.
const SignatureHeader = "X-Download-Operator-Signature"

// Sign returns the signature header value of body, signed at t.
func Sign(key, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, body))
}

func mac(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// ErrSignature is what Verify wraps for every signature it refuses.
var ErrSignature = errors.New("invalid event signature")

// Verify checks a signature header against body and key, as a receiver does: the MAC must
// match (compared in constant time) and t must lie within tolerance of now.
func Verify(key, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts string
	var sums [][]byte
	for part := range strings.SplitSeq(header, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch name {
		case "t":
			ts = value
		case "v1":
			// Several v1 values are allowed, so that a sender may sign with an old and a new key
			// while a rotation is under way.
			if sum, err := hex.DecodeString(value); err == nil {
				sums = append(sums, sum)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sums) == 0 {
		return fmt.Errorf("%w: want t=<unix>,v1=<hex>, got %q", ErrSignature, header)
	}
	if age := now.Sub(time.Unix(unix, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed at %d, %s from now, outside the tolerance of %s", ErrSignature, unix, age.Round(time.Second), tolerance)
	}
	want := mac(key, ts, body)
	for _, sum := range sums {
		if hmac.Equal(sum, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 matches the body under this key", ErrSignature)
}
