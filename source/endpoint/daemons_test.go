//go:build linux

package endpoint

// These tests prove the STARTTLS support against real servers: the Debian
// packages of Postfix, Dovecot, PostgreSQL, OpenLDAP's slapd, vsftpd and
// MariaDB. Each test writes a private configuration and a certificate chain
// generated with testpki (root -> intermediate -> leaf for localhost and
// 127.0.0.1) to a temporary directory, starts the daemon as a child process
// listening on 127.0.0.1 on a free high port, probes it through the endpoint
// source exactly as /probe would, and stops it (and every process it forked)
// when the test ends. Nothing is installed or started system-wide.
//
// The daemons need root (they switch users and read root-owned keys) and the
// packages that .ci/install-test-deps.sh installs. When either is missing the
// tests fail and say so, unless CERTWATCH_SKIP_DAEMON_TESTS=1 is set, in which
// case they skip.

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

const (
	dmSkipEnv     = "CERTWATCH_SKIP_DAEMON_TESTS"
	dmInstallHint = "install the daemons with .ci/install-test-deps.sh (as root) and run the tests as root, " +
		"or set " + dmSkipEnv + "=1 to skip the daemon tests"
	daemonStartTimeout = 30 * time.Second
	daemonStopTimeout  = 15 * time.Second
)

// dmMissing fails the test, or skips it when the user asked to
// skip the daemon tests.
func dmMissing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(dmSkipEnv) == "1" {
		t.Skipf("%s (%s=1)", msg, dmSkipEnv)
	}
	t.Fatalf("%s: %s", msg, dmInstallHint)
}

// dmNeedRoot: the daemons bind, switch users and read keys as root does.
func dmNeedRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		dmMissing(t, "the daemon tests start real daemons and must run as root")
	}
}

