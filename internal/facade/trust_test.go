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
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	downloadv1alpha1 "github.com/download-operator/download-operator/api/v1alpha1"
	"github.com/download-operator/download-operator/internal/statusdoc"
)

// offlineFacade is a whole Facade whose apiserver does not exist: New contacts nothing, so the
// router, the limits, the listeners and (once synced is set and documents are fed in) polls and
// streams all work without a control plane.
func offlineFacade(t *testing.T, configure func(*Config)) *Facade {
	t.Helper()
	cfg := DefaultConfig("default")
	cfg.ClientIDKey = []byte("0123456789abcdef0123456789abcdef")
	if configure != nil {
		configure(&cfg)
	}
	f, err := New(&rest.Config{Host: "http://127.0.0.1:1"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestClientAddressTrustsOnlyWhatTrustedProxiesAppended(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 2001:db8:1::/48")
	if err != nil {
		t.Fatal(err)
	}
	const proxy = "10.0.0.9:4711"
	for _, tc := range []struct {
		name, peer string
		forwarded  []string
		proxies    []netip.Prefix
		want       string
	}{
		{"no trusted proxies: the header is ignored", proxy, []string{"203.0.113.7"}, nil, "10.0.0.9"},
		{"an untrusted peer: the header is ignored", "198.51.100.2:1", []string{"203.0.113.7"}, proxies, "198.51.100.2"},
		{"a trusted peer without the header", proxy, nil, proxies, "10.0.0.9"},
		{"one hop", proxy, []string{"203.0.113.7"}, proxies, "203.0.113.7"},
		{"a forged first hop is not the client", proxy, []string{"6.6.6.6, 203.0.113.7"}, proxies, "203.0.113.7"},
		{"trusted hops are skipped", proxy, []string{"6.6.6.6, 203.0.113.7, 10.1.2.3"}, proxies, "203.0.113.7"},
		{"every hop trusted: the leftmost", proxy, []string{"10.0.0.1, 10.0.0.2"}, proxies, "10.0.0.1"},
		{"header lines form one list", proxy, []string{"6.6.6.6, 203.0.113.7", "10.1.2.3"}, proxies, "203.0.113.7"},
		{"garbage from a trusted proxy: the nearest trusted address", proxy,
			[]string{"203.0.113.7, unknown, 10.1.2.3"}, proxies, "10.1.2.3"},
		{"garbage right of everything: the peer", proxy, []string{"203.0.113.7, \xff"}, proxies, "10.0.0.9"},
		{"garbage left of the client does not matter", proxy, []string{"\xff, 203.0.113.7"}, proxies, "203.0.113.7"},
		{"empty elements", proxy, []string{" , 203.0.113.7 ,, "}, proxies, "203.0.113.7"},
		{"a hop with a port", proxy, []string{"203.0.113.7:5555"}, proxies, "203.0.113.7"},
		{"IPv6 hops", "[2001:db8:1::5]:80", []string{"2001:db8:2::7, [2001:db8:1::6]:9"}, proxies, "2001:db8:2::7"},
		{"an IPv4-mapped peer is its IPv4 address", "[::ffff:10.0.0.9]:80", []string{"::ffff:203.0.113.7"}, proxies, "203.0.113.7"},
		{"not a TCP peer", "@", []string{"203.0.113.7"}, proxies, "@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientAddress(tc.peer, tc.forwarded, tc.proxies); got != tc.want {
				t.Errorf("clientAddress(%q, %q) = %q, want %q", tc.peer, tc.forwarded, got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.0/8,192.0.2.7 , fd00::/8,10.1.2.3/16")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("10.1.0.0/16")}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, got[i], want[i])
		}
	}
	if none, err := ParseTrustedProxies(""); err != nil || len(none) != 0 {
		t.Errorf("empty: %v, %v", none, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.local", "::ffff:10.0.0.0/104"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestTrustedProxiesFlag(t *testing.T) {
	cfg, _, _, err := parseFlags([]string{"--namespace=default", "--trusted-proxies=10.0.0.0/8,::1"}, io.Discard)
	if err != nil || len(cfg.TrustedProxies) != 2 || cfg.TrustedProxies[1] != netip.MustParsePrefix("::1/128") {
		t.Errorf("--trusted-proxies: %v (%v)", cfg.TrustedProxies, err)
	}
	cfg, addrs, _, err := parseFlags([]string{"--namespace=default"}, io.Discard)
	if err != nil || len(cfg.TrustedProxies) != 0 || addrs.probes != DefaultProbeListen ||
		cfg.MaxConnectionsPerClient != DefaultMaxConnectionsPerClient || cfg.MaxStreamsPerClient != DefaultMaxStreamsPerClient {
		t.Errorf("defaults: proxies %v, probes %q, per client %d connections %d streams (%v)", cfg.TrustedProxies,
			addrs.probes, cfg.MaxConnectionsPerClient, cfg.MaxStreamsPerClient, err)
	}
	for _, args := range [][]string{
		{"--trusted-proxies=10.0.0.0/99"},
		{"--listen=:9000", "--probe-bind-address=:9000"},
		{"--max-connections-per-client=-1"},
		{"--max-streams-per-client=-1"},
	} {
		if _, _, _, err := parseFlags(append([]string{"--namespace=default"}, args...), io.Discard); err == nil {
			t.Errorf("%q was accepted", args)
		}
	}
}

func TestClientIDKeyComesFromTheEnvironment(t *testing.T) {
	t.Setenv(ClientIDKeyEnv, "a-key-of-sixteen-bytes-or-more")
	cfg, _, _, err := parseFlags([]string{"--namespace=default"}, io.Discard)
	if err != nil || string(cfg.ClientIDKey) != "a-key-of-sixteen-bytes-or-more" {
		t.Errorf("key %q (%v)", cfg.ClientIDKey, err)
	}
	t.Setenv(ClientIDKeyEnv, "short")
	if _, _, _, err := parseFlags([]string{"--namespace=default"}, io.Discard); err == nil {
		t.Error("a 5-byte key was accepted")
	}
}

func TestClientLabelIsAKeyedHash(t *testing.T) {
	a := ClientLabelValue([]byte("key-one-0123456789"), "203.0.113.7")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a) {
		t.Fatalf("%q is not 32 hex digits, a valid label value", a)
	}
	if a != ClientLabelValue([]byte("key-one-0123456789"), "203.0.113.7") {
		t.Error("not deterministic")
	}
	if a == ClientLabelValue([]byte("key-two-0123456789"), "203.0.113.7") {
		t.Error("another install's key gives the same label: the key does not matter")
	}
	if a == ClientLabelValue([]byte("key-one-0123456789"), "203.0.113.8") {
		t.Error("two clients share a label")
	}
	// Without a key, one process agrees with itself (tests, single replicas).
	f1, f2 := offlineFacade(t, func(c *Config) { c.ClientIDKey = nil }), offlineFacade(t, func(c *Config) { c.ClientIDKey = nil })
	if f1.ClientLabelValue("x") != f2.ClientLabelValue("x") || len(f1.cfg.ClientIDKey) < MinClientIDKey {
		t.Error("facades without a key must share this process's random key")
	}
}

func TestIdempotentJobIDDependsOnTheClient(t *testing.T) {
	a := IdempotentJobID("default", "client-a", "key-1")
	if a == IdempotentJobID("default", "client-b", "key-1") {
		t.Error("the same key from another client gave the same jobId")
	}
}

// failedDownload is a Download whose Failed condition says what the worker wrote.
func failedDownload(reason, message string, ids ...int64) *downloadv1alpha1.Download {
	return testDownload(func(d *downloadv1alpha1.Download) {
		d.Spec.FileIDs = ids
		d.Status.Phase = downloadv1alpha1.PhaseFailed
		d.Status.Conditions = []metav1.Condition{{Type: downloadv1alpha1.ConditionFailed, Status: metav1.ConditionTrue,
			Reason: reason, Message: message}}
	})
}

// internalText is what a worker's error may hold and a client must never see.
const internalText = `PUT "secret-bucket/archives/default/x.zip": dial tcp minio.internal:9000: bucket/key host:9000 refused`

func TestFailedJobsShowFixedTextsNeverTheConditionMessage(t *testing.T) {
	for _, tc := range []struct {
		reason, message string
		ids             []int64
		wantCode        string
		wantMessage     string
	}{
		{downloadv1alpha1.ReasonStorageError, internalText, []int64{70000}, downloadv1alpha1.ReasonStorageError,
			statusdoc.FailureText(downloadv1alpha1.ReasonStorageError)},
		{downloadv1alpha1.ReasonSourceNotFound,
			`no source object in bucket "files-70001" for file ids 99999 (` + internalText + `)`, []int64{70001, 99999},
			downloadv1alpha1.ReasonSourceNotFound, "file 99999 does not exist"},
		{downloadv1alpha1.ReasonSourceNotFound, "no source object in bucket \"files\" for file ids 3, 1", []int64{1, 2, 3},
			downloadv1alpha1.ReasonSourceNotFound, "files 1 and 3 do not exist"},
		{downloadv1alpha1.ReasonSourceNotFound, internalText, []int64{9000},
			downloadv1alpha1.ReasonSourceNotFound, statusdoc.FailureText(downloadv1alpha1.ReasonSourceNotFound)},
		{downloadv1alpha1.ReasonDeadlineExceeded, internalText, nil, downloadv1alpha1.ReasonDeadlineExceeded,
			statusdoc.FailureText(downloadv1alpha1.ReasonDeadlineExceeded)},
		{"SomethingNew", internalText, nil, downloadv1alpha1.ReasonBackoffLimitExceeded,
			statusdoc.FailureText(downloadv1alpha1.ReasonBackoffLimitExceeded)},
	} {
		f := storeFacade(true)
		d := failedDownload(tc.reason, tc.message, tc.ids...)
		f.downloadChanged(d)
		s := pollStatus(t, f)
		if s.Error == nil || s.Error.Code != tc.wantCode || s.Error.Message != tc.wantMessage {
			t.Errorf("%s %q: error %+v, want %s %q", tc.reason, tc.message, s.Error, tc.wantCode, tc.wantMessage)
		}
		// The SSE event's data is the same document; check its bytes too.
		for _, leak := range []string{"secret-bucket", "host:9000", "minio.internal", "bucket/key"} {
			if body := poll(t, f, testJobID).Body.String(); strings.Contains(body, leak) {
				t.Errorf("the status document reveals %q: %s", leak, body)
			}
			if data := string(f.docs.get(testJobID).data()); strings.Contains(data, leak) {
				t.Errorf("the SSE event reveals %q: %s", leak, data)
			}
		}
	}
	// Every reason of the closed set has its own text.
	for _, reason := range []string{downloadv1alpha1.ReasonSourceNotFound, downloadv1alpha1.ReasonStorageError,
		downloadv1alpha1.ReasonDeadlineExceeded, downloadv1alpha1.ReasonBackoffLimitExceeded,
		downloadv1alpha1.ReasonNamespaceNotServed, downloadv1alpha1.ReasonResultMissing, downloadv1alpha1.ReasonResultRejected,
		downloadv1alpha1.ReasonArchiveTooLarge} {
		if statusdoc.FailureText(reason) == "" {
			t.Errorf("no public text for %s", reason)
		}
	}
}

func TestBodyErrorsDoNotQuoteTheBody(t *testing.T) {
	f := offlineFacade(t, nil)
	for body, want := range map[string]publicMessage{
		`{"file_ids":[1],"<script>":1}`: msgUnknownField,
		`{"file_ids":"<script>"}`:       msgWrongType,
		`{"file_ids":[1],<script>`:      msgNotJSON,
	} {
		req := httptest.NewRequest(http.MethodPost, "/v1/download/initiate", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.Handler().ServeHTTP(rec, req)
		var e ErrorResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != http.StatusBadRequest ||
			e.Error.Message != string(want) || strings.Contains(rec.Body.String(), "script") {
			t.Errorf("%s: %d %s, want 400 %q", body, rec.Code, rec.Body, want)
		}
	}
}

// TestNoAPIPathFallsThroughToTheUI serves the demo page and asks the API what a client might:
// only the JSON error shape may answer under /v1/, with 405 and Allow for a known path.
func TestNoAPIPathFallsThroughToTheUI(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>demo</h1>"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := offlineFacade(t, func(c *Config) { c.UIDir = dir })
	do := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		f.Handler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		// DELETE /v1/download/{jobId} matches these paths too.
		{http.MethodGet, "/v1/download/initiate", http.StatusMethodNotAllowed, CodeMethodNotAllowed, "DELETE, POST"},
		{http.MethodHead, "/v1/download/initiate", http.StatusMethodNotAllowed, CodeMethodNotAllowed, "DELETE, POST"},
		{http.MethodGet, "/v1/download/check", http.StatusMethodNotAllowed, CodeMethodNotAllowed, "DELETE, POST"},
		{http.MethodPost, "/v1/download/status/" + testJobID, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/v1/download/" + testJobID, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "DELETE"},
		{http.MethodGet, "/v1", http.StatusNotFound, CodeNotFound, ""},
		{http.MethodGet, "/v1/", http.StatusNotFound, CodeNotFound, ""},
		{http.MethodGet, "/v1/index.html", http.StatusNotFound, CodeNotFound, ""},
		{http.MethodGet, "/v1/download/status/", http.StatusNotFound, CodeNotFound, ""},
		{http.MethodGet, "/v1/nowhere", http.StatusNotFound, CodeNotFound, ""},
		{http.MethodPost, "/health", http.StatusMethodNotAllowed, CodeMethodNotAllowed, "GET, HEAD"},
	} {
		rec := do(tc.method, tc.path)
		var e ErrorResponse
		decodeErr := json.Unmarshal(rec.Body.Bytes(), &e)
		if tc.method == http.MethodHead {
			decodeErr, e.Error.Code = nil, tc.code // a HEAD answer has no body to check
		}
		if rec.Code != tc.status || decodeErr != nil || e.Error.Code != tc.code || e.Error.Message == "" ||
			rec.Header().Get("Allow") != tc.allow || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d Allow %q %s, want %d %s Allow %q", tc.method, tc.path, rec.Code,
				rec.Header().Get("Allow"), rec.Body, tc.status, tc.code, tc.allow)
		}
	}
	// The demo page is still served where it lives.
	if rec := do(http.MethodGet, "/"); rec.Code != http.StatusOK || rec.Body.String() != "<h1>demo</h1>" {
		t.Errorf("GET /: %d %s", rec.Code, rec.Body)
	}
}

// rawGet sends a GET on a new connection from the local address from and returns the status
// line; the connection stays open until the test ends unless the server closes it.
func rawGet(t *testing.T, from, addr, path string) (string, net.Conn) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: facade\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, from, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusTooManyRequests {
		var e ErrorResponse
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != CodeTooManyConnections {
			t.Errorf("a refused connection's answer is not the JSON error shape: %s", body)
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return resp.Status, conn
}

// serveAPI serves f's API on a loopback listener from f.Listen, with its limits, and returns
// the listener's address.
func serveAPI(t *testing.T, f *Facade) string {
	t.Helper()
	ln, err := f.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := f.NewServer("")
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestOneHostCannotStarveOthers lets one host hold every connection it may have (each kept
// alive after a request, as idle browsers and slow clients do) and, at the same time, probes the
// probe port and serves a second host on the API port.
func TestOneHostCannotStarveOthers(t *testing.T) {
	const perClient = 4
	f := offlineFacade(t, func(c *Config) { c.MaxConnectionsPerClient = perClient; c.MaxConnections = 2 * perClient })
	f.synced.Store(true)
	api := serveAPI(t, f)
	probes, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	probeSrv := f.NewProbeServer("")
	go func() { _ = probeSrv.Serve(probes) }()
	t.Cleanup(func() { _ = probeSrv.Close() })

	for i := range perClient {
		if status, _ := rawGet(t, "127.0.0.1", api, "/openapi.json"); status != "200 OK" {
			t.Fatalf("connection %d of the first host: %s", i+1, status)
		}
	}
	if status, _ := rawGet(t, "127.0.0.1", api, "/openapi.json"); status != "429 Too Many Requests" {
		t.Errorf("a connection over the first host's maximum: %s, want 429", status)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if status, _ := rawGet(t, "127.0.0.1", probes.Addr().String(), path); status != "200 OK" {
			t.Errorf("probe %s while a host holds its maximum: %s", path, status)
		}
	}
	if status, _ := rawGet(t, "127.0.0.2", api, "/openapi.json"); status != "200 OK" {
		t.Errorf("a second host while the first holds its maximum: %s", status)
	}
	families, err := f.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() == "download_facade_refused_total" {
			for _, m := range fam.GetMetric() {
				if m.GetLabel()[0].GetValue() == "connections" && m.GetCounter().GetValue() != 1 {
					t.Errorf("refused connections counted %v, want 1", m.GetCounter().GetValue())
				}
			}
		}
	}
}

func TestClosingAConnectionFreesItsSlot(t *testing.T) {
	f := offlineFacade(t, func(c *Config) { c.MaxConnectionsPerClient = 1 })
	api := serveAPI(t, f)
	_, held := rawGet(t, "127.0.0.1", api, "/openapi.json")
	if status, _ := rawGet(t, "127.0.0.1", api, "/openapi.json"); status != "429 Too Many Requests" {
		t.Fatalf("the second connection: %s, want 429", status)
	}
	_ = held.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, conn := rawGet(t, "127.0.0.1", api, "/openapi.json")
		_ = conn.Close()
		if status == "200 OK" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot was never freed: %s", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTrustedProxiesAreExemptFromTheConnectionCap(t *testing.T) {
	f := offlineFacade(t, func(c *Config) { c.MaxConnectionsPerClient = 1; c.TrustedProxies = Loopback })
	api := serveAPI(t, f)
	for i := range 3 {
		if status, _ := rawGet(t, "127.0.0.1", api, "/openapi.json"); status != "200 OK" {
			t.Fatalf("connection %d of a trusted proxy: %s", i+1, status)
		}
	}
}

// openStream opens the job's event stream as client (X-Forwarded-For behind the loopback
// proxy) and returns the answer; a 200 stream stays open until ctx ends.
func openStream(ctx context.Context, t *testing.T, url, client string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/download/events/"+testJobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", client)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func TestStreamsPerClientAreCapped(t *testing.T) {
	f := offlineFacade(t, func(c *Config) { c.MaxStreamsPerClient = 2; c.TrustedProxies = Loopback })
	f.synced.Store(true)
	f.downloadChanged(testDownload(nil))
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = f.NewServer("")
	srv.Start()
	t.Cleanup(srv.Close)

	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	held := openStream(first, t, srv.URL, "203.0.113.1")
	if held.StatusCode != http.StatusOK {
		t.Fatalf("first stream: %d", held.StatusCode)
	}
	if resp := openStream(context.Background(), t, srv.URL, "203.0.113.1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("second stream: %d", resp.StatusCode)
	}
	over := openStream(context.Background(), t, srv.URL, "203.0.113.1")
	body, _ := io.ReadAll(over.Body)
	var e ErrorResponse
	if over.StatusCode != http.StatusTooManyRequests || json.Unmarshal(body, &e) != nil || e.Error.Code != CodeTooManyStreams ||
		over.Header.Get("Retry-After") == "" {
		t.Errorf("a third stream: %d %s", over.StatusCode, body)
	}
	if resp := openStream(context.Background(), t, srv.URL, "203.0.113.2"); resp.StatusCode != http.StatusOK {
		t.Errorf("another client while the first holds its maximum: %d", resp.StatusCode)
	}
	cancelFirst()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := openStream(context.Background(), t, srv.URL, "203.0.113.1")
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closing a stream did not free its slot: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
