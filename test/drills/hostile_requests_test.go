//go:build e2e

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

package drills

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"
)

// The hostile requests of drill R5. Every one of them is wrong on purpose: none may create a
// Download, and the facade must answer each with a 4xx (or, for bodies and headers too large to
// read, by closing the connection), never a 5xx.

const (
	initiatePath = "/v1/download/initiate"
	checkPath    = "/v1/download/check"
	statusPath   = "/v1/download/status/"
	eventsPath   = "/v1/download/events/"
	cancelPrefix = "/v1/download/"
)

// hostileRequest is one request of the storm.
type hostileRequest struct {
	// kind names the attack, for the per-kind counts.
	kind string
	// method and target are the request line's; target is sent exactly as written.
	method, target string
	header         http.Header
	body           []byte
	// bodySize, when set, streams that many bytes instead of body, so that 10 MiB requests
	// do not each cost 10 MiB of the test's memory.
	bodySize int64
	// raw, when set, is written to a fresh TCP connection as it is: bytes net/http refuses to
	// send (invalid UTF-8 in the request line, control characters in headers).
	raw []byte
	// mayClose marks requests a server may refuse by closing the connection (huge bodies and
	// headers): for those a reset counts as an answer.
	mayClose bool
}

// hostileMix builds the storm's requests, each kind as often as its weight (per 100). Bodies
// near the 64 KiB limit and fresh connections (raw requests) are rarer: they load the link and
// the test's own share of the two cores more than the facade.
var hostileMix = []struct {
	weight int
	build  func(r *rand.Rand) hostileRequest
}{
	{10, jsonRandomBytes}, {3, jsonDeepNesting}, {10, jsonHugeNumbers}, {10, jsonWrongTypes},
	{8, jsonInvalidUTF8}, {6, wrongContentType}, {8, checkFuzz}, {3, bodyOverLimit}, {10, pathTraversal},
	{4, longJobID}, {14, unknownJobs}, {6, badIdempotencyKey}, {6, oddMethods}, {1, rawInvalidUTF8},
	{1, rawGarbage},
}

// hostileTable lists each kind of hostileMix weight times.
var hostileTable = func() []func(r *rand.Rand) hostileRequest {
	var table []func(r *rand.Rand) hostileRequest
	for _, k := range hostileMix {
		for range k.weight {
			table = append(table, k.build)
		}
	}
	return table
}()

// hostileAt picks the kind of request i. The 10 MiB bodies, 1 MiB headers and floods of 1000
// headers come at fixed intervals, so every run sends the same number of each.
func hostileAt(i int, r *rand.Rand) hostileRequest {
	switch {
	case i%5000 == 0:
		return hugeBody()
	case i%5000 == 1:
		return hugeHeader()
	case i%100 == 2:
		return headerFlood()
	}
	return hostileTable[r.IntN(len(hostileTable))](r)
}

func jsonPost(kind, path string, body []byte) hostileRequest {
	return hostileRequest{kind: kind, method: http.MethodPost, target: path,
		header: http.Header{"Content-Type": {"application/json"}}, body: body}
}

func jsonRandomBytes(r *rand.Rand) hostileRequest {
	b := make([]byte, r.IntN(1024))
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	// Half start like the real thing, so the decoder gets past the first byte.
	if r.IntN(2) == 0 {
		b = append([]byte(`{"file_ids":[`), b...)
	}
	return jsonPost("json-random-bytes", initiatePath, b)
}

func jsonDeepNesting(r *rand.Rand) hostileRequest {
	// encoding/json gives up beyond 10000 levels; both sides of that limit are tried.
	depth := 500 + r.IntN(11000)
	open, closing := "[", "]"
	if r.IntN(2) == 0 {
		open, closing = `{"a":`, "}"
	}
	body := `{"file_ids":` + strings.Repeat(open, depth) + "14000" + strings.Repeat(closing, depth) + "}"
	req := jsonPost("json-deep-nesting", initiatePath, []byte(body))
	// Past the facade's 64 KiB limit the answer is 413, possibly before the body is sent.
	req.mayClose = len(body) > 64<<10
	return req
}

