// Package spiretest runs a real SPIRE deployment for certwatch's SPIFFE
// integration tests: spire-server and spire-agent v1.13.3, started as child
// processes of the test on 127.0.0.1 and unix sockets only, with their data in
// temporary folders, and stopped when the test ends.
//
// The package owns those processes, their configuration and data, and the
// spire-server command-line calls that change a server's state (join tokens,
// registration entries, federation relationships). It does not talk to the
// Workload API itself: tests use go-spiffe's workloadapi client with
// Agent.Addr, as certwatch's SPIFFE source does.
//
// The binaries are built once by scripts/spire-tools.sh into
// ${CERTWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/certwatch/tools}/spire-v1.13.3/;
// $CERTWATCH_SPIRE_BIN overrides that folder. When they are missing,
// StartServer fails the test and says how to build them, unless
// CERTWATCH_SKIP_SPIRE_TESTS=1 is set, in which case it skips the test.
//
// Servers keep their data in SQLite and their keys in memory; agents attest
// with a join token, keep their keys and SVID on disk (so Agent.Stop and
// Agent.Start bring back the same agent without a new token), and attest
// workloads with the unix attestor. Entries for the test process itself use
// the selector from UIDSelector and the agent's ID as parent. To keep tests
// short, servers reload their entry cache every second and agents synchronise
// with their server every second (SPIRE's default is 5 s for both).
//
//	func TestSVID(t *testing.T) {
//		s := spiretest.StartServer(t, spiretest.ServerOptions{TrustDomain: "a.test"})
//		a := spiretest.StartAgent(t, s)
//		s.CreateEntry(t, spiretest.Entry{
//			SPIFFEID:  "spiffe://a.test/certwatch",
//			ParentID:  a.ID(),
//			Selectors: []string{spiretest.UIDSelector()},
//		})
//		x509ctx, err := workloadapi.FetchX509Context(ctx, workloadapi.WithAddr(a.Addr()))
//		// ...
//	}
package spiretest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/certwatch/certwatch/internal/childproc"
	"github.com/certwatch/certwatch/internal/testtools"
)

const (
	// SPIREVersion is the SPIRE release the harness runs; it names the
	// folder scripts/spire-tools.sh builds into.
	SPIREVersion = "v1.13.3"
	// BinEnv names a folder holding spire-server and spire-agent,
	// overriding the default cache folder.
	BinEnv = "CERTWATCH_SPIRE_BIN"
	// SkipEnv, set to 1, makes StartServer skip the test when the binaries
	// are missing instead of failing it.
	SkipEnv = "CERTWATCH_SKIP_SPIRE_TESTS"

	readyTimeout   = 30 * time.Second
	stopTimeout    = 10 * time.Second
	commandTimeout = 30 * time.Second
	startAttempts  = 3         // new ports after "address already in use"
	logTailBytes   = 256 << 10 // per process, printed when a test fails
	syncInterval   = "1s"      // agent sync and server entry cache reload
	joinTokenTTL   = 600       // seconds
	agentTTL       = "1h"      // agents' own SVIDs
)

// BinDir returns the folder the harness takes the binaries from:
// $CERTWATCH_SPIRE_BIN, or the folder scripts/spire-tools.sh builds into.
func BinDir() string { return testtools.CachedToolDir(BinEnv, "spire-"+SPIREVersion) }

// binaries checks that both programs are there, failing or skipping the test.
func binaries(t testing.TB) string {
	t.Helper()
	return testtools.RequireBinaries(t, BinDir(), "scripts/spire-tools.sh", BinEnv, SkipEnv, "SPIRE", "spire-server", "spire-agent")
}

// UIDSelector is the unix workload attestor's selector for processes of the
// test's user, "unix:uid:<uid>": an entry with it identifies the test process.
func UIDSelector() string { return "unix:uid:" + strconv.Itoa(os.Getuid()) }

// ServerOptions configure StartServer. Zero values take SPIRE's defaults.
type ServerOptions struct {
	// TrustDomain is the server's trust domain, such as "a.test"; empty
	// means "example.test".
	TrustDomain string
	// X509SVIDTTL is default_x509_svid_ttl (SPIRE's default is 1h): the
	// lifetime of X.509 SVIDs whose entry sets none, and of the server's
	// own SVID, which serves the agent API. SPIRE enforces no minimum, but
	// at 1 s the server's SVID expires before agents can attest; 5 s still
	// works. For short workload SVIDs prefer Entry.X509SVIDTTL, which
	// touches nothing else. (Agents' own SVIDs last 1h whatever this is.)
	X509SVIDTTL time.Duration
	// CATTL is ca_ttl (SPIRE's default is 24h), the lifetime of the
	// server's signing CA, which also caps SVID lifetimes.
	CATTL time.Duration
	// BundleEndpoint serves the trust domain's bundle for federation on
	// 127.0.0.1 with the https_spiffe profile (see BundleEndpointURL).
	BundleEndpoint bool
}

