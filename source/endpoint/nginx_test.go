//go:build linux

package endpoint

// This test proves staple capture against a real server: Debian's nginx,
// stapling OCSP responses the test made (ssl_stapling_file) and responses
// it fetched itself from an OCSP responder the test runs
// (ssl_stapling_responder). nginx runs as a private foreground process
// (daemon off, master_process off) with its configuration, chain, staples,
// pid file and temporary files in a directory of its own, on loopback high
// ports, and is stopped when the test ends. It needs root and the nginx
// package, as the daemon tests do (see daemons_test.go).

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/revocation"
	"github.com/certwatch/certwatch/source"
)

// nginxOCSP is an OCSP response about leaf, issued by issuer and signed by
// signer (the issuer itself, or an unrelated key for a bad signature).
func nginxOCSP(t *testing.T, leaf, issuer, signer *testpki.Cert, status int) []byte {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	tmpl := ocsp.Response{
		Status:       status,
		SerialNumber: leaf.Cert.SerialNumber,
		ThisUpdate:   now.Add(-time.Hour),
		NextUpdate:   now.Add(24 * time.Hour),
	}
	if status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = now.Add(-2*time.Hour), ocsp.KeyCompromise
	}
	der, err := ocsp.CreateResponse(issuer.Cert, issuer.Cert, tmpl, signer.Key)
	if err != nil {
		t.Fatalf("creating an OCSP response: %v", err)
	}
	return der
}

// nginxResponder answers every OCSP request for the leaf with a good
// response signed by issuer, counting the requests, on 127.0.0.1.
func nginxResponder(t *testing.T, leaf, issuer *testpki.Cert) (url string, requests *atomic.Int64) {
	t.Helper()
	requests = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		var der []byte
		switch r.Method {
		case http.MethodPost:
			der, _ = io.ReadAll(io.LimitReader(r.Body, 64<<10))
		case http.MethodGet: // RFC 6960 A.1: base64 of the DER, URL-encoded, as the path
			der, _ = base64.StdEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/"))
		}
		req, err := ocsp.ParseRequest(der)
		if err != nil || req.SerialNumber.Cmp(leaf.Cert.SerialNumber) != 0 {
			w.Header().Set("Content-Type", "application/ocsp-response")
			_, _ = w.Write(ocsp.UnauthorizedErrorResponse)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(nginxOCSP(t, leaf, issuer, issuer, ocsp.Good))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/", requests
}

func TestNginxStapling(t *testing.T) {
	t.Parallel()
	dmNeedRoot(t)
	bin := daemonBinary(t, "nginx", "/usr/sbin/nginx")

	dir := daemonDir(t)
	pki := dmWritePKI(t, dir, 0, 0)
	leaf, inter := pki.chain.Leaf, pki.chain.Intermediate
	stranger := testpki.New(t, nil, testpki.Options{CommonName: "unrelated responder", IsCA: true})
	responderURL, responderHits := nginxResponder(t, leaf, inter)

	// One server block per case, each on its own port, in one nginx.
	type server struct {
		name      string
		directive string // what the server staples
		staple    []byte // the file's content, for ssl_stapling_file
		want      []byte // the staple the probe must carry; nil: from the responder
		status    int    // what it says of the leaf
		tls12     bool   // TLS 1.2 only (CertificateStatus message), else TLS 1.3 (in the Certificate message)
	}
	servers := []*server{
		{name: "good", staple: nginxOCSP(t, leaf, inter, inter, ocsp.Good), status: ocsp.Good},
		{name: "good over TLS 1.2", staple: nginxOCSP(t, leaf, inter, inter, ocsp.Good), status: ocsp.Good, tls12: true},
		{name: "revoked", staple: nginxOCSP(t, leaf, inter, inter, ocsp.Revoked), status: ocsp.Revoked},
		// nginx loads a stapling file without checking its signature (it
		// checks none unless ssl_stapling_verify is on, and then only for
		// responses it fetched), so a forged response is served as is.
		{name: "bad signature", staple: nginxOCSP(t, leaf, inter, stranger, ocsp.Good), status: -1},
		{name: "from the responder", directive: "ssl_stapling_responder " + responderURL + ";", status: ocsp.Good},
	}
	var blocks strings.Builder
	for i, s := range servers {
		if s.staple != nil {
			file := dmWriteFile(t, filepath.Join(dir, fmt.Sprintf("staple%d.der", i)), s.staple, 0o644, 0, 0)
			s.directive, s.want = "ssl_stapling_file "+file+";", s.staple
		}
		protocols := "TLSv1.3"
		if s.tls12 {
			protocols = "TLSv1.2"
		}
		fmt.Fprintf(&blocks, `
    server {
        listen 127.0.0.1:%%[%d]d ssl;
        ssl_protocols %s;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_stapling on;
        %s
    }
`, i+1, protocols, pki.chainFile, pki.keyFile, s.directive)
	}
	for _, sub := range []string{"tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"} {
		dmMkdir(t, filepath.Join(dir, sub), 0o755, 0, 0)
	}
	conf := `daemon off;
master_process off;
pid ` + dir + `/nginx.pid;
error_log stderr info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path ` + dir + `/tmp/body;
    proxy_temp_path ` + dir + `/tmp/proxy;
    fastcgi_temp_path ` + dir + `/tmp/fastcgi;
    uwsgi_temp_path ` + dir + `/tmp/uwsgi;
    scgi_temp_path ` + dir + `/tmp/scgi;
` + blocks.String() + "}\n"

	ports := startDaemon(t, "nginx", syscall.SIGTERM, len(servers), func(ports []int) *exec.Cmd {
		args := make([]any, len(ports))
		for i, p := range ports {
			args[i] = p
		}
		path := dmWriteFile(t, filepath.Join(dir, "nginx.conf"), fmt.Appendf(nil, conf, args...), 0o644, 0, 0)
		return exec.Command(bin, "-p", dir, "-c", path, "-e", "stderr")
	})

	for i, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			target := dmLoopback(ports[i])
			f := nginxProbe(t, pki, target)
			if s.want == nil {
				// nginx asks the responder at the first handshake that
				// wants a staple and staples from a later one on.
				deadline := time.Now().Add(20 * time.Second)
				for f.Err == nil && f.Staple() == nil && time.Now().Before(deadline) {
					time.Sleep(200 * time.Millisecond)
					f = nginxProbe(t, pki, target)
				}
				if responderHits.Load() == 0 {
					t.Errorf("nginx never asked the responder at %s", responderURL)
				}
			}
			dmAssertChain(t, f, pki, target)
			if wantVersion := map[bool]string{false: "TLS 1.3", true: "TLS 1.2"}[s.tls12]; f.TLS.Version != wantVersion {
				t.Errorf("negotiated %s, want %s", f.TLS.Version, wantVersion)
			}
			if f.Staple() == nil {
				t.Fatal("the finding carries no staple")
			}
			if s.want != nil && !bytes.Equal(f.Staple(), s.want) {
				t.Fatalf("the finding's staple (%d bytes) is not the file nginx staples (%d bytes)", len(f.Staple()), len(s.want))
			}
			nginxCheckStaple(t, f.Staple(), leaf.Cert, inter.Cert, s.status)
		})
	}
}