func jsonHugeNumbers(r *rand.Rand) hostileRequest {
	bodies := []string{
		`{"file_ids":[1e999]}`,
		`{"file_ids":[14000,` + strings.Repeat("9", 400) + `]}`,
		`{"file_ids":[99999999999999999999]}`,
		`{"file_ids":[-9223372036854775808]}`,
		`{"file_ids":[14000.5]}`,
		`{"file_ids":[14000,1e308]}`,
		`{"file_ids":[9]}`,
		`{"file_ids":[100000001]}`,
		`{"file_ids":[14000,14000]}`,
		`{"file_ids":[` + strings.TrimSuffix(strings.Repeat("14000,", 1001), ",") + `]}`,
	}
	return jsonPost("json-huge-numbers", initiatePath, []byte(bodies[r.IntN(len(bodies))]))
}

func jsonWrongTypes(r *rand.Rand) hostileRequest {
	bodies := []string{
		`{"file_ids":"14000"}`, `{"file_ids":{"0":14000}}`, `{"file_ids":[true]}`, `{"file_ids":null}`,
		`{"file_ids":[14000,"70000"]}`, `{"file_ids":[14000],"admin":true}`, `[14000]`, `"14000"`, `14000`,
		`null`, `{}`, `{"file_ids":[]}`, `{"file_ids":[14000]}{"file_ids":[14000]}`, `{"file_ids":[14000]`,
		`{"FILE_IDS":[[14000]]}`, `{"file_ids":[null]}`, `{"file_ids":[{}]}`, "\ufeff{\"file_ids\":[5]}",
	}
	return jsonPost("json-wrong-types", initiatePath, []byte(bodies[r.IntN(len(bodies))]))
}

func jsonInvalidUTF8(r *rand.Rand) hostileRequest {
	bodies := []string{
		"{\"file_ids\":[14000],\"\xff\xfe\":1}", "{\"file_ids\":[\"\xc3\x28\"]}", "{\"\xed\xa0\x80\":[14000]}",
		"{\"file_ids\":[14000],\"x\":\"\xf8\x88\x80\x80\x80\"}", "\xff\xfe{\x00\"\x00",
	}
	return jsonPost("json-invalid-utf8", initiatePath, []byte(bodies[r.IntN(len(bodies))]))
}

func wrongContentType(r *rand.Rand) hostileRequest {
	types := []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
		"application/json; charset=\xff", "", "application/jsonx", "application/json;;;"}
	req := jsonPost("wrong-content-type", initiatePath, []byte(`{"file_ids":[5]}`))
	req.header.Set("Content-Type", types[r.IntN(len(types))])
	return req
}

func checkFuzz(r *rand.Rand) hostileRequest {
	bodies := []string{`{"file_id":5}`, `{"file_id":"14000"}`, `{"file_id":1e999}`, `{"file_id":[14000]}`,
		`{"file_id":14000,"x":1}`, `{"file_id":-1}`, `{}`, "{\"file_id\":\xff}", `{"file_id":100000001}`}
	return jsonPost("check-fuzz", checkPath, []byte(bodies[r.IntN(len(bodies))]))
}

// bodyOverLimit is just over the facade's 64 KiB body limit: 413.
func bodyOverLimit(r *rand.Rand) hostileRequest {
	req := jsonPost("body-over-64KiB", initiatePath, nil)
	req.bodySize = 64<<10 + 1 + int64(r.IntN(4<<10))
	req.mayClose = true
	return req
}

func hugeBody() hostileRequest {
	req := jsonPost("body-10MiB", initiatePath, nil)
	req.bodySize = 10 << 20
	req.mayClose = true
	return req
}

func pathTraversal(r *rand.Rand) hostileRequest {
	targets := []string{
		statusPath + "../../etc/passwd", statusPath + "%2e%2e%2f%2e%2e%2fetc%2fpasswd", statusPath + "..%2f..%2fetc",
		statusPath + "%2E%2E/%2E%2E/etc/passwd", eventsPath + "../../../../etc/shadow", statusPath + "....//....//etc",
		cancelPrefix + "..%2f..%2f" + uuid.NewString(), statusPath + "..\\..\\windows\\win.ini",
		statusPath + "%252e%252e%252fetc", statusPath + "%00", statusPath + "%c0%ae%c0%ae/%c0%ae%c0%ae/etc",
		"/v1/download/status/./" + uuid.NewString(), "/v1/./download/status/" + uuid.NewString(),
		"/v1/download/status/" + uuid.NewString() + "/../../../metrics", "/%00", "/%ff", "/..%c0%af..%c0%afetc",
	}
	method := http.MethodGet
	if r.IntN(4) == 0 {
		method = http.MethodDelete
	}
	return hostileRequest{kind: "path-traversal", method: method, target: targets[r.IntN(len(targets))]}
}

