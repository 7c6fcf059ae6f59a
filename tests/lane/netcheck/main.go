// netcheck runs in a pod of the lane's networking test and reports what a workload sees of the
// cluster network: the cluster DNS name of the API resolved through the pod's resolv.conf (the
// kubelet points it at CoreDNS), and the API reached at that name's Service IP with the pod's
// service account. Given the pod IPs of DNS servers (CoreDNS pods, on this node or another),
// it also asks each of them directly, pod to pod over the pod network. It retries until all
// of that works or its time is up, then prints one line per finding and exits 0 only if all held.
//
// Usage: netcheck [NAME [DNS_POD_IP...]]   (NAME defaults to kubernetes.default)
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const sa = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	name := "kubernetes.default"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	var servers []string
	if len(os.Args) > 2 {
		servers = os.Args[2:]
	}
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if last = check(name, servers); last == nil {
			return
		}
		fmt.Println("retry:", last)
		time.Sleep(2 * time.Second)
	}
	fmt.Println("FAILED:", last)
	os.Exit(1)
}

// resolve looks name up through the pod's resolv.conf, or at server (an IP) if not empty.
func resolve(ctx context.Context, name, server string) ([]string, error) {
	r := &net.Resolver{PreferGo: true}
	if server != "" {
		r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort(server, "53"))
		}
	}
	return r.LookupHost(ctx, name)
}

func check(name string, servers []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	want := os.Getenv("KUBERNETES_SERVICE_HOST")
	var found []string
	for _, server := range append([]string{""}, servers...) {
		addrs, err := resolve(ctx, name, server)
		via := "the pod's resolv.conf"
		if server != "" {
			via = "the DNS pod " + server
		}
		if err != nil {
			return fmt.Errorf("resolve %s through %s: %w", name, via, err)
		}
		if len(addrs) != 1 || addrs[0] != want {
			return fmt.Errorf("%s resolved through %s to %v, the kubernetes Service's IP is %q", name, via, addrs, want)
		}
		found = append(found, fmt.Sprintf("%s resolved to %s through %s", name, addrs[0], via))
	}
	addrs := []string{want}
	ca, err := os.ReadFile(sa + "/ca.crt")
	if err != nil {
		return err
	}
	token, err := os.ReadFile(sa + "/token")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("no certificate in %s/ca.crt", sa)
	}
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "kubernetes.default.svc"},
			// Dial the resolved Service IP itself: the request must cross the Service (kube-proxy).
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, net.JoinHostPort(addrs[0], "443"))
			},
		},
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://kubernetes.default.svc/version", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET https://%s:443/version: %w", addrs[0], err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET https://%s:443/version: %s %s", addrs[0], resp.Status, body)
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("GET /version: %w", err)
	}
	host, _ := os.Hostname()
	for _, f := range found {
		fmt.Printf("pod %s: %s\n", host, f)
	}
	fmt.Printf("pod %s: GET https://%s:443/version as its service account: 200, gitVersion %s\n", host, addrs[0], v.GitVersion)
	return nil
}
