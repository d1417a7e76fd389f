//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
)

// runFarm serves k TLS endpoints on loopback (spread over 127.0.0.1-4),
// each with its own leaf (80% ECDSA P-256, 20% RSA-2048) and its issuing
// intermediate, plus hung servers (accept, never answer) and refused ports.
// It writes targets.txt, hung.txt, refused.txt and roots.pem into -dir,
// prints READY, and serves until its stdin closes. It runs in its own
// process so that its CPU is not the exporter's.
func runFarm(args []string) {
	fs := flag.NewFlagSet("farm", flag.ExitOnError)
	var c common
	c.register(fs)
	k := fs.Int("k", 1000, "TLS endpoints")
	hung := fs.Int("hung", 0, "servers that accept and never speak")
	refused := fs.Int("refused", 0, "ports where nothing listens")
	dir := fs.String("dir", "", "where to write the target lists")
	parseFlags(fs, args)
	exitWithParent()

	tb := newTB()
	p := loadOrCreatePKI(tb, filepath.Join(c.cache, "pki"))
	addrs := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}
	var targets, hungs, refuseds []string
	listen := func(i int) net.Listener {
		l, err := net.Listen("tcp", net.JoinHostPort(addrs[i%len(addrs)], "0"))
		if err != nil {
			fatalf("farm: %v", err)
		}
		return l
	}
	var served atomic.Int64
	for i := range *k {
		l := listen(i)
		host, _, _ := net.SplitHostPort(l.Addr().String())
		leaf, issuer := p.leaf(tb, i, i%5 == 4, fmt.Sprintf("ep-%04d.farm.bench.example", i), net.ParseIP(host))
		cfg := &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(leaf, issuer)}}
		go serveTLS(l, cfg, &served)
		targets = append(targets, l.Addr().String())
	}
	for i := range *hung {
		l := listen(i)
		go serveHung(l)
		hungs = append(hungs, l.Addr().String())
	}
	for i := range *refused {
		l := listen(i)
		refuseds = append(refuseds, l.Addr().String())
		l.Close()
	}
	write := func(name string, lines []string) {
		if err := os.WriteFile(filepath.Join(*dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			fatalf("farm: %v", err)
		}
	}
	write("targets.txt", targets)
	write("hung.txt", hungs)
	write("refused.txt", refuseds)
	if err := os.WriteFile(filepath.Join(*dir, "roots.pem"), testpki.PEM(p.ecRoot, p.rsaRoot), 0o644); err != nil {
		fatalf("farm: %v", err)
	}
	fmt.Println("READY")
	select {}
}

func serveTLS(l net.Listener, cfg *tls.Config, served *atomic.Int64) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			tc := tls.Server(conn, cfg)
			if tc.Handshake() == nil {
				served.Add(1)
				_, _ = io.Copy(io.Discard, tc) // until the client closes
			}
		}()
	}
}

func serveHung(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			_, _ = io.Copy(io.Discard, conn) // never a byte back; gone when the client gives up
		}()
	}
}

func readLines(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		fatalf("%v", err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// floorResult is what tlsfloor reports.
type floorResult struct {
	Handshakes int     `json:"handshakes"`
	Errors     int     `json:"errors"`
	CPUSeconds float64 `json:"cpu_seconds"`
	WallSecond float64 `json:"wall_seconds"`
}

// runTLSFloor is the floor of a probe: crypto/tls client handshakes with
// full verification (chain to the roots, hostname), nothing else, with the
// exporter's concurrency, in a process of its own whose CPU time it reads
// around the loop.
func runTLSFloor(args []string) {
	fs := flag.NewFlagSet("tlsfloor", flag.ExitOnError)
	targetsFile := fs.String("targets", "", "host:port per line")
	rootsFile := fs.String("roots", "", "PEM roots")
	n := fs.Int("n", 1000, "handshakes (targets taken in turn)")
	k := fs.Int("k", 0, "use the first k targets (0: all)")
	conc := fs.Int("concurrency", 128, "handshakes in flight")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the loop here")
	parseFlags(fs, args)
	exitWithParent()
	targets := readLines(*targetsFile)
	if *k > 0 {
		targets = targets[:*k]
	}
	pem, err := os.ReadFile(*rootsFile)
	if err != nil {
		fatalf("%v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)

	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fatalf("%v", err)
		}
		defer f.Close()
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	runtime.GC()
	var errs atomic.Int64
	var next atomic.Int64
	cpu0, start := procCPU(os.Getpid()), time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				if err := verifiedHandshake(targets[i%len(targets)], roots); err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res := floorResult{Handshakes: *n, Errors: int(errs.Load()),
		CPUSeconds: (procCPU(os.Getpid()) - cpu0).Seconds(), WallSecond: time.Since(start).Seconds()}
	if *profile != "" {
		pprof.StopCPUProfile()
	}
	data, _ := json.Marshal(res)
	fmt.Println(string(data))
}

func verifiedHandshake(target string, roots *x509.CertPool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host, _, _ := net.SplitHostPort(target)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return err
	}
	defer conn.Close()
	tc := tls.Client(conn, &tls.Config{RootCAs: roots, ServerName: host})
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	return tc.Close()
}
