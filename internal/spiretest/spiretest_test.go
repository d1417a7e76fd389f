package spiretest

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fetchTimeout bounds waiting for an entry to reach the agent: the server
// reloads its entry cache and the agent synchronises every second.
const fetchTimeout = 30 * time.Second

// fetch returns the agent's X.509 context for the test process, retrying
// until the agent has an identity for it.
func fetch(t *testing.T, a *Agent) *workloadapi.X509Context {
	t.Helper()
	deadline := time.Now().Add(fetchTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		x509ctx, err := workloadapi.FetchX509Context(ctx, workloadapi.WithAddr(a.Addr()))
		cancel()
		if err == nil {
			return x509ctx
		}
		if time.Now().After(deadline) {
			t.Fatalf("no X.509 context from %s after %v: %v", a.Addr(), fetchTimeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fetchErr fetches once and returns the error the Workload API answers with.
func fetchErr(t *testing.T, a *Agent) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	x509ctx, err := workloadapi.FetchX509Context(ctx, workloadapi.WithAddr(a.Addr()))
	if err == nil {
		t.Fatalf("fetch from %s succeeded with SVIDs %v, want an error", a.Addr(), svidIDs(x509ctx))
	}
	return err
}

func svidIDs(x509ctx *workloadapi.X509Context) []string {
	var ids []string
	for _, s := range x509ctx.SVIDs {
		ids = append(ids, s.ID.String())
	}
	return ids
}

// parseBundle parses a server's PEM bundle as the authorities of td.
func parseBundle(t *testing.T, s *Server) *x509bundle.Bundle {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString(s.TrustDomain())
	b, err := x509bundle.Parse(td, s.BundlePEM(t))
	if err != nil {
		t.Fatalf("bundle of %s: %v", td, err)
	}
	return b
}

func sameAuthorities(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return x.Equal(y) })
}

func TestX509SVID(t *testing.T) {
	t.Parallel()
	const ttl = 10 * time.Minute
	s := StartServer(t, ServerOptions{TrustDomain: "a.test", X509SVIDTTL: ttl})
	a := StartAgent(t, s)
	const id = "spiffe://a.test/certwatch"
	s.CreateEntry(t, Entry{
		SPIFFEID:  id,
		ParentID:  a.ID(),
		Selectors: []string{UIDSelector()},
		Hint:      "internal",
		DNSNames:  []string{"certwatch.a.test"},
	})

	x509ctx := fetch(t, a)
	if len(x509ctx.SVIDs) != 1 {
		t.Fatalf("got SVIDs %v, want only %s", svidIDs(x509ctx), id)
	}
	svid := x509ctx.SVIDs[0]
	if svid.ID.String() != id || svid.Hint != "internal" {
		t.Errorf("SVID %s hint %q, want %s hint %q", svid.ID, svid.Hint, id, "internal")
	}
	if got := svid.Certificates[0].DNSNames; !slices.Equal(got, []string{"certwatch.a.test"}) {
		t.Errorf("DNS names %v, want [certwatch.a.test]", got)
	}
	// Verify against the bundle the server shows, not only the one the
	// agent delivered with the SVID.
	bundle := parseBundle(t, s)
	gotID, chains, err := x509svid.Verify(svid.Certificates, bundle)
	if err != nil {
		t.Fatalf("SVID does not verify against %s's bundle: %v", s.TrustDomain(), err)
	}
	if gotID.String() != id || len(chains) == 0 {
		t.Errorf("verified as %s with %d chains", gotID, len(chains))
	}
	delivered, err := x509ctx.Bundles.GetX509BundleForTrustDomain(bundle.TrustDomain())
	if err != nil || !sameAuthorities(delivered.X509Authorities(), bundle.X509Authorities()) {
		t.Errorf("delivered bundle differs from bundle show (%v)", err)
	}
	if got := svid.Certificates[0].NotAfter.Sub(svid.Certificates[0].NotBefore); got != ttl+10*time.Second {
		t.Errorf("lifetime %v, want the server's TTL %v + 10 s backdating", got, ttl)
	}
}

// watcher records the X.509 contexts the Workload API streams.
type watcher struct {
	updates chan update
	mu      sync.Mutex
	errs    []error
}

type update struct {
	at   time.Time
	svid *x509svid.SVID
}

func (w *watcher) OnX509ContextUpdate(c *workloadapi.X509Context) {
	if len(c.SVIDs) > 0 {
		w.updates <- update{at: time.Now(), svid: c.SVIDs[0]}
	}
}

func (w *watcher) OnX509ContextWatchError(err error) {
	w.mu.Lock()
	w.errs = append(w.errs, err)
	w.mu.Unlock()
}

func TestRotation(t *testing.T) {
	t.Parallel()
	// The shortest TTL whose SVID SPIRE's agent does not renew on the next
	// synchronisation: it renews after about half of NotAfter-NotBefore,
	// and NotBefore is backdated by 10 s.
	const ttl = 20 * time.Second
	const backdate = 10 * time.Second
	s := StartServer(t, ServerOptions{TrustDomain: "rotate.test"})
	a := StartAgent(t, s)
	const id = "spiffe://rotate.test/certwatch"
	s.CreateEntry(t, Entry{SPIFFEID: id, ParentID: a.ID(), Selectors: []string{UIDSelector()}, X509SVIDTTL: ttl})
	fetch(t, a) // the entry has reached the agent

	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{updates: make(chan update, 16)}
	done := make(chan error, 1)
	go func() { done <- workloadapi.WatchX509Context(ctx, w, workloadapi.WithAddr(a.Addr())) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) && status.Code(err) != codes.Canceled {
			t.Errorf("watch: %v", err)
		}
	})

	timeout := time.After(3 * ttl)
	var first update
	select {
	case first = <-w.updates:
	case <-timeout:
		t.Fatal("no first X.509 context")
	}
	leaf := first.svid.Certificates[0]
	if first.svid.ID.String() != id {
		t.Fatalf("SVID %s, want %s", first.svid.ID, id)
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	issued := leaf.NotBefore.Add(backdate)
	t.Logf("first SVID: serial %x issued %s (NotBefore %s + 10 s), NotAfter %s, lifetime %v; received %s",
		leaf.SerialNumber, issued.Format(time.RFC3339), leaf.NotBefore.Format(time.RFC3339),
		leaf.NotAfter.Format(time.RFC3339), lifetime, first.at.Format(time.RFC3339Nano))
	if lifetime != ttl+backdate {
		t.Errorf("lifetime %v, want %v (TTL + 10 s backdating)", lifetime, ttl+backdate)
	}

	for {
		var next update
		select {
		case next = <-w.updates:
		case <-timeout:
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("no rotation within %v of the first SVID (watch errors: %v)", 3*ttl, w.errs)
		}
		nl := next.svid.Certificates[0]
		if nl.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			continue // the same SVID again
		}
		sinceNB, sinceIssue := next.at.Sub(leaf.NotBefore), next.at.Sub(issued)
		t.Logf("rotation: new serial %x issued %s, NotAfter %s; received %s: %v after the old one was issued (%.0f%% of its %v TTL), %.0f%% of its NotBefore-NotAfter lifetime, %v before it expired",
			nl.SerialNumber, nl.NotBefore.Add(backdate).Format(time.RFC3339), nl.NotAfter.Format(time.RFC3339),
			next.at.Format(time.RFC3339Nano), sinceIssue.Round(time.Millisecond),
			100*float64(sinceIssue)/float64(ttl), ttl, 100*float64(sinceNB)/float64(lifetime),
			leaf.NotAfter.Sub(next.at).Round(time.Millisecond))
		if !nl.NotAfter.After(leaf.NotAfter) {
			t.Errorf("new NotAfter %s is not after the old %s", nl.NotAfter, leaf.NotAfter)
		}
		if !next.at.Before(leaf.NotAfter) {
			t.Errorf("the new SVID arrived at %s, after the old one expired at %s", next.at, leaf.NotAfter)
		}
		if next.svid.ID.String() != id {
			t.Errorf("new SVID %s, want %s", next.svid.ID, id)
		}
		return
	}
}

