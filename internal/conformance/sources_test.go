package conformance

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/endpoint"
	"github.com/certwatch/certwatch/source/files"
)

// The source runs hand every case to a real source and judge what it
// found with one inspector for all places (JudgeAll, as a scrape does), so
// they also show that a verdict depends neither on the other places nor on
// the order they are judged in. Each source's verdict must be the one the
// inspector gives the case directly (TestInspector compares that with the
// corpus): same reason, same ChainNotAfter.

var quiet = slog.New(slog.DiscardHandler)

// placeFile is what a file place holds: its certificates then its keys.
func placeFile(t testing.TB, c Case) []byte {
	t.Helper()
	data := testpki.PEM(c.Place...)
	for _, k := range c.Keys {
		data = append(data, testpki.KeyPEM(t, k)...)
	}
	return data
}

// compareWithDirect judges what a source found (one finding per case, in
// any order) with one inspector and compares each verdict with the case's
// direct verdict in the mode.
func compareWithDirect(t *testing.T, sourceName, mode string, byCase map[string]source.Finding, cases []Case) {
	t.Helper()
	var chains []inspect.Chain
	var names []string
	for _, c := range cases {
		f, ok := byCase[c.Name]
		if !ok {
			t.Errorf("%s: the %s source found nothing", c.Name, sourceName)
			continue
		}
		if f.Err != nil {
			t.Errorf("%s: the %s source failed: %v", c.Name, sourceName, f.Err)
			continue
		}
		chains = append(chains, inspect.Chain{Certs: f.Certs, KeyPublics: f.KeyPublics, Verify: f.Verify})
		names = append(names, c.Name)
	}
	verdicts := inspect.NewInspector(nil).JudgeAll(chains)
	byName := map[string]Case{}
	for _, c := range cases {
		byName[c.Name] = c
	}
	agree := 0
	for i, v := range verdicts {
		c := byName[names[i]]
		direct := judgeDirect(t, c, mode)
		if v.Reason != direct.Reason || !v.ChainNotAfter.Equal(direct.ChainNotAfter) {
			t.Errorf("%s: through the %s source %s (%s), ChainNotAfter %s; directly %s (%s), ChainNotAfter %s; found %s",
				c.Name, sourceName, v.Reason, v.Detail, v.ChainNotAfter, direct.Reason, direct.Detail, direct.ChainNotAfter, describeCerts(chains[i].Certs))
			continue
		}
		agree++
	}
	t.Logf("the %s source agrees with the direct verdict (as %s) on %d of %d cases", sourceName, mode, agree, len(cases))
}

// TestFilesSource writes every case as a file (certificates, then keys)
// with its CA file beside it, one file group per case in one
// configuration, and collects them with the files source.
func TestFilesSource(t *testing.T) {
	cases := Corpus(t)
	dir := t.TempDir()
	var groups []map[string]any
	byPath := map[string]string{}
	for _, c := range cases {
		p := testpki.WriteFile(t, dir, filepath.Join(c.Name, "place.pem"), placeFile(t, c))
		byPath[p] = c.Name
		g := map[string]any{"paths": []string{p}}
		if c.CA != nil {
			g["ca_file"] = testpki.WriteFile(t, dir, filepath.Join(c.Name, "ca.pem"), testpki.PEM(c.CA...))
		}
		groups = append(groups, g)
	}
	y, err := yaml.Marshal(map[string]any{"files": groups})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(y, dir)
	if err != nil {
		t.Fatalf("configuration: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	byCase := map[string]source.Finding{}
	for _, f := range files.New(cfg, files.NewCache(), quiet).Collect(ctx) {
		name, ok := byPath[f.Target]
		if !ok {
			t.Errorf("unexpected finding at %s (key %q): %v", f.Target, f.Key, f.Err)
			continue
		}
		if _, dup := byCase[name]; dup {
			t.Errorf("%s: more than one finding", name)
		}
		byCase[name] = f
	}
	compareWithDirect(t, "files", modeFile, byCase, cases)
}

// serveCase serves a case's certificates, in the case's order, on a
// loopback TLS listener until the test ends, and returns its address.
func serveCase(t *testing.T, c Case) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(c.Place[0], c.Place[1:]...)}}
	if c.TLS12RSAKeyExchange {
		cfg.MaxVersion = tls.VersionTLS12
		cfg.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[conn] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				tc := tls.Server(conn, cfg)
				_ = tc.SetDeadline(time.Now().Add(20 * time.Second))
				if tc.Handshake() == nil {
					_, _ = io.Copy(io.Discard, tc)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestEndpointSource serves every case that can be served on a real TLS
// listener, presenting its certificates in the case's order, and probes
// each with the endpoint source: one module per case, with the case's CA
// file and server name.
func TestEndpointSource(t *testing.T) {
	var cases []Case
	for _, c := range Corpus(t) {
		if c.Endpoint != "" {
			cases = append(cases, c)
		}
	}
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("global:\n  probe_concurrency: 8\nmodules:\n")
	addrs := map[string]string{}
	for i, c := range cases {
		addrs[c.Name] = serveCase(t, c)
		fmt.Fprintf(&b, "  m%d:\n    timeout: 20s\n    tls:\n      server_name: %q\n", i, c.Server())
		if c.CA != nil {
			fmt.Fprintf(&b, "      ca_file: %q\n", testpki.WriteFile(t, dir, c.Name+".pem", testpki.PEM(c.CA...)))
		}
	}
	cfg, err := config.Parse([]byte(b.String()), dir)
	if err != nil {
		t.Fatalf("configuration: %v\n%s", err, b.String())
	}
	prober := endpoint.New(cfg, quiet)
	byCase := map[string]source.Finding{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			f := prober.Probe(ctx, addrs[c.Name], fmt.Sprintf("m%d", i))
			mu.Lock()
			byCase[c.Name] = f
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, c := range cases {
		if f := byCase[c.Name]; f.Err == nil && len(f.Certs) != len(c.Place) {
			t.Errorf("%s: the endpoint presented %d certificates (%s), the case has %d", c.Name, len(f.Certs), describeCerts(f.Certs), len(c.Place))
		}
	}
	compareWithDirect(t, "endpoint", modeEndpoint, byCase, cases)
}