func longJobID(r *rand.Rand) hostileRequest {
	sizes := []int{37, 256, 4 << 10, 30 << 10, 100 << 10}
	return hostileRequest{kind: "long-job-id", method: http.MethodGet, mayClose: true,
		target: statusPath + strings.Repeat("a", sizes[r.IntN(len(sizes))])}
}

// unknownJobs are well-formed but name no job: 404, and DELETE must not touch anything.
func unknownJobs(r *rand.Rand) hostileRequest {
	id := uuid.NewString()
	if r.IntN(2) == 0 {
		id = strings.ToUpper(id)
	}
	switch r.IntN(4) {
	case 0:
		return hostileRequest{kind: "unknown-job", method: http.MethodDelete, target: cancelPrefix + id}
	case 1:
		return hostileRequest{kind: "unknown-job", method: http.MethodGet, target: eventsPath + id,
			header: http.Header{"Accept": {"text/event-stream"}, "Last-Event-ID": {strings.Repeat("9", 200)}}}
	default:
		return hostileRequest{kind: "unknown-job", method: http.MethodGet, target: statusPath + id}
	}
}

// floodHeaders are 1000 distinct headers, built once: requests only read them.
var floodHeaders = func() http.Header {
	h := http.Header{}
	for i := range 1000 {
		h.Set(fmt.Sprintf("X-Flood-%d", i), strconv.Itoa(i*7919))
	}
	return h
}()

func headerFlood() hostileRequest {
	return hostileRequest{kind: "header-flood-1000", method: http.MethodGet, target: statusPath + uuid.NewString(),
		header: floodHeaders, mayClose: true}
}

func hugeHeader() hostileRequest {
	return hostileRequest{kind: "header-1MiB", method: http.MethodGet, target: statusPath + uuid.NewString(),
		header: http.Header{"X-Huge": {strings.Repeat("h", 1<<20)}}, mayClose: true}
}

func badIdempotencyKey(r *rand.Rand) hostileRequest {
	keys := []string{"\xff\xfe\xfd", strings.Repeat("k", 10<<10), "a\tb", "é"}
	req := jsonPost("bad-idempotency-key", initiatePath, []byte(`{"file_ids":[5]}`))
	req.header.Set("Idempotency-Key", keys[r.IntN(len(keys))])
	req.header.Add("X-Request-ID", "\xff"+strings.Repeat("r", r.IntN(300)))
	req.header.Set("X-Forwarded-For", "1.2.3.4, \xff")
	return req
}

func oddMethods(r *rand.Rand) hostileRequest {
	methods := []string{"PUT", "PATCH", "TRACE", "PROPFIND", "OPTIONS", "POST", "DELETE", "HEAD", "FOO"}
	targets := []string{initiatePath, statusPath + uuid.NewString(), "/metrics", "/readyz", "/openapi.json",
		"/v1/", "/", "/v1/download/", "/.env", "/admin"}
	method := methods[r.IntN(len(methods))]
	// A DELETE or POST that could match a real route keeps to paths that name nothing.
	return hostileRequest{kind: "odd-methods", method: method, target: targets[r.IntN(len(targets))]}
}

func rawInvalidUTF8(r *rand.Rand) hostileRequest {
	targets := []string{statusPath + "\xff\xfe\xfd", statusPath + "\xc0\xaf", cancelPrefix + "\xed\xa0\x80",
		"/\xff", eventsPath + "\x80"}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: facade\r\nX-Bad: \x01\x02\r\nConnection: close\r\n\r\n",
		targets[r.IntN(len(targets))])
	return hostileRequest{kind: "raw-invalid-utf8", raw: []byte(req)}
}

