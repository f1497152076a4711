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

package facade

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
)

// ClientIDKeyEnv names the environment variable `download-operator facade` reads the client id
// key from; the chart fills it from a Secret generated once per install.
const ClientIDKeyEnv = "CLIENT_ID_KEY"

// MinClientIDKey is the shortest client id key accepted, in bytes: 128 bits, so that nobody can
// recover addresses from labels by hashing the whole IPv4 space under every possible key.
const MinClientIDKey = 16

// Loopback is the loopback network of both IP versions: the trusted proxy of a proxy on the
// same host, such as a sidecar, or of tests that send X-Forwarded-For from 127.0.0.1.
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// ParseTrustedProxies reads --trusted-proxies: comma-separated CIDRs or bare addresses (a
// single host). Empty means none.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if addr, err := netip.ParseAddr(item); err == nil {
			addr = addr.Unmap()
			prefixes = append(prefixes, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither a CIDR nor an address: %w", item, err)
		}
		if p.Addr().Is4In6() {
			// ::ffff:10.0.0.0/104 would never match: peers are compared in their IPv4 form.
			return nil, fmt.Errorf("trusted proxy %q: write IPv4-mapped networks in IPv4 notation", item)
		}
		prefixes = append(prefixes, p.Masked())
	}
	return prefixes, nil
}

// trusted reports whether addr lies in one of the prefixes.
func trusted(addr netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientID names the client for limits and for ClientLabel. See clientAddress.
func (f *Facade) clientID(r *http.Request) string {
	return clientAddress(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), f.cfg.TrustedProxies)
}

// clientAddress is the address of whoever sent a request, as far as the trusted proxies vouch
// for it. Every proxy appends the address of its own peer to X-Forwarded-For, so walking the
// list from the right, each hop a trusted proxy appended is true, and the first hop that is not a
// trusted proxy is the client: everything to its left was written by the client itself. Without
// trusted proxies, or when the peer is not one, the header is ignored and the peer is the client.
// When every hop is a trusted proxy, the leftmost is the client (a request from inside).
//
// A hop that is not an address (garbage, "unknown", an obfuscated name) ends the walk: it can
// only have been written by the client and passed on by a proxy that does not append, so nothing
// at or left of it is vouched for. The client is then the last address a trusted proxy did vouch
// for, the nearest trusted proxy, which puts all such requests in that proxy's bucket instead
// of letting the header choose one.
func clientAddress(remoteAddr string, forwarded []string, proxies []netip.Prefix) string {
	peer, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		// Not a TCP peer (a unix socket, a test recorder): there is nothing to resolve.
		return remoteAddr
	}
	client := peer.Addr().Unmap().WithZone("")
	if len(proxies) == 0 || !trusted(client, proxies) {
		return client.String()
	}
	for i := len(forwarded) - 1; i >= 0; i-- {
		// Several header lines form one list, in order (RFC 9110, section 5.3).
		rest := forwarded[i]
		for rest != "" {
			var hop string
			if comma := strings.LastIndexByte(rest, ','); comma >= 0 {
				rest, hop = rest[:comma], rest[comma+1:]
			} else {
				rest, hop = "", rest
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue // an empty list element, which the list syntax allows
			}
			addr, ok := parseHop(hop)
			if !ok {
				return client.String()
			}
			client = addr
			if !trusted(client, proxies) {
				return client.String()
			}
		}
	}
	return client.String()
}

// parseHop reads one X-Forwarded-For element: an address, or an address with a port as some
// proxies write it ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(hop string) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(hop)
	if err != nil {
		addrPort, err := netip.ParseAddrPort(hop)
		if err != nil {
			return netip.Addr{}, false
		}
		addr = addrPort.Addr()
	}
	return addr.Unmap().WithZone(""), true
}

// ClientLabelValue is the value of ClientLabel for a client: the first 128 bits of
// HMAC-SHA256(key, client) in hex, 32 characters. An address must not be readable from a label
// (it is personal data), and without the per-install key anyone could hash every IPv4 address
// and read it back anyway.
func ClientLabelValue(key []byte, client string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(client))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// ClientLabelValue is the ClientLabel this facade writes for a client id.
func (f *Facade) ClientLabelValue(client string) string {
	return ClientLabelValue(f.cfg.ClientIDKey, client)
}

// processKey is the client id key of a facade configured without one: random, and the same for
// every facade of this process. Replicas in other processes draw other keys, so they disagree on
// every client's label (the active cap and idempotency then hold per replica only), and a
// restart changes every label.
var processKey = sync.OnceValue(func() []byte {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	return key
})
