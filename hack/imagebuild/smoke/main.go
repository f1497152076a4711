// Command smoke is a tiny test workload for the local cluster (hack/local-cluster): it prints a
// greeting and, when it runs in a Pod, calls the API server through the `kubernetes` Service
// ClusterIP with the Pod's ServiceAccount token. It exits 0 only if that call succeeds, so a
// Completed Job proves scheduling, the container runtime, kube-proxy's Service routing, the
// ServiceAccount token mount and `kubectl logs` in one go.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	fmt.Println("hello from the download-operator smoke image")
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" {
		fmt.Println("not in a Pod (no KUBERNETES_SERVICE_HOST): done")
		return
	}
	if err := callAPIServer(host, port); err != nil {
		fmt.Fprintln(os.Stderr, "smoke: FAILED:", err)
		os.Exit(1)
	}
}

// callAPIServer GETs /version through the Service, trusting only the cluster CA and sending the
// mounted token, exactly as an in-cluster client (such as the operator) would.
func callAPIServer(host, port string) error {
	ca, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return err
	}
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("no certificate in %s/ca.crt", saDir)
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	url := "https://" + net.JoinHostPort(host, port) + "/version"
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	fmt.Printf("reached the API server through the kubernetes Service at %s: %s\n", url, compact(body))
	return nil
}

func compact(b []byte) string { return strings.Join(strings.Fields(string(b)), " ") }