func rawGarbage(r *rand.Rand) hostileRequest {
	lines := []string{
		"\x00\x01\x02\x03\r\n\r\n",
		"GET\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: facade\r\nContent-Length: -1\r\n\r\n",
		"POST " + initiatePath + " HTTP/1.1\r\nHost: facade\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
		"GET /readyz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET /readyz HTTP/1.1\r\n Host: folded\r\n\r\n",
		"GET /readyz HTTP/1.1\r\nHost: facade\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
		"POST " + initiatePath + " HTTP/1.1\r\nHost: facade\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
	}
	b := []byte(lines[r.IntN(len(lines))])
	if r.IntN(3) == 0 {
		b = make([]byte, 1+r.IntN(512))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		b = append(b, "\r\n\r\n"...)
	}
	return hostileRequest{kind: "raw-garbage", raw: b}
}

// outcome is what a hostile request got: the status code, or "closed" when the server ended
// the connection instead, or "error: ..." for anything else.
type outcome string

// sendHostile sends req to base (http://host:port) with c, or over a raw connection.
func sendHostile(ctx context.Context, c *http.Client, base string, req hostileRequest) outcome {
	if req.raw != nil {
		return sendRaw(ctx, strings.TrimPrefix(base, "http://"), req.raw)
	}
	u, err := url.Parse(base)
	if err != nil {
		return outcome("error: " + err.Error())
	}
	var body io.Reader
	switch {
	case req.bodySize > 0:
		body = io.LimitReader(repeatingReader('7'), req.bodySize)
	case req.body != nil:
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, base, body)
	if err != nil {
		return outcome("error: building request: " + err.Error())
	}
	// Opaque keeps the target exactly as written: no cleaning, no re-escaping.
	hr.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: req.target}
	if req.bodySize > 0 {
		hr.ContentLength = req.bodySize
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	resp, err := c.Do(hr)
	if err != nil {
		if req.mayClose && connectionEnded(err) {
			return "closed"
		}
		return outcome("error: " + err.Error())
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return outcome(strconv.Itoa(resp.StatusCode))
}

// sendRaw writes raw to a new connection to addr and reads one response. A connection the
// server closes without answering counts as "closed": that is how a server refuses garbage
// it cannot even parse as a request.
func sendRaw(ctx context.Context, addr string, raw []byte) outcome {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return outcome("error: " + err.Error())
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		return "closed"
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		if connectionEnded(err) {
			return "closed"
		}
		return outcome("error: " + err.Error())
	}
	_ = resp.Body.Close()
	return outcome(strconv.Itoa(resp.StatusCode))
}

// connectionEnded tells a connection the peer closed or reset from other failures (a timeout
// is not an answer). net.ErrClosed shows up when the server answered (413) and closed while
// the client was still writing a huge body: the transport closes its side, and the write
// in flight fails with "use of closed network connection".
func connectionEnded(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	msg := err.Error()
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe") ||
		strings.Contains(msg, "server closed") || strings.Contains(msg, "EOF")
}

type repeatingReader byte

func (r repeatingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// stormStats counts outcomes by kind.
type stormStats struct {
	mu     sync.Mutex
	byKind map[string]map[outcome]int
	sent   atomic.Int64
}

func (s *stormStats) add(kind string, o outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKind == nil {
		s.byKind = map[string]map[outcome]int{}
	}
	if s.byKind[kind] == nil {
		s.byKind[kind] = map[outcome]int{}
	}
	s.byKind[kind][o]++
}

// totals sums the outcomes over all kinds, all transport errors as one "unanswered".
func (s *stormStats) totals() map[outcome]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[outcome]int{}
	for _, byOutcome := range s.byKind {
		for o, n := range byOutcome {
			if strings.HasPrefix(string(o), "error: ") {
				o = "unanswered"
			}
			out[o] += n
		}
	}
	return out
}

// serverErrors lists, per kind, the 5xx answers.
func (s *stormStats) serverErrors() []string {
	return s.matching(func(o outcome) bool {
		code, err := strconv.Atoi(string(o))
		return err == nil && code >= 500
	})
}