func TestFederation(t *testing.T) {
	t.Parallel()
	sa := StartServer(t, ServerOptions{TrustDomain: "a.test", BundleEndpoint: true})
	sb := StartServer(t, ServerOptions{TrustDomain: "b.test"})
	if got, want := sa.BundleEndpointID(), "spiffe://a.test/spire/server"; got != want {
		t.Errorf("BundleEndpointID %s, want %s", got, want)
	}
	sb.Federate(t, sa)
	ab := StartAgent(t, sb)
	const id = "spiffe://b.test/certwatch"
	sb.CreateEntry(t, Entry{
		SPIFFEID:      id,
		ParentID:      ab.ID(),
		Selectors:     []string{UIDSelector()},
		FederatesWith: []string{"a.test"},
	})

	x509ctx := fetch(t, ab)
	if len(x509ctx.SVIDs) != 1 || x509ctx.SVIDs[0].ID.String() != id {
		t.Fatalf("got SVIDs %v, want only %s", svidIDs(x509ctx), id)
	}
	aBundle := parseBundle(t, sa)
	got, err := x509ctx.Bundles.GetX509BundleForTrustDomain(aBundle.TrustDomain())
	if err != nil {
		t.Fatalf("b.test's agent delivered no a.test bundle: %v", err)
	}
	if !sameAuthorities(got.X509Authorities(), aBundle.X509Authorities()) {
		t.Errorf("a.test bundle from b.test's agent differs from a.test's own")
	}
	if _, err := x509ctx.Bundles.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString("b.test")); err != nil {
		t.Errorf("no b.test bundle: %v", err)
	}
	// An SVID of a.test verifies against what b.test's workload received.
	aa := StartAgent(t, sa)
	sa.CreateEntry(t, Entry{SPIFFEID: "spiffe://a.test/peer", ParentID: aa.ID(), Selectors: []string{UIDSelector()}})
	peer := fetch(t, aa).SVIDs[0]
	if _, _, err := x509svid.Verify(peer.Certificates, x509ctx.Bundles); err != nil {
		t.Errorf("a.test's SVID does not verify against b.test's workload bundles: %v", err)
	}
	sb.WaitBundleFetched(t, sa)
}