// Server is a running spire-server. Its methods may be called from several
// goroutines.
type Server struct {
	td         string
	bin        string
	dir        string // data, configuration and log
	socketPath string // admin API
	port       int    // agent API on 127.0.0.1
	bundlePort int    // 0 without a bundle endpoint
	proc       *proc
}

// StartServer runs spire-server on free loopback ports with its data in a
// temporary folder, waits until it reports healthy, and stops it when the
// test ends. When the test failed, its log is printed with t.Log.
func StartServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	if opts.TrustDomain == "" {
		opts.TrustDomain = "example.test"
	}
	s := &Server{td: opts.TrustDomain, bin: binaries(t), dir: t.TempDir()}
	s.socketPath = filepath.Join(shortDir(t), "server.sock")
	if err := os.MkdirAll(s.path("data"), 0o700); err != nil {
		t.Fatalf("spiretest: %v", err)
	}
	t.Cleanup(func() {
		if s.proc != nil {
			s.proc.Stop(stopTimeout)
		}
		if t.Failed() && s.proc != nil {
			logTail(t, s.proc)
		}
	})

	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		ports := testtools.FreeLoopbackPorts(t, 2)
		s.port = ports[0]
		if opts.BundleEndpoint {
			s.bundlePort = ports[1]
		}
		conf := s.path("server.conf")
		writeFile(t, conf, []byte(s.config(opts)))
		s.proc = spawn(t, s.bin, "spire-server", s.path("server.log"), s.dir, "run", "-config", conf)
		if err = waitHealthy(s.proc, s.socketPath); err == nil {
			return s
		}
		s.proc.Stop(stopTimeout)
		if !s.proc.PortTaken() {
			break
		}
	}
	t.Fatalf("spiretest: spire-server for %s: %v", s.td, err)
	return nil
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Server) config(opts ServerOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server {\n")
	fmt.Fprintf(&b, "  bind_address = %q\n  bind_port = %d\n", "127.0.0.1", s.port)
	fmt.Fprintf(&b, "  socket_path = %q\n", s.socketPath)
	fmt.Fprintf(&b, "  trust_domain = %q\n", s.td)
	fmt.Fprintf(&b, "  data_dir = %q\n", s.path("data"))
	fmt.Fprintf(&b, "  log_level = %q\n", "DEBUG")
	if opts.X509SVIDTTL > 0 {
		fmt.Fprintf(&b, "  default_x509_svid_ttl = %q\n", opts.X509SVIDTTL.String())
	}
	// Agents' own SVIDs would otherwise take default_x509_svid_ttl too: a
	// short one expires before an agent renews it, and a join-token agent
	// cannot attest again, so it shuts down.
	fmt.Fprintf(&b, "  agent_ttl = %q\n", agentTTL)
	if opts.CATTL > 0 {
		fmt.Fprintf(&b, "  ca_ttl = %q\n", opts.CATTL.String())
	}
	if opts.BundleEndpoint {
		fmt.Fprintf(&b, "  federation {\n    bundle_endpoint {\n")
		fmt.Fprintf(&b, "      address = %q\n      port = %d\n", "127.0.0.1", s.bundlePort)
		fmt.Fprintf(&b, "      profile \"https_spiffe\" {}\n    }\n  }\n")
	}
	fmt.Fprintf(&b, "  experimental {\n    cache_reload_interval = %q\n  }\n", syncInterval)
	fmt.Fprintf(&b, "}\n\nplugins {\n")
	fmt.Fprintf(&b, "  DataStore \"sql\" {\n    plugin_data {\n      database_type = %q\n      connection_string = %q\n    }\n  }\n",
		"sqlite3", s.path("data/datastore.sqlite3"))
	fmt.Fprintf(&b, "  KeyManager \"memory\" {\n    plugin_data {}\n  }\n")
	fmt.Fprintf(&b, "  NodeAttestor \"join_token\" {\n    plugin_data {}\n  }\n")
	fmt.Fprintf(&b, "}\n")
	return b.String()
}

// TrustDomain returns the server's trust domain name, such as "a.test".
func (s *Server) TrustDomain() string { return s.td }

// ID returns the server's own SPIFFE ID, spiffe://<trust domain>/spire/server.
func (s *Server) ID() string { return "spiffe://" + s.td + "/spire/server" }

// Address returns the agent API's address, 127.0.0.1:<port>.
func (s *Server) Address() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// BundleEndpointURL returns the federation bundle endpoint,
// https://127.0.0.1:<port>, or "" when the server was started without one.
func (s *Server) BundleEndpointURL() string {
	if s.bundlePort == 0 {
		return ""
	}
	return "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.bundlePort))
}

// BundleEndpointID returns the SPIFFE ID the bundle endpoint authenticates
// as under the https_spiffe profile: the server's own ID.
func (s *Server) BundleEndpointID() string { return s.ID() }

// BundlePEM returns the trust domain's current X.509 authorities as PEM
// certificates (spire-server bundle show).
func (s *Server) BundlePEM(t testing.TB) []byte {
	t.Helper()
	out := s.cli(t, "bundle", "show", "-format", "pem")
	if !bytes.Contains(out, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatalf("spiretest: bundle show for %s printed no certificate: %q", s.td, out)
	}
	return out
}

// JoinToken generates a join token for one agent, valid for 10 minutes.
func (s *Server) JoinToken(t testing.TB) string {
	t.Helper()
	out := s.cli(t, "token", "generate", "-ttl", strconv.Itoa(joinTokenTTL))
	// "Token: <uuid>", then a warning that the token names no SPIFFE ID
	// (the agent's ID then derives from the token).
	for line := range strings.Lines(string(out)) {
		if token, ok := strings.CutPrefix(strings.TrimSpace(line), "Token: "); ok && token != "" {
			return token
		}
	}
	t.Fatalf("spiretest: unexpected token generate output: %q", out)
	return ""
}

// Entry is a registration entry for Server.CreateEntry.
type Entry struct {
	SPIFFEID string // spiffe://<trust domain>/...
	ParentID string // usually Agent.ID()
	// Selectors are type:value pairs, such as UIDSelector().
	Selectors []string
	// X509SVIDTTL overrides the server's default_x509_svid_ttl for this
	// entry; it is sent in whole seconds (at least 1 s). SPIRE accepts any
	// positive value, but it backdates NotBefore by 10 s and agents renew
	// an SVID once about half of NotAfter-NotBefore has passed (±10 %
	// jitter), so below about 13 s an agent renews on every
	// synchronisation (each second here). 20 s renews after about 5 s.
	X509SVIDTTL time.Duration
	// Hint tells workloads with several SVIDs which one to use.
	Hint string
	// FederatesWith lists trust domains ("b.test" or "spiffe://b.test")
	// whose bundles are delivered with the SVID. The server must already
	// hold their bundles (Federate).
	FederatesWith []string
	// DNSNames become DNS SANs of the SVID.
	DNSNames []string
}

// CreateEntry registers e and returns the new entry's ID.
func (s *Server) CreateEntry(t testing.TB, e Entry) string {
	t.Helper()
	args := []string{"entry", "create", "-output", "json", "-spiffeID", e.SPIFFEID, "-parentID", e.ParentID}
	for _, sel := range e.Selectors {
		args = append(args, "-selector", sel)
	}
	if e.X509SVIDTTL > 0 {
		args = append(args, "-x509SVIDTTL", strconv.Itoa(max(1, int(e.X509SVIDTTL.Round(time.Second)/time.Second))))
	}
	if e.Hint != "" {
		args = append(args, "-hint", e.Hint)
	}
	for _, td := range e.FederatesWith {
		if !strings.HasPrefix(td, "spiffe://") {
			td = "spiffe://" + td
		}
		args = append(args, "-federatesWith", td)
	}
	for _, dns := range e.DNSNames {
		args = append(args, "-dns", dns)
	}
	out := s.cli(t, args...)
	var resp struct {
		Results []struct {
			Status struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"status"`
			Entry struct {
				ID string `json:"id"`
			} `json:"entry"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.Results) != 1 {
		t.Fatalf("spiretest: unexpected entry create output (%v): %s", err, out)
	}
	r := resp.Results[0]
	if r.Status.Code != 0 || r.Entry.ID == "" {
		t.Fatalf("spiretest: entry create %s: code %d: %s", e.SPIFFEID, r.Status.Code, r.Status.Message)
	}
	return r.Entry.ID
}

// DeleteEntry deletes the registration entry with the given ID.
func (s *Server) DeleteEntry(t testing.TB, id string) {
	t.Helper()
	s.cli(t, "entry", "delete", "-entryID", id)
}

// Federate makes s trust other's trust domain: a federation relationship
// that fetches other's bundle from its bundle endpoint (profile
// https_spiffe, authenticated as other.BundleEndpointID()), bootstrapped
// with other's current bundle so that it holds immediately. Entries on s
// may then federate with other's trust domain. other must have been started
// with BundleEndpoint.
func (s *Server) Federate(t testing.TB, other *Server) {
	t.Helper()
	if other.BundleEndpointURL() == "" {
		t.Fatalf("spiretest: %s has no bundle endpoint (ServerOptions.BundleEndpoint)", other.td)
	}
	bundle := filepath.Join(s.dir, "federated-"+other.td+".pem")
	writeFile(t, bundle, other.BundlePEM(t))
	s.cli(t, "federation", "create",
		"-trustDomain", other.td,
		"-bundleEndpointURL", other.BundleEndpointURL(),
		"-bundleEndpointProfile", "https_spiffe",
		"-endpointSpiffeID", other.BundleEndpointID(),
		"-trustDomainBundlePath", bundle,
		"-trustDomainBundleFormat", "pem")
}

// WaitBundleFetched waits until s has fetched other's bundle from other's
// bundle endpoint at least once since Federate, which proves the
// relationship works beyond its bootstrap bundle. SPIRE reloads federation
// relationships every 10 s, so this takes up to about 10 s. It reads s's
// log ("Bundle refreshed" for other's trust domain) and fails the test after
// 30 s.
func (s *Server) WaitBundleFetched(t testing.TB, other *Server) {
	t.Helper()
	want := []byte("trust_domain=" + other.td)
	deadline := time.Now().Add(readyTimeout)
	for {
		data, err := os.ReadFile(s.proc.LogPath)
		if err != nil {
			t.Fatalf("spiretest: %v", err)
		}
		for line := range bytes.Lines(data) {
			if bytes.Contains(line, []byte(`msg="Bundle refreshed"`)) &&
				slices.ContainsFunc(bytes.Fields(line), func(f []byte) bool { return bytes.Equal(f, want) }) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("spiretest: %s has not fetched %s's bundle from %s after %v",
				s.td, other.td, other.BundleEndpointURL(), readyTimeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// cli runs a spire-server subcommand against the server's admin socket and
// returns its standard output; a failure fails the test with its output.
func (s *Server) cli(t testing.TB, args ...string) []byte {
	t.Helper()
	// -socketPath belongs after the subcommand's name ("entry create").
	n := 1
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		n = 2
	}
	full := append(append(append([]string{}, args[:n]...), "-socketPath", s.socketPath), args[n:]...)
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "spire-server"), full...)
	cmd.Dir = s.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("spiretest: spire-server %s: %v\n%s%s", strings.Join(args[:n], " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// Agent is a spire-agent attested to a Server. Stop and Start must not
// overlap; the other methods may be called from several goroutines.
type Agent struct {
	server     *Server
	id         string
	dir        string // data, configuration and log
	socketPath string // Workload API

	mu   sync.Mutex
	proc *proc
}

// StartAgent runs a spire-agent that attests to s with a fresh join token
// and serves the Workload API on a unix socket, waits until that socket
// answers health checks, and stops the agent when the test ends. When the
// test failed, its log is printed with t.Log.
func StartAgent(t testing.TB, s *Server) *Agent {
	t.Helper()
	token := s.JoinToken(t)
	a := &Agent{
		server:     s,
		id:         "spiffe://" + s.td + "/spire/agent/join_token/" + token,
		dir:        t.TempDir(),
		socketPath: filepath.Join(shortDir(t), "agent.sock"),
	}
	t.Cleanup(func() {
		a.mu.Lock()
		p := a.proc
		a.mu.Unlock()
		if p != nil {
			p.Stop(stopTimeout)
			if t.Failed() {
				logTail(t, p)
			}
		}
	})
	writeFile(t, a.path("bootstrap.pem"), s.BundlePEM(t))
	writeFile(t, a.path("agent.conf"), []byte(a.config(token)))
	a.Start(t)
	return a
}

func (a *Agent) path(name string) string { return filepath.Join(a.dir, name) }

func (a *Agent) config(token string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "agent {\n")
	fmt.Fprintf(&b, "  data_dir = %q\n", a.path("data"))
	fmt.Fprintf(&b, "  log_level = %q\n", "DEBUG")
	fmt.Fprintf(&b, "  server_address = %q\n  server_port = %d\n", "127.0.0.1", a.server.port)
	fmt.Fprintf(&b, "  socket_path = %q\n", a.socketPath)
	fmt.Fprintf(&b, "  trust_bundle_path = %q\n", a.path("bootstrap.pem"))
	fmt.Fprintf(&b, "  trust_domain = %q\n", a.server.td)
	fmt.Fprintf(&b, "  join_token = %q\n", token)
	fmt.Fprintf(&b, "  experimental {\n    sync_interval = %q\n  }\n", syncInterval)
	fmt.Fprintf(&b, "}\n\nplugins {\n")
	fmt.Fprintf(&b, "  NodeAttestor \"join_token\" {\n    plugin_data {}\n  }\n")
	fmt.Fprintf(&b, "  KeyManager \"disk\" {\n    plugin_data {\n      directory = %q\n    }\n  }\n", a.path("data"))
	fmt.Fprintf(&b, "  WorkloadAttestor \"unix\" {\n    plugin_data {}\n  }\n")
	fmt.Fprintf(&b, "}\n")
	return b.String()
}

// ID returns the agent's SPIFFE ID,
// spiffe://<trust domain>/spire/agent/join_token/<token>: the parent of
// entries for workloads on this agent.
func (a *Agent) ID() string { return a.id }

// SocketPath returns the absolute path of the Workload API's unix socket.
func (a *Agent) SocketPath() string { return a.socketPath }

// Addr returns the Workload API's address for go-spiffe's
// workloadapi.WithAddr: "unix://" + SocketPath().
func (a *Agent) Addr() string { return "unix://" + a.socketPath }

// Stop stops the agent process; the Workload API stops answering. The
// agent's keys and SVID stay in its data folder for Start.
func (a *Agent) Stop(t testing.TB) {
	t.Helper()
	a.mu.Lock()
	p := a.proc
	a.proc = nil
	a.mu.Unlock()
	if p == nil {
		t.Fatalf("spiretest: agent %s is not running", a.id)
	}
	p.Stop(stopTimeout)
}

// Start starts the agent again after Stop, on the same socket and with the
// same identity: it reuses the SVID it keeps on disk rather than attesting
// again (the join token was spent on the first start). It waits until the
// Workload API answers health checks.
func (a *Agent) Start(t testing.TB) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc != nil {
		t.Fatalf("spiretest: agent %s is already running", a.id)
	}
	p := spawn(t, a.server.bin, "spire-agent", a.path("agent.log"), a.dir, "run", "-config", a.path("agent.conf"))
	a.proc = p
	if err := waitHealthy(p, a.socketPath); err != nil {
		t.Fatalf("spiretest: spire-agent %s: %v", a.id, err)
	}
}

// waitHealthy polls the gRPC health service on a SPIRE unix socket (the
// server's admin socket or the agent's Workload API socket, as
// spire-server/spire-agent healthcheck do) until it reports SERVING, the
// process exits, or readyTimeout passes.
func waitHealthy(p *proc, socketPath string) error {
	deadline := time.Now().Add(readyTimeout)
	var last error = errors.New("socket not there yet")
	for {
		if _, err := os.Stat(socketPath); err == nil {
			last = checkHealth(socketPath)
			if last == nil {
				return nil
			}
		}
		select {
		case <-p.Done:
			return fmt.Errorf("exited: %v (last health check: %v)", p.Err, last)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %v: %v", readyTimeout, last)
		}
	}
}

func checkHealth(socketPath string) error {
	conn, err := grpc.NewClient("unix://"+socketPath, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health: %v", resp.GetStatus())
	}
	return nil
}

// proc is one run of a SPIRE process.
type proc = childproc.Process

// spawn starts bin/name with args in dir, appending its output to logPath.
func spawn(t testing.TB, bin, name, logPath, dir string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Dir = dir
	p, err := childproc.Spawn(cmd, name, logPath, "=== spiretest")
	if err != nil {
		t.Fatalf("spiretest: starting %s: %v", name, err)
	}
	return p
}

// logTail prints the end of the process's log with t.Log.
func logTail(t testing.TB, p *proc) {
	t.Helper()
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		t.Logf("spiretest: %s log: %v", p.Name, err)
		return
	}
	if len(data) > logTailBytes {
		data = data[len(data)-logTailBytes:]
	}
	t.Logf("spiretest: %s log (%s):\n%s", p.Name, p.LogPath, data)
}

// shortDir makes a folder for unix sockets directly under the system's
// temporary folder, removed when the test ends: t.TempDir() paths include the
// test's name and can exceed the 108-byte limit of a socket's path.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "spire")
	if err != nil {
		t.Fatalf("spiretest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("spiretest: %v", err)
	}
}