// daemonBinary returns the path of a daemon's program: the first of the
// candidate paths that exists (globs allowed; of several matches the newest
// /usr/lib/postgresql/<version> wins), else the name looked up in PATH.
func daemonBinary(t *testing.T, name string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		matches, _ := filepath.Glob(c)
		slices.SortFunc(matches, dmCompareVersions)
		for i := len(matches) - 1; i >= 0; i-- {
			if st, err := os.Stat(matches[i]); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return matches[i]
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	dmMissing(t, "%s not found (looked in %s and PATH)", name, strings.Join(candidates, ", "))
	return ""
}

// dmCompareVersions orders /usr/lib/postgresql/9.6/bin/x before
// /usr/lib/postgresql/15/bin/x (by the version directory, numerically).
func dmCompareVersions(a, b string) int {
	va, ea := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(a))), 64)
	vb, eb := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(b))), 64)
	if ea == nil && eb == nil && va != vb {
		if va < vb {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// dmUser looks up the account a daemon drops to (created by its package).
func dmUser(t *testing.T, name string) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		dmMissing(t, "user %q not found (its Debian package creates it)", name)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// daemonDir makes a temporary directory other users can traverse: the
// daemons drop to their own accounts and still need to reach their files.
// (t.TempDir's directories are 0700.)
func daemonDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "certwatch-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func dmMkdir(t *testing.T, dir string, mode os.FileMode, uid, gid int) string {
	t.Helper()
	if err := os.MkdirAll(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // MkdirAll's mode is masked by the umask
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

func dmWriteFile(t *testing.T, path string, data []byte, mode os.FileMode, uid, gid int) string {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemonPKI is a generated chain written out for a daemon: chainFile holds
// the leaf then the intermediate (what the server must present), keyFile the
// leaf's key, rootFile the root (the module's ca_file).
type daemonPKI struct {
	chain                        *testpki.Chain
	dir                          string
	chainFile, keyFile, rootFile string
}

// dmWritePKI generates a chain and writes it to dir/pki, owned by uid:gid
// (the key readable by that owner only).
func dmWritePKI(t *testing.T, dir string, uid, gid int) *daemonPKI {
	t.Helper()
	c := testpki.NewChain(t, testpki.Options{})
	d := dmMkdir(t, filepath.Join(dir, "pki"), 0o755, uid, gid)
	return &daemonPKI{
		chain:     c,
		dir:       d,
		chainFile: dmWriteFile(t, filepath.Join(d, "chain.pem"), testpki.PEM(c.Leaf, c.Intermediate), 0o644, uid, gid),
		keyFile:   dmWriteFile(t, filepath.Join(d, "key.pem"), testpki.KeyPEM(t, c.Leaf.Key), 0o600, uid, gid),
		rootFile:  dmWriteFile(t, filepath.Join(d, "root.pem"), testpki.PEM(c.Root), 0o644, uid, gid),
	}
}

var (
	dmPortsMu sync.Mutex
	dmPorts   = map[int]bool{}
)

// dmFreePort returns a loopback port nobody listens on, never the same one
// twice in this process (the tests run in parallel). It picks ports below
// the kernel's ephemeral range, which the kernel never hands out on its own:
// a port from the ephemeral range, released before the daemon binds it, can
// be given meanwhile to any listener or outgoing connection of another test.
func dmFreePort(t *testing.T) int {
	t.Helper()
	dmPortsMu.Lock()
	defer dmPortsMu.Unlock()
	low, high := 20000, 30000
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 && n <= 30000 {
				low, high = 10000, n
			}
		}
	}
	for range 1000 {
		port := low + rand.IntN(high-low)
		if dmPorts[port] {
			continue
		}
		l, err := net.Listen("tcp", dmLoopback(port))
		if err != nil {
			continue
		}
		_ = l.Close()
		dmPorts[port] = true
		return port
	}
	t.Fatal("no free port")
	return 0
}

func dmLoopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// dmLog collects a daemon's output (written by os/exec's copying
// goroutine, read by the test), keeping the first dmMaxLog bytes.
type dmLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const dmMaxLog = 256 << 10

func (b *dmLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := dmMaxLog - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *dmLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemon is a running daemon process group.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	out    *dmLog
	exited chan struct{}
	// stopSig is sent to the daemon to shut it down cleanly; it stops its
	// own workers.
	stopSig  syscall.Signal
	stopOnce sync.Once
}

// startDaemon starts the daemon that build returns for nports fresh loopback
// ports and returns those ports once it listens on every one of them. If
// the daemon exits first (as daemons do when a port was taken meanwhile by
// another program), it tries again with other ports, twice.
func startDaemon(t *testing.T, name string, stopSig syscall.Signal, nports int, build func(ports []int) *exec.Cmd) []int {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := make([]int, nports)
		for i := range ports {
			ports[i] = dmFreePort(t)
		}
		d, err := launchDaemon(t, name, build(ports), stopSig, ports)
		if err == nil {
			return ports
		}
		if attempt == 3 {
			t.Fatalf("%s: %v", name, err)
		}
		d.stop(t)
		t.Logf("%s: %v; retrying with other ports. Output:\n%s", name, err, d.out)
	}
}

// launchDaemon starts cmd in a process group of its own (so that nothing it
// forks can be missed, and a daemon that signals its whole group cannot
// reach the test), logs its output if the test fails, stops it when the test
// ends, and returns once it listens on 127.0.0.1 on every one of ports, or
// an error if it exits first. The daemon must stay in the foreground.
func launchDaemon(t *testing.T, name string, cmd *exec.Cmd, stopSig syscall.Signal, ports []int) (*daemon, error) {
	t.Helper()
	d := &daemon{name: name, cmd: cmd, out: &dmLog{}, exited: make(chan struct{}), stopSig: stopSig}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LC_ALL=C"}
	}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	cmd.WaitDelay = 5 * time.Second // grandchildren holding the output pipe must not hang Wait
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(d.exited)
	}()
	// Cleanups run last-in first-out: stop first, then show the output.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (%s) output:\n%s", name, strings.Join(cmd.Args, " "), d.out)
		}
	})
	t.Cleanup(func() { d.stop(t) })

	deadline := time.Now().Add(daemonStartTimeout)
	for _, port := range ports {
		for !dmListening(cmd.Process.Pid, port) {
			select {
			case <-d.exited:
				return d, fmt.Errorf("exited before listening on port %d: %v", port, waitErr)
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not listen on port %d within %v", name, port, daemonStartTimeout)
			}
		}
	}
	var addrs []string
	for _, port := range ports {
		addrs = append(addrs, dmLoopback(port))
	}
	t.Logf("%s listening on %s after %v", name, strings.Join(addrs, ", "), time.Since(started).Round(time.Millisecond))
	return d, nil
}

