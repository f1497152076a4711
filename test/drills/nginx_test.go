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
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/download-operator/download-operator/test/cluster"
)

// nginxSnippetPath is the nginx configuration the project ships for its facade, relative to the
// repository root. The proxy drill runs nginx with exactly this file, so the file is what is
// proven, not a copy of it.
const nginxSnippetPath = "docs/nginx/download-operator.conf"

// nginxAccessFormat makes the access log say how long each request took and what the
// upstream answered, which is the drill's evidence that nginx held a stream past its timeout.
const nginxAccessFormat = `'$request_method $uri $status $request_time upstream=$upstream_status'`

// nginxProxy is a real nginx run by the test as its own child process, with its own prefix
// directory, configuration, logs and port: no system service is started or touched.
type nginxProxy struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan error
}

// URL is the proxy's base URL.
func (n *nginxProxy) URL() string { return "http://127.0.0.1:" + strconv.Itoa(n.port) }

// accessLog returns the access log written so far (nginxAccessFormat, one request per line).
func (n *nginxProxy) accessLog() (string, error) {
	b, err := os.ReadFile(filepath.Join(n.dir, "access.log"))
	if err != nil {
		return "", fmt.Errorf("reading the nginx access log: %w", err)
	}
	return string(b), nil
}

// errorLog returns nginx's error log so far.
func (n *nginxProxy) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b)
}

// nginxBinary finds nginx, installing the distribution's package when it is missing. A machine
// without apt (or without network) gets an error that says what to install by hand.
func nginxBinary(ctx context.Context) (string, error) {
	if path, err := lookNginx(); err == nil {
		return path, nil
	}
	GinkgoWriter.Println("nginx is missing; installing it with apt-get (no service is started)")
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "nginx")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("the proxy drill needs nginx, and `apt-get install -y --no-install-recommends nginx` "+
			"failed (install nginx by hand and rerun): %w\n%s", err, lastLines(string(out), 20))
	}
	return lookNginx()
}

