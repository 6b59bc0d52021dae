// A Go client for tests/integration/test_go.py, standard library only (crypto/tls, net/http),
// built at test time with CGO_ENABLED=0.
//
//	tls_client chat -url https://localhost:PORT/v1/chat/completions -ca CA.pem -tag TAG [-h2]
//	    POSTs the JSON body read from stdin (HTTP/1.1, or HTTP/2 with -h2) and prints the
//	    answer's body; the protocol used goes to stderr ("proto HTTP/1.1").
//	tls_client raw -addr 127.0.0.1:PORT -ca CA.pem
//	    Writes stdin to a TLS connection (SNI "localhost") and prints what comes back until
//	    the server closes.
//	tls_client bench -url https://localhost:PORT/PATH -ca CA.pem -size BYTES -n CALLS
//	    For tests/bench/go_probe_cost.py: POSTs a body of BYTES bytes CALLS times over one
//	    keep-alive HTTP/1.1 connection (after -warmup calls, default 20, not timed) and prints
//	    one JSON line: the calls, and the wall and CPU time (user, system: the whole process,
//	    every thread) that the timed loop took, in ns.
//
// Either way every connection goes to 127.0.0.1, with "localhost" as the server name.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

func tlsConfig(caFile string) *tls.Config {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail(fmt.Errorf("no certificate in %s", caFile))
	}
	return &tls.Config{RootCAs: roots, ServerName: "localhost"}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tls_client:", err)
	os.Exit(1)
}

// A transport that dials 127.0.0.1 whatever the URL's host, HTTP/1.1 only unless h2.
func newTransport(caFile string, h2 bool) *http.Transport {
	transport := &http.Transport{
		TLSClientConfig: tlsConfig(caFile),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return (&net.Dialer{}).DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", port))
		},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		// A non-nil empty map turns HTTP/2 off.
		transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return transport
}

func chat(args []string) {
	fs := flag.NewFlagSet("chat", flag.ExitOnError)
	url := fs.String("url", "", "")
	ca := fs.String("ca", "", "")
	tag := fs.String("tag", "", "")
	h2 := fs.Bool("h2", false, "")
	fs.Parse(args)
	body, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	transport := newTransport(*ca, *h2)
	req, err := http.NewRequest("POST", *url, bytes.NewReader(body))
	if err != nil {
		fail(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-test-go-0001")
	req.Header.Set("x-standin-tag", *tag)
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		fail(err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	transport.CloseIdleConnections()
	if err != nil {
		fail(err)
	}
	fmt.Fprintln(os.Stderr, "proto", resp.Proto)
	if resp.StatusCode/100 != 2 {
		fail(fmt.Errorf("status %d: %s", resp.StatusCode, answer))
	}
	os.Stdout.Write(answer)
}

func raw(args []string) {
	fs := flag.NewFlagSet("raw", flag.ExitOnError)
	addr := fs.String("addr", "", "")
	ca := fs.String("ca", "", "")
	fs.Parse(args)
	conn, err := tls.Dial("tcp4", *addr, tlsConfig(*ca))
	if err != nil {
		fail(err)
	}
	go func() {
		if _, err := io.Copy(conn, os.Stdin); err != nil {
			fail(err)
		}
	}()
	if _, err := io.Copy(os.Stdout, conn); err != nil {
		fail(err)
	}
	conn.Close()
}

func bench(args []string) {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	url := fs.String("url", "", "")
	ca := fs.String("ca", "", "")
	size := fs.Int("size", 1024, "")
	calls := fs.Int("n", 1000, "")
	warmup := fs.Int("warmup", 20, "")
	fs.Parse(args)
	client := &http.Client{Transport: newTransport(*ca, false)}
	body := bytes.Repeat([]byte("0123456789abcdef"), *size/16+1)[:*size]
	call := func() {
		req, err := http.NewRequest("POST", *url, bytes.NewReader(body))
		if err != nil {
			fail(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := client.Do(req)
		if err != nil {
			fail(err)
		}
		// Read to the end, so that the connection goes back to the pool for the next call.
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			fail(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			fail(fmt.Errorf("status %d", resp.StatusCode))
		}
	}
	for i := 0; i < *warmup; i++ {
		call()
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	for i := 0; i < *calls; i++ {
		call()
	}
	wall := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	fmt.Printf("{\"calls\":%d,\"size\":%d,\"wall_ns\":%d,\"user_ns\":%d,\"sys_ns\":%d}\n",
		*calls, *size, wall.Nanoseconds(),
		after.Utime.Nano()-before.Utime.Nano(), after.Stime.Nano()-before.Stime.Nano())
}

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: tls_client chat|raw|bench ..."))
	}
	switch os.Args[1] {
	case "chat":
		chat(os.Args[2:])
	case "raw":
		raw(os.Args[2:])
	case "bench":
		bench(os.Args[2:])
	default:
		fail(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}