// dmListening reports whether a process of the group pgid has a listening
// socket on 127.0.0.1:port, so that a listener of some other program on a
// port taken meanwhile is not mistaken for the daemon. Where /proc cannot
// tell, it falls back to connecting.
func dmListening(pgid, port int) bool {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		conn, err := net.DialTimeout("tcp", dmLoopback(port), time.Second)
		if err == nil {
			_ = conn.Close()
		}
		return err == nil
	}
	// sl local_address rem_address st ... uid timeout inode; 127.0.0.1 is
	// printed in host byte order, st 0A is LISTEN.
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		if f[1] == fmt.Sprintf("0100007F:%04X", port) || f[1] == fmt.Sprintf("7F000001:%04X", port) {
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return false
	}
	for _, pid := range dmGroupMembers(pgid) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[link] {
				return true
			}
		}
	}
	return false
}

// stop shuts the daemon down and makes sure no process of its group is left.
func (d *daemon) stop(t *testing.T) {
	d.stopOnce.Do(func() {
		begin := time.Now()
		defer func() { t.Logf("%s stopped in %v", d.name, time.Since(begin).Round(time.Millisecond)) }()
		pgid := d.cmd.Process.Pid
		_ = d.cmd.Process.Signal(d.stopSig)
		select {
		case <-d.exited:
		case <-time.After(daemonStopTimeout):
			t.Errorf("%s did not stop within %v of %v; killing it", d.name, daemonStopTimeout, d.stopSig)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-d.exited
		}
		// Workers that outlive their master get a moment, then SIGKILL.
		deadline := time.Now().Add(5 * time.Second)
		for {
			left := dmGroupMembers(pgid)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				time.Sleep(200 * time.Millisecond)
				if still := dmGroupMembers(pgid); len(still) > 0 {
					t.Errorf("%s: processes %v still running after SIGKILL", d.name, still)
				} else {
					t.Errorf("%s: processes %v outlived the daemon and had to be killed", d.name, left)
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// dmGroupMembers lists the live (not zombie) processes of a process group.
func dmGroupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// probeDaemon probes target through a configuration that names it, with a
// module using the STARTTLS protocol, exactly as /probe does.
func probeDaemon(t *testing.T, pki *daemonPKI, protocol, target string) source.Finding {
	t.Helper()
	yaml := fmt.Sprintf(`modules:
  daemon:
    starttls: %s
    timeout: 20s
    tls:
      ca_file: %q
endpoints:
  - module: daemon
    targets: [%q]
`, protocol, pki.rootFile, target)
	cfg, err := config.Parse([]byte(yaml), pki.dir)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	p := New(cfg, slog.New(slog.DiscardHandler))
	if err := p.Allowed(target, "daemon"); err != nil {
		t.Fatalf("Allowed: %v", err)
	}
	return p.Probe(t.Context(), target, "daemon")
}

// dmAssertChain checks that the probe succeeded and recorded the generated
// leaf then intermediate, and the TLS parameters.
func dmAssertChain(t *testing.T, f source.Finding, pki *daemonPKI, target string) {
	t.Helper()
	if f.Err != nil {
		t.Fatalf("probe of %s failed (class %q): %v", target, source.ClassOf(f.Err), f.Err)
	}
	if f.Source != source.KindEndpoint || f.Target != target {
		t.Errorf("place = %s %s, want %s %s", f.Source, f.Target, source.KindEndpoint, target)
	}
	want := []*testpki.Cert{pki.chain.Leaf, pki.chain.Intermediate}
	if len(f.Certs) != len(want) {
		t.Fatalf("got %d certificates, want %d (leaf, intermediate): %v", len(f.Certs), len(want), dmSubjects(f))
	}
	for i, w := range want {
		if !bytes.Equal(f.Certs[i].Raw, w.Cert.Raw) {
			t.Errorf("certificate %d is %q, want the generated %q", i, f.Certs[i].Subject.CommonName, w.Cert.Subject.CommonName)
		}
	}
	host, _, _ := net.SplitHostPort(target)
	switch {
	case f.TLS == nil:
		t.Fatal("no TLS state recorded")
	case f.TLS.Version != "TLS 1.2" && f.TLS.Version != "TLS 1.3":
		t.Errorf("TLS version %q, want TLS 1.2 or TLS 1.3", f.TLS.Version)
	case f.TLS.CipherSuite == "":
		t.Error("no cipher suite recorded")
	case f.TLS.ServerName != host:
		t.Errorf("server name %q, want %q", f.TLS.ServerName, host)
	}
	// What the inspector will do with it: the chain verifies against the
	// module's ca_file for the probed name.
	inter := x509.NewCertPool()
	for _, c := range f.Certs[1:] {
		inter.AddCert(c)
	}
	if f.Verify.DNSName != host || f.Verify.Roots == nil {
		t.Errorf("verify params %+v, want DNS name %q and the ca_file roots", f.Verify, host)
	} else if _, err := f.Certs[0].Verify(x509.VerifyOptions{DNSName: host, Roots: f.Verify.Roots, Intermediates: inter}); err != nil {
		t.Errorf("presented chain does not verify against the ca_file: %v", err)
	}
	if f.TLS != nil {
		t.Logf("%s: %s, %s, handshake %v", target, f.TLS.Version, f.TLS.CipherSuite, f.TLS.HandshakeDuration)
	}
}

// dmAssertRefused checks that a server that would not start TLS is reported
// as such, with no certificates, and for the expected reason (wantMsg is part
// of the error: the daemon's answer to the STARTTLS request).
func dmAssertRefused(t *testing.T, f source.Finding, wantMsg string) {
	t.Helper()
	if f.Err == nil {
		t.Fatalf("probe succeeded (%v), want a starttls error", dmSubjects(f))
	}
	if c := source.ClassOf(f.Err); c != source.ClassStartTLS {
		t.Errorf("class %q, want %q: %v", c, source.ClassStartTLS, f.Err)
	}
	if !errors.Is(f.Err, errStartTLSRefused) {
		t.Errorf("error %v does not say the server refused STARTTLS", f.Err)
	}
	if !strings.Contains(f.Err.Error(), wantMsg) {
		t.Errorf("error %q does not contain %q", f.Err, wantMsg)
	}
	if len(f.Certs) != 0 || f.TLS != nil {
		t.Errorf("refused probe recorded certificates or TLS state: %v %+v", dmSubjects(f), f.TLS)
	}
	if !t.Failed() {
		t.Logf("refused as expected: %v", f.Err)
	}
}

func dmSubjects(f source.Finding) []string {
	var s []string
	for _, c := range f.Certs {
		s = append(s, c.Subject.CommonName)
	}
	return s
}

// TestDaemonPostfix: SMTP STARTTLS against Postfix's smtpd, and an smtpd
// of the same master that does not offer STARTTLS.
func TestDaemonPostfix(t *testing.T) {
	t.Parallel()
	dmNeedRoot(t)
	postfix := daemonBinary(t, "postfix", "/usr/sbin/postfix")
	dmUser(t, "postfix")
	dir := daemonDir(t)
	pki := dmWritePKI(t, dir, 0, 0)

	// A private config_directory and queue_directory. Postfix only logs to
	// files under maillog_file_prefixes (/var, /dev/stdout by default): a log
	// file under /tmp makes it exit silently. smtpd needs proxymap (for
	// local_recipient_maps) and postlogd (for maillog_file); the second smtpd
	// does not offer STARTTLS.
	conf := dmMkdir(t, filepath.Join(dir, "postfix"), 0o755, 0, 0)
	dmMkdir(t, filepath.Join(dir, "queue"), 0o755, 0, 0)
	dmWriteFile(t, filepath.Join(conf, "main.cf"), []byte(fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = localhost.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtpd_relay_restrictions = reject
maillog_file = /dev/stdout
smtpd_tls_security_level = may
smtpd_tls_chain_files = %[2]s, %[3]s
smtpd_tls_loglevel = 1
`, dir, pki.keyFile, pki.chainFile)), 0o644, 0, 0)
	daemonDirectory, err := exec.Command(filepath.Join(filepath.Dir(postfix), "postconf"), "-c", conf, "-h", "daemon_directory").Output()
	if err != nil {
		t.Fatalf("postconf daemon_directory: %v", err)
	}
	master := filepath.Join(strings.TrimSpace(string(daemonDirectory)), "master")

	// "postfix check" creates the queue's subdirectories and the data
	// directory with the owners Postfix wants (post-install create-missing).
	// Then run the master directly rather than with "postfix start-fg",
	// which runs it under a shell in a session of its own (setsid), out of
	// reach of the process group the harness stops. -d keeps it in the group
	// startDaemon gives it; on SIGTERM it stops its workers.
	ports := startDaemon(t, "postfix", syscall.SIGTERM, 2, func(ports []int) *exec.Cmd {
		dmWriteFile(t, filepath.Join(conf, "master.cf"), []byte(fmt.Sprintf(`# service type  private unpriv  chroot  wakeup  maxproc command + args
%[1]s inet  n       -       n       -       -       smtpd
%[2]s inet  n       -       n       -       -       smtpd -o smtpd_tls_security_level=none
cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
proxymap  unix  -       -       n       -       -       proxymap
postlog   unix-dgram n  -       n       -       1       postlogd
`, dmLoopback(ports[0]), dmLoopback(ports[1]))), 0o644, 0, 0)
		if out, err := exec.Command(postfix, "-c", conf, "check").CombinedOutput(); err != nil {
			t.Fatalf("postfix check: %v\n%s", err, out)
		}
		return exec.Command(master, "-c", conf, "-d")
	})
	tlsPort, plainPort := ports[0], ports[1]

	t.Run("starttls", func(t *testing.T) {
		target := "localhost:" + strconv.Itoa(tlsPort)
		dmAssertChain(t, probeDaemon(t, pki, "smtp", target), pki, target)
	})
	t.Run("not offered", func(t *testing.T) {
		dmAssertRefused(t, probeDaemon(t, pki, "smtp", "localhost:"+strconv.Itoa(plainPort)), "STARTTLS not among the EHLO extensions")
	})
}

// dovecotConf is a self-contained Dovecot configuration serving IMAP and
// POP3 on the given ports, with TLS (STARTTLS/STLS) when pki is not nil.
func dovecotConf(dir string, pki *daemonPKI, imapPort, pop3Port int) string {
	ssl := "ssl = no\n"
	if pki != nil {
		ssl = fmt.Sprintf("ssl = yes\nssl_cert = <%s\nssl_key = <%s\n", pki.chainFile, pki.keyFile)
	}
	return fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = /dev/stderr
protocols = imap pop3
listen = 127.0.0.1
%[2]sdisable_plaintext_auth = no
auth_mechanisms = plain
passdb {
  driver = static
  args = password=unused
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=%[1]s/home
}
mail_location = maildir:~/Maildir
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[3]d
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[4]d
  }
  inet_listener pop3s {
    port = 0
  }
}
`, dir, ssl, imapPort, pop3Port)
}

// TestDaemonDovecot: IMAP STARTTLS and POP3 STLS against Dovecot, and a
// Dovecot without TLS refusing both.
func TestDaemonDovecot(t *testing.T) {
	t.Parallel()
	dmNeedRoot(t)
	dovecot := daemonBinary(t, "dovecot", "/usr/sbin/dovecot")
	dmUser(t, "dovecot")
	dmUser(t, "dovenull")
	dir := daemonDir(t)
	pki := dmWritePKI(t, dir, 0, 0)

	start := func(name string, pki *daemonPKI) (imapPort, pop3Port int) {
		d := dmMkdir(t, filepath.Join(dir, name), 0o755, 0, 0)
		ports := startDaemon(t, "dovecot "+name, syscall.SIGTERM, 2, func(ports []int) *exec.Cmd {
			conf := dmWriteFile(t, filepath.Join(d, "dovecot.conf"), []byte(dovecotConf(d, pki, ports[0], ports[1])), 0o644, 0, 0)
			return exec.Command(dovecot, "-F", "-c", conf)
		})
		return ports[0], ports[1]
	}
	imapTLS, pop3TLS := start("tls", pki)
	imapPlain, pop3Plain := start("plain", nil)

	t.Run("imap starttls", func(t *testing.T) {
		target := "localhost:" + strconv.Itoa(imapTLS)
		dmAssertChain(t, probeDaemon(t, pki, "imap", target), pki, target)
	})
	t.Run("pop3 stls", func(t *testing.T) {
		target := "localhost:" + strconv.Itoa(pop3TLS)
		dmAssertChain(t, probeDaemon(t, pki, "pop3", target), pki, target)
	})
	t.Run("imap without tls", func(t *testing.T) {
		dmAssertRefused(t, probeDaemon(t, pki, "imap", "localhost:"+strconv.Itoa(imapPlain)), "a1 BAD TLS support isn't enabled")
	})
	t.Run("pop3 without tls", func(t *testing.T) {
		dmAssertRefused(t, probeDaemon(t, pki, "pop3", "localhost:"+strconv.Itoa(pop3Plain)), "-ERR TLS support isn't enabled")
	})
}

// TestDaemonPostgreSQL: the SSLRequest exchange against PostgreSQL with
// ssl=on, then the same cluster restarted with ssl=off answering 'N'.
func TestDaemonPostgreSQL(t *testing.T) {
	t.Parallel()
	dmNeedRoot(t)
	// Debian's binaries, not whatever "postgres" is first in PATH.
	postgres := daemonBinary(t, "postgres", "/usr/lib/postgresql/*/bin/postgres")
	initdb := daemonBinary(t, "initdb", filepath.Join(filepath.Dir(postgres), "initdb"))
	uid, gid := dmUser(t, "postgres") // PostgreSQL refuses to run as root
	dir := daemonDir(t)
	pgdir := dmMkdir(t, filepath.Join(dir, "pg"), 0o700, uid, gid)
	pki := dmWritePKI(t, pgdir, uid, gid) // the server key must belong to the server's user
	data := filepath.Join(pgdir, "data")
	asPostgres := func(cmd *exec.Cmd) *exec.Cmd {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Dir = pgdir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C", "HOME=" + pgdir}
		return cmd
	}
	if out, err := asPostgres(exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust",
		"--no-sync", "--no-instructions", "--encoding=UTF8", "--locale=C")).CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}

	start := func(t *testing.T, ssl string) int {
		// SIGINT: fast shutdown.
		ports := startDaemon(t, "postgres ssl="+ssl, syscall.SIGINT, 1, func(ports []int) *exec.Cmd {
			return asPostgres(exec.Command(postgres, "-D", data,
				"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(ports[0]),
				"-c", "unix_socket_directories="+pgdir, "-c", "ssl="+ssl,
				"-c", "ssl_cert_file="+pki.chainFile, "-c", "ssl_key_file="+pki.keyFile,
				"-c", "fsync=off", "-c", "logging_collector=off"))
		})
		return ports[0]
	}

	// Each subtest's server stops when the subtest ends: they share the cluster.
	t.Run("ssl on", func(t *testing.T) {
		port := start(t, "on")
		target := "127.0.0.1:" + strconv.Itoa(port)
		dmAssertChain(t, probeDaemon(t, pki, "postgres", target), pki, target)
	})
	t.Run("ssl off", func(t *testing.T) {
		port := start(t, "off")
		dmAssertRefused(t, probeDaemon(t, pki, "postgres", "127.0.0.1:"+strconv.Itoa(port)), "answered 'N' to SSLRequest")
	})
}

// TestDaemonSlapd: the LDAP StartTLS extended operation against OpenLDAP's
// slapd, and a slapd without TLS settings answering it with an error code.
func TestDaemonSlapd(t *testing.T) {
	t.Parallel()
	dmNeedRoot(t)
	slapd := daemonBinary(t, "slapd", "/usr/sbin/slapd")
	dir := daemonDir(t)
	pki := dmWritePKI(t, dir, 0, 0)

	start := func(name string, pki *daemonPKI) int {
		d := dmMkdir(t, filepath.Join(dir, name), 0o755, 0, 0)
		conf := fmt.Sprintf("pidfile %[1]s/slapd.pid\nargsfile %[1]s/slapd.args\n", d)
		if pki != nil {
			conf += fmt.Sprintf("TLSCertificateFile %s\nTLSCertificateKeyFile %s\n", pki.chainFile, pki.keyFile)
		}
		path := dmWriteFile(t, filepath.Join(d, "slapd.conf"), []byte(conf), 0o644, 0, 0)
		// -d keeps slapd in the foreground. 127.0.0.1 rather than localhost:
		// LDAP clients may canonicalise localhost to the machine's name.
		ports := startDaemon(t, "slapd "+name, syscall.SIGTERM, 1, func(ports []int) *exec.Cmd {
			return exec.Command(slapd, "-f", path, "-h", "ldap://"+dmLoopback(ports[0])+"/", "-d", "stats")
		})
		return ports[0]
	}
	tlsPort := start("tls", pki)
	plainPort := start("plain", nil)

	t.Run("starttls", func(t *testing.T) {
		target := dmLoopback(tlsPort)
		dmAssertChain(t, probeDaemon(t, pki, "ldap", target), pki, target)
	})
	t.Run("without tls", func(t *testing.T) {
		dmAssertRefused(t, probeDaemon(t, pki, "ldap", dmLoopback(plainPort)), "LDAP result code")
	})
}

// TestDaemonVsftpd: FTP AUTH TLS against vsftpd, and a vsftpd with
// ssl_enable=NO refusing it.
func TestDaemonVsftpd(t *testing.T) {
	t.Parallel()
	dmNeedRoot(t)
	vsftpd := daemonBinary(t, "vsftpd", "/usr/sbin/vsftpd")
	dmUser(t, "nobody")
	dir := daemonDir(t)
	pki := dmWritePKI(t, dir, 0, 0)
	empty := dmMkdir(t, filepath.Join(dir, "empty"), 0o555, 0, 0) // vsftpd's secure_chroot_dir

	start := func(name string, pki *daemonPKI) int {
		ports := startDaemon(t, "vsftpd "+name, syscall.SIGTERM, 1, func(ports []int) *exec.Cmd {
			return exec.Command(vsftpd, dmWriteFile(t, filepath.Join(dir, name+".conf"), []byte(vsftpdConf(ports[0], empty, pki)), 0o600, 0, 0))
		})
		return ports[0]
	}
	tlsPort := start("tls", pki)
	plainPort := start("plain", nil)

	t.Run("auth tls", func(t *testing.T) {
		target := "localhost:" + strconv.Itoa(tlsPort)
		dmAssertChain(t, probeDaemon(t, pki, "ftp", target), pki, target)
	})
	t.Run("without tls", func(t *testing.T) {
		dmAssertRefused(t, probeDaemon(t, pki, "ftp", "localhost:"+strconv.Itoa(plainPort)), "530")
	})
}

// vsftpdConf is a standalone vsftpd configuration listening on port, with
// AUTH TLS when pki is not nil. No seccomp sandbox or namespace isolation:
// containers often refuse them, and they do not matter to the greeting.
func vsftpdConf(port int, emptyDir string, pki *daemonPKI) string {
	conf := fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=NO
local_enable=YES
pam_service_name=vsftpd
write_enable=NO
xferlog_enable=NO
syslog_enable=NO
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
nopriv_user=nobody
secure_chroot_dir=%s
`, port, emptyDir)
	if pki == nil {
		return conf + "ssl_enable=NO\n"
	}
	return conf + fmt.Sprintf("ssl_enable=YES\nrsa_cert_file=%s\nrsa_private_key_file=%s\nssl_ciphers=HIGH\n", pki.chainFile, pki.keyFile)
}

// TestDaemonMariaDB: the MySQL protocol's SSLRequest against MariaDB, and a
// MariaDB started with --skip-ssl that does not offer SSL.
func TestDaemonMariaDB(t *testing.T) {
	t.Parallel()
	dmNeedRoot(t)
	mariadbd := daemonBinary(t, "mariadbd", "/usr/sbin/mariadbd", "/usr/sbin/mysqld")
	uid, gid := dmUser(t, "mysql")
	dir := daemonDir(t)
	pki := dmWritePKI(t, dir, uid, gid) // mariadbd reads its key as the mysql user

	start := func(name string, pki *daemonPKI) int {
		d := dmMkdir(t, filepath.Join(dir, name), 0o700, uid, gid)
		// No system tables (mariadb-install-db takes seconds): without grant
		// tables the server still greets and negotiates SSL.
		args := []string{"--no-defaults", "--user=mysql", "--datadir=" + d,
			"--socket=" + filepath.Join(d, "mysqld.sock"), "--pid-file=" + filepath.Join(d, "mysqld.pid"),
			"--bind-address=127.0.0.1",
			"--skip-grant-tables", "--skip-name-resolve", "--skip-log-bin",
			"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M"}
		if pki != nil {
			args = append(args, "--ssl-cert="+pki.chainFile, "--ssl-key="+pki.keyFile)
		} else {
			args = append(args, "--skip-ssl")
		}
		ports := startDaemon(t, "mariadbd "+name, syscall.SIGTERM, 1, func(ports []int) *exec.Cmd {
			return exec.Command(mariadbd, append(args, "--port="+strconv.Itoa(ports[0]))...)
		})
		return ports[0]
	}
	tlsPort := start("tls", pki)
	plainPort := start("plain", nil)

	t.Run("ssl", func(t *testing.T) {
		target := "127.0.0.1:" + strconv.Itoa(tlsPort)
		dmAssertChain(t, probeDaemon(t, pki, "mysql", target), pki, target)
	})
	t.Run("skip-ssl", func(t *testing.T) {
		dmAssertRefused(t, probeDaemon(t, pki, "mysql", "127.0.0.1:"+strconv.Itoa(plainPort)), "does not offer SSL")
	})
}