// lookNginx finds nginx on PATH or in /usr/sbin, where Debian puts it (not on every PATH).
func lookNginx() (string, error) {
	if path, err := exec.LookPath("nginx"); err == nil {
		return path, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
		return "", fmt.Errorf("nginx not found: %w", err)
	}
	return "/usr/sbin/nginx", nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var (
	// snippetUpstream is the facade upstream's server line; the drill points it at FACADE_URL.
	snippetUpstream = regexp.MustCompile(`(upstream\s+download_operator_facade\s*\{[^}]*?\bserver\s+)[^;\s]+`)
	snippetListen   = regexp.MustCompile(`(?m)^(\s*listen\s+)[^;]+;`)
	// snippetRootLocation is the snippet's `location / { ... }` block (it nests no braces).
	snippetRootLocation = regexp.MustCompile(`(?s)location\s+/\s*\{[^}]*\}`)
)

// nginxConfig wraps the shipped snippet into a whole nginx.conf for a proxy in dir on
// listenPort, in front of facade (host:port). extraLocations are added to the snippet's server
// block, each "PATH=host:port" proxied exactly as the snippet proxies `location /`: same
// headers, same proxy_read_timeout. Everything that is not the snippet only places files.
func nginxConfig(snippet, dir string, listenPort int, facade string, extraLocations map[string]string) (string, error) {
	if n := len(snippetUpstream.FindAllString(snippet, -1)); n != 1 {
		return "", fmt.Errorf("%s: want one server line in upstream download_operator_facade, found %d", nginxSnippetPath, n)
	}
	if n := len(snippetListen.FindAllString(snippet, -1)); n != 1 {
		return "", fmt.Errorf("%s: want one listen directive, found %d", nginxSnippetPath, n)
	}
	root := snippetRootLocation.FindString(snippet)
	if root == "" {
		return "", fmt.Errorf("%s has no `location / { ... }` block to model extra locations on", nginxSnippetPath)
	}
	conf := snippetUpstream.ReplaceAllString(snippet, "${1}"+facade)
	conf = snippetListen.ReplaceAllString(conf, "${1}127.0.0.1:"+strconv.Itoa(listenPort)+";")

	var upstreams, locations strings.Builder
	i := 0
	for path, backend := range extraLocations {
		name := fmt.Sprintf("drill_backend_%d", i)
		i++
		fmt.Fprintf(&upstreams, "upstream %s {\n    server %s;\n}\n", name, backend)
		loc := strings.Replace(root, "location /", "location "+path, 1)
		loc = strings.ReplaceAll(loc, "http://download_operator_facade", "http://"+name)
		locations.WriteString("\n    " + loc + "\n")
	}
	// Insert the extra locations right after the snippet's own `location /` block.
	at := snippetRootLocation.FindStringIndex(conf)
	conf = conf[:at[1]] + locations.String() + conf[at[1]:]

	tmp := filepath.Join(dir, "tmp")
	return fmt.Sprintf(`# Generated by the e2e proxy drill around %[1]s.
worker_processes 1;
error_log %[2]s/error.log info;
events {
    worker_connections 512;
}
http {
    log_format drill %[3]s;
    access_log %[2]s/access.log drill;
    client_body_temp_path %[4]s/client_body;
    proxy_temp_path %[4]s/proxy;
    fastcgi_temp_path %[4]s/fastcgi;
    uwsgi_temp_path %[4]s/uwsgi;
    scgi_temp_path %[4]s/scgi;

%[5]s
# ---- %[1]s ----
%[6]s
}
`, nginxSnippetPath, dir, nginxAccessFormat, tmp, upstreams.String(), conf), nil
}

// startNginx runs nginx in front of FACADE_URL, configured from the shipped snippet plus
// extraLocations (see nginxConfig), and registers its stop as cleanup.
func startNginx(ctx context.Context, extraLocations map[string]string) (*nginxProxy, error) {
	bin, err := nginxBinary(ctx)
	if err != nil {
		return nil, err
	}
	snippet, err := os.ReadFile(filepath.Join(cluster.RepoRoot, nginxSnippetPath))
	if err != nil {
		return nil, fmt.Errorf("reading the shipped nginx snippet: %w", err)
	}
	dir, err := os.MkdirTemp("", "e2e-nginx-*")
	if err != nil {
		return nil, fmt.Errorf("creating the nginx prefix directory: %w", err)
	}
	// nginx's worker processes drop root; they must still reach the temp directories, whose
	// last level nginx creates itself.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("opening up %s for nginx workers: %w", dir, err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("creating nginx's temp directory: %w", err)
	}
	port, err := freeLocalPort()
	if err != nil {
		return nil, err
	}
	facade := strings.TrimPrefix(strings.TrimPrefix(cluster.Env.FacadeURL, "http://"), "https://")
	conf, err := nginxConfig(string(snippet), dir, port, strings.TrimRight(facade, "/"), extraLocations)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", confPath, err)
	}
	args := []string{"-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"),
		"-g", "daemon off; pid " + filepath.Join(dir, "nginx.pid") + ";"}
	if out, err := exec.CommandContext(ctx, bin, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nginx -t rejected %s, built from %s: %w\n%s", confPath, nginxSnippetPath, err, out)
	}

	n := &nginxProxy{dir: dir, port: port, done: make(chan error, 1)}
	// Not bound to the spec's context: the cleanup stops it gracefully, in order.
	n.cmd = exec.Command(bin, args...)
	var stderr bytes.Buffer
	n.cmd.Stdout, n.cmd.Stderr = GinkgoWriter, &stderr
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting nginx: %w", err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	DeferCleanup(n.stop)
	GinkgoWriter.Printf("nginx (pid %d) listens on %s, prefix %s\n", n.cmd.Process.Pid, n.URL(), dir)

	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			_ = conn.Close()
			return n, nil
		}
		select {
		case err := <-n.done:
			return nil, fmt.Errorf("nginx exited at start (%v): %s\n%s", err, stderr.String(), n.errorLog())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("nginx does not accept connections on port %d after 10 s:\n%s", port, n.errorLog())
		}
	}
}

// stop ends nginx gracefully (SIGQUIT lets workers finish), and kills it after 10 s.
func (n *nginxProxy) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	GinkgoWriter.Printf("nginx stopped; its logs stay in %s\n", n.dir)
}

// errNoLogLine says the access log lacks an expected request.
var errNoLogLine = errors.New("no such request in the nginx access log")

// nginxLogEntry is one line of the drill's access log.
type nginxLogEntry struct {
	Method, URI string
	Status      int
	Duration    time.Duration
	Upstream    string
}

// findAccess returns the first access log entry for a URI with prefix.
func (n *nginxProxy) findAccess(prefix string) (nginxLogEntry, error) {
	log, err := n.accessLog()
	if err != nil {
		return nginxLogEntry{}, err
	}
	for _, line := range strings.Split(log, "\n") {
		f := strings.Fields(line)
		if len(f) != 5 || !strings.HasPrefix(f[1], prefix) {
			continue
		}
		status, err := strconv.Atoi(f[2])
		if err != nil {
			return nginxLogEntry{}, fmt.Errorf("access log line %q: %w", line, err)
		}
		seconds, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			return nginxLogEntry{}, fmt.Errorf("access log line %q: %w", line, err)
		}
		return nginxLogEntry{Method: f[0], URI: f[1], Status: status,
			Duration: time.Duration(seconds * float64(time.Second)), Upstream: strings.TrimPrefix(f[4], "upstream=")}, nil
	}
	return nginxLogEntry{}, fmt.Errorf("%w: %s*\n%s", errNoLogLine, prefix, log)
}