// transportErrors lists, per kind, the requests that got no answer at all, except a closed
// connection where the request allows it (mayClose).
func (s *stormStats) transportErrors() []string {
	return s.matching(func(o outcome) bool {
		_, err := strconv.Atoi(string(o))
		return err != nil && o != "closed"
	})
}

// transportErrorCount is how many requests transportErrors describes.
func (s *stormStats) transportErrorCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, byOutcome := range s.byKind {
		for o, count := range byOutcome {
			if _, err := strconv.Atoi(string(o)); err != nil && o != "closed" {
				n += count
			}
		}
	}
	return n
}

// unexpected lists the outcomes of kind other than allowed (429 is always allowed: the rate
// limiter may answer before the request is read).
func (s *stormStats) unexpected(kind string, allowed ...outcome) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for o, n := range s.byKind[kind] {
		if o != "429" && !slices.Contains(allowed, o) {
			out = append(out, fmt.Sprintf("%s: %d x %s", kind, n, o))
		}
	}
	return out
}

func (s *stormStats) matching(bad func(outcome) bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for kind, byOutcome := range s.byKind {
		for o, n := range byOutcome {
			if bad(o) {
				out = append(out, fmt.Sprintf("%s: %d x %s", kind, n, o))
			}
		}
	}
	sort.Strings(out)
	return out
}

// runStorm sends total hostile requests to base at no more than perSecond, from concurrency
// goroutines, and counts the outcomes.
func runStorm(ctx context.Context, base string, total, concurrency int, perSecond float64) *stormStats {
	stats := &stormStats{}
	transport := &http.Transport{MaxIdleConnsPerHost: concurrency, DisableCompression: true,
		ResponseHeaderTimeout: 20 * time.Second}
	c := &http.Client{Transport: transport, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer transport.CloseIdleConnections()
	limiter := rate.NewLimiter(rate.Limit(perSecond), concurrency)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for limiter.Wait(ctx) == nil {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				req := hostileAt(i, r)
				o := sendHostile(ctx, c, base, req)
				if ctx.Err() != nil {
					return
				}
				stats.sent.Add(1)
				stats.add(req.kind, o)
			}
		})
	}
	wg.Wait()
	return stats
}

// slowOutcome is how one slowloris connection ended.
type slowOutcome struct {
	kind   string
	after  time.Duration
	answer string
}

// slowloris opens a connection to addr and feeds it one byte a second: the request line and
// headers when slowBody is false, else complete headers and then the body. It returns when the
// server answered or closed the connection, or after limit.
func slowloris(ctx context.Context, addr string, slowBody bool, limit time.Duration) slowOutcome {
	kind := "slow-headers"
	if slowBody {
		kind = "slow-body"
	}
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return slowOutcome{kind: kind, answer: "dial: " + err.Error()}
	}
	defer func() { _ = conn.Close() }()
	start := time.Now()
	ended := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(conn).ReadString('\n')
		switch {
		case line != "":
			ended <- strings.TrimSpace(line)
		default:
			ended <- "closed (" + err.Error() + ")"
		}
	}()
	var head, trickle string
	if slowBody {
		head = "POST " + initiatePath + " HTTP/1.1\r\nHost: facade\r\nContent-Type: application/json\r\n" +
			"Content-Length: 100000\r\n\r\n"
		trickle = `{"file_ids":[` + strings.Repeat("1", 100000)
	} else {
		trickle = "GET " + statusPath + uuid.NewString() + " HTTP/1.1\r\nHost: facade\r\n" + strings.Repeat("X-Slow: 1\r\n", 100)
	}
	if _, err := conn.Write([]byte(head)); err != nil {
		return slowOutcome{kind: kind, after: time.Since(start), answer: "closed on write"}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case answer := <-ended:
			return slowOutcome{kind: kind, after: time.Since(start), answer: answer}
		case <-ctx.Done():
			return slowOutcome{kind: kind, after: time.Since(start), answer: "cancelled"}
		case <-tick.C:
			if time.Since(start) > limit {
				return slowOutcome{kind: kind, after: time.Since(start), answer: "still open"}
			}
			// A failed write means the server is gone; the reader reports how.
			_, _ = conn.Write([]byte{trickle[i%len(trickle)]})
		}
	}
}
