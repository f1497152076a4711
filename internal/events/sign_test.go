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
	"strings"
	"testing"
	"time"
)

// TestSignatureFollowsTheDocumentedScheme recomputes the signature as the chart README tells
// receivers to: HMAC-SHA256 under the key of "<t>.<body>", hex, in "t=<t>,v1=<hex>".
func TestSignatureFollowsTheDocumentedScheme(t *testing.T) {
	key, body := []byte("0123456789abcdef"), []byte(`{"specversion":"1.0","id":"x"}`)
	at := time.Unix(1767225600, 0)
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%d.%s", at.Unix(), body)
	want := fmt.Sprintf("t=%d,v1=%s", at.Unix(), hex.EncodeToString(m.Sum(nil)))
	if got := Sign(key, body, at); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	key, body := []byte("0123456789abcdef"), []byte(`{"id":"1"}`)
	now := time.Now()
	header := Sign(key, body, now.Add(-time.Minute))
	if err := Verify(key, body, header, now, 5*time.Minute); err != nil {
		t.Fatalf("a fresh signature was refused: %v", err)
	}
	_, v1, _ := strings.Cut(header, ",")
	for name, c := range map[string]struct {
		key    []byte
		body   string
		header string
	}{
		"a changed body":    {key, `{"id":"2"}`, header},
		"another key":       {[]byte("fedcba9876543210"), string(body), header},
		"a replay, too old": {key, string(body), Sign(key, body, now.Add(-10*time.Minute))},
		"from the future":   {key, string(body), Sign(key, body, now.Add(10*time.Minute))},
		"no timestamp":      {key, string(body), v1},
		"garbage":           {key, string(body), "sha256=abc"},
		"a moved timestamp": {key, string(body), fmt.Sprintf("t=%d,%s", now.Unix(), v1)},
	} {
		t.Run(name, func(t *testing.T) {
			err := Verify(c.key, []byte(c.body), c.header, now, 5*time.Minute)
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("Verify = %v, want ErrSignature", err)
			}
		})
	}
	t.Run("any of several v1 values, during a key rotation", func(t *testing.T) {
		ts := now.Unix()
		both := fmt.Sprintf("t=%d,v1=%s,v1=%s", ts,
			hex.EncodeToString(mac([]byte("fedcba9876543210"), fmt.Sprint(ts), body)),
			hex.EncodeToString(mac(key, fmt.Sprint(ts), body)))
		if err := Verify(key, body, both, now, time.Minute); err != nil {
			t.Fatalf("Verify(%q) = %v", both, err)
		}
	})
}