// nginxCheckStaple checks what revocation.ParseStaple, as the inspector
// calls it, makes of staple: status (an ocsp status), or (-1) a staple
// refused as bad_signature.
func nginxCheckStaple(t *testing.T, staple []byte, leaf, issuer *x509.Certificate, status int) {
	t.Helper()
	ans, err := revocation.ParseStaple(staple, leaf, issuer)
	if status < 0 {
		if class := source.ClassOf(err); class != source.ClassBadSignature {
			t.Errorf("ParseStaple of the forged staple: %+v, %v (class %q), want class %q", ans, err, class, source.ClassBadSignature)
		}
		return
	}
	want := map[int]revocation.Status{ocsp.Good: revocation.StatusGood, ocsp.Revoked: revocation.StatusRevoked}[status]
	switch {
	case err != nil:
		t.Errorf("ParseStaple: %v", err)
	case ans.Method != revocation.MethodStaple || ans.Status != want:
		t.Errorf("ParseStaple: method %q status %q, want %q %q", ans.Method, ans.Status, revocation.MethodStaple, want)
	case status == ocsp.Revoked && ans.Reason.String() != "keyCompromise":
		t.Errorf("revocation reason %q, want keyCompromise", ans.Reason)
	case ans.NextUpdate.IsZero() || ans.ThisUpdate.IsZero():
		t.Errorf("answer without this/next update: %+v", ans)
	}
}

// nginxProbe probes target as /probe does, with the chain's root as the
// module's ca_file.
func nginxProbe(t *testing.T, pki *daemonPKI, target string) source.Finding {
	t.Helper()
	yaml := fmt.Sprintf(`modules:
  nginx:
    timeout: 10s
    tls:
      ca_file: %q
endpoints:
  - module: nginx
    targets: [%q]
`, pki.rootFile, target)
	cfg, err := config.Parse([]byte(yaml), pki.dir)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	p := New(cfg, slog.New(slog.DiscardHandler))
	if err := p.Allowed(target, "nginx"); err != nil {
		t.Fatalf("Allowed: %v", err)
	}
	return p.Probe(t.Context(), target, "nginx")
}