func TestNoEntry(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOptions{TrustDomain: "none.test"})
	a := StartAgent(t, s)
	err := fetchErr(t, a)
	t.Logf("Workload API without an entry: code %v: %v", status.Code(err), err)
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("code %v, want PermissionDenied", status.Code(err))
	}
}

func TestAgentRestart(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOptions{TrustDomain: "restart.test"})
	a := StartAgent(t, s)
	const id = "spiffe://restart.test/certwatch"
	s.CreateEntry(t, Entry{SPIFFEID: id, ParentID: a.ID(), Selectors: []string{UIDSelector()}})
	before := fetch(t, a)

	a.Stop(t)
	err := fetchErr(t, a)
	_, statErr := os.Stat(a.SocketPath())
	t.Logf("Workload API of a stopped agent: code %v: %v (socket: %v)", status.Code(err), err, statErr)
	if status.Code(err) != codes.Unavailable {
		t.Errorf("code %v, want Unavailable", status.Code(err))
	}

	start := time.Now()
	a.Start(t)
	after := fetch(t, a)
	t.Logf("restarted agent served an SVID %v after Start", time.Since(start).Round(time.Millisecond))
	if after.SVIDs[0].ID.String() != id {
		t.Errorf("after restart: SVID %s, want %s", after.SVIDs[0].ID, id)
	}
	// The same agent: it loaded its SVID from disk instead of attesting
	// again (its join token was spent).
	runs := strings.Split(readFile(t, a.path("agent.log")), "=== spiretest ")
	last := runs[len(runs)-1]
	if len(runs) != 3 || !strings.Contains(last, `msg="SVID loaded"`) || !strings.Contains(last, `spiffe_id="`+a.ID()+`"`) {
		t.Errorf("the restarted agent did not reload its SVID %s (%d runs in its log)", a.ID(), len(runs)-1)
	}
	t.Logf("workload SVID before Stop: serial %x, after Start: serial %x",
		before.SVIDs[0].Certificates[0].SerialNumber, after.SVIDs[0].Certificates[0].SerialNumber)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
