package spiffe

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// workloadAPI is a real gRPC Workload API server on a unix socket that the
// test drives: it sends the contexts it is given, refuses with a status,
// or says nothing. It covers what SPIRE cannot be made to do on demand.
type workloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	path string
	srv  *grpc.Server

	mu       sync.Mutex
	refuse   error                           // answer every stream with this status
	silent   bool                            // accept the stream and never answer
	contexts chan *workload.X509SVIDResponse // sent on every open stream
	streams  int
	noHeader int // streams opened without the Workload API security header
}

func startWorkloadAPI(t testing.TB) *workloadAPI {
	t.Helper()
	dir, err := os.MkdirTemp("", "cw-wl") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	w := &workloadAPI{path: filepath.Join(dir, "agent.sock"), contexts: make(chan *workload.X509SVIDResponse, 16)}
	w.listen(t)
	return w
}

func (w *workloadAPI) listen(t testing.TB) {
	t.Helper()
	l, err := net.Listen("unix", w.path)
	if err != nil {
		t.Fatal(err)
	}
	w.srv = grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(w.srv, w)
	go w.srv.Serve(l)
	t.Cleanup(w.srv.Stop)
}

func (w *workloadAPI) address() string { return "unix://" + w.path }

func (w *workloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream workload.SpiffeWorkloadAPI_FetchX509SVIDServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	w.mu.Lock()
	w.streams++
	if len(md.Get("workload.spiffe.io")) == 0 {
		w.noHeader++
	}
	refuse, silent := w.refuse, w.silent
	w.mu.Unlock()
	if refuse != nil {
		return refuse
	}
	if silent {
		<-stream.Context().Done()
		return nil
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case c := <-w.contexts:
			if err := stream.Send(c); err != nil {
				return err
			}
		}
	}
}

// trustDomain is a CA and what the Workload API says of its SVIDs.
type trustDomain struct {
	name string
	ca   *testpki.Cert
}

func newTrustDomain(t testing.TB, name string) trustDomain {
	return trustDomain{name: name, ca: testpki.New(t, nil, testpki.Options{CommonName: name + " CA", IsCA: true})}
}

func (td trustDomain) bundle() []byte { return td.ca.Cert.Raw }

// svid issues an X.509-SVID for id; o shapes it (URIs default to id).
func (td trustDomain) svid(t testing.TB, id, hint string, o testpki.Options) *workload.X509SVID {
	if o.URIs == nil {
		o.URIs = []string{id}
	}
	c := testpki.New(t, td.ca, o)
	key, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &workload.X509SVID{SpiffeId: id, X509Svid: c.Cert.Raw, X509SvidKey: key, Bundle: td.bundle(), Hint: hint}
}

func quickConfig(address string) *config.SPIFFE {
	return &config.SPIFFE{WorkloadAPI: []config.WorkloadAPI{{Address: address, StaleAfter: config.Duration(300 * time.Millisecond),
		RotationFraction: 0.5, Labels: map[string]string{"node": "n1"}}}}
}

// eventually polls the source until check passes.
func eventually(t *testing.T, s *Source, what string, check func(source.Result) bool) source.Result {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res := s.Scrape(context.Background())
		if check(res) {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen in 20s; last result %s", what, describe(res))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describe(res source.Result) string {
	var b strings.Builder
	for _, f := range res.Findings {
		b.WriteString("\n  " + f.Source + " " + f.Target + " " + f.Key)
		if f.Err != nil {
			b.WriteString(" err=" + string(source.ClassOf(f.Err)) + ": " + f.Err.Error())
		}
	}
	for _, s := range res.Status {
		b.WriteString("\n  " + s.Name + " " + strings.Join(s.Values, ","))
	}
	return b.String()
}

func find(res source.Result, kind, key string) *source.Finding {
	for i, f := range res.Findings {
		if f.Source == kind && f.Key == key {
			return &res.Findings[i]
		}
	}
	return nil
}

func sample(res source.Result, name string, values ...string) (float64, bool) {
	for _, s := range res.Status {
		// The configured extra labels follow the pairs asked for.
		if s.Name == name && len(s.Values) >= len(values) && slicesEqual(s.Values[:len(values)], values) {
			return s.Value, true
		}
	}
	return 0, false
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func judge(f *source.Finding) inspect.Verdict {
	return inspect.NewInspector(nil).Judge(f.Certs, f.KeyPublics, f.Verify)
}

// TestStream follows one Workload API through what the stream can do: a
// context with SVIDs (one with a hint, one malformed) and a federated
// bundle, a rotation, a break that turns stale, and recovery.
func TestStream(t *testing.T) {
	api := startWorkloadAPI(t)
	local, partner := newTrustDomain(t, "example.org"), newTrustDomain(t, "partner.test")
	const id = "spiffe://example.org/ns/payments/sa/api"
	first := api.svidContext(t, local, partner, id, time.Hour)
	api.contexts <- first

	r := NewRunner(promslog.NewNopLogger())
	defer r.Stop()
	s := r.Apply(quickConfig(api.address()))
	res := eventually(t, s, "first context", func(res source.Result) bool { return find(res, source.KindSPIFFESVID, id) != nil })

	f := find(res, source.KindSPIFFESVID, id)
	if f.Target != api.address() || f.Labels["node"] != "n1" || f.Err != nil || len(f.KeyPublics) != 1 {
		t.Fatalf("SVID place %+v", f.Place)
	}
	if v := judge(f); v.Reason != inspect.ReasonOK {
		t.Errorf("SVID verdict %s (%s)", v.Reason, v.Detail)
	}
	if h := find(res, source.KindSPIFFESVID, id+"#external"); h == nil || judge(h).Reason != inspect.ReasonOK {
		t.Errorf("the SVID with a hint is missing or not ok: %s", describe(res))
	}
	bad := find(res, source.KindSPIFFESVID, "spiffe://example.org/no-uri")
	if bad == nil || judge(bad).Reason != inspect.ReasonInvalidUsage {
		t.Errorf("the SVID without a URI name: %+v", bad)
	}
	for _, td := range []string{"example.org", "partner.test"} {
		b := findBundle(res, td)
		if b == nil || b.Key != api.address() || len(b.Certs) != 1 || judge(b).Reason != inspect.ReasonOK {
			t.Errorf("bundle of %s: %+v", td, b)
		}
	}
	if v, ok := sample(res, nameUp, api.address(), "n1"); !ok || v != 1 {
		t.Errorf("up{node=\"n1\"} = %v, %v", v, ok)
	}
	due, ok := sample(res, nameRotationDue, api.address(), id)
	leaf := f.Certs[0]
	if want := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2).Unix(); !ok || int64(due) != want {
		t.Errorf("rotation due %v, want %v", due, want)
	}
	places, dues := 0, 0
	for _, f := range res.Findings {
		if f.Key == id {
			places++
		}
	}
	for _, st := range res.Status {
		if st.Name == nameRotationDue && st.Values[1] == id {
			dues++
		}
	}
	if places != 1 || dues != 1 || !bytes.Equal(f.Certs[0].Raw, first.Svids[0].X509Svid) {
		t.Errorf("an ID sent twice: %d places, %d rotation series, want 1 each, from the first SVID", places, dues)
	}
	if api.noHeader != 0 {
		t.Errorf("%d streams without the workload.spiffe.io header", api.noHeader)
	}

	// Rotation: the new context replaces the old one.
	rotated := api.svidContext(t, local, partner, id, 2*time.Hour)
	api.contexts <- rotated
	eventually(t, s, "rotated SVID", func(res source.Result) bool {
		f := find(res, source.KindSPIFFESVID, id)
		return f != nil && len(f.Certs) > 0 && bytes.Equal(f.Certs[0].Raw, rotated.Svids[0].X509Svid)
	})

	// The agent goes away: up drops at once, the data stays, and past
	// stale_after it is marked stale with the cause.
	api.srv.Stop()
	os.Remove(api.path)
	// (The first failure is the stream's end; reconnecting then finds the
	// socket gone.)
	res = eventually(t, s, "stale data", func(res source.Result) bool {
		f := find(res, source.KindSPIFFESVID, id)
		return f != nil && source.ClassOf(f.Err) == source.ClassStale && strings.Contains(f.Err.Error(), "not_found")
	})
	if v, _ := sample(res, nameUp, api.address()); v != 0 {
		t.Errorf("up = %v after the agent stopped", v)
	}
	if f := find(res, source.KindSPIFFESVID, id); len(f.Certs) == 0 {
		t.Errorf("stale SVID: %d certificates, error %v", len(f.Certs), f.Err)
	}
	if b := findBundle(res, "partner.test"); b == nil || source.ClassOf(b.Err) != source.ClassStale {
		t.Errorf("stale bundle: %+v", b)
	}
	if n, ok := sample(res, nameErrors, api.address(), string(source.ClassNotFound)); !ok || n < 1 {
		t.Errorf("not_found errors %v, %v: %s", n, ok, describe(res))
	}

	// The agent comes back: the stream is re-established with backoff.
	api.listen(t)
	api.contexts <- rotated
	eventually(t, s, "recovery", func(res source.Result) bool {
		f := find(res, source.KindSPIFFESVID, id)
		v, _ := sample(res, nameUp, api.address())
		return f != nil && f.Err == nil && v == 1
	})
}

func findBundle(res source.Result, td string) *source.Finding {
	for i, f := range res.Findings {
		if f.Source == source.KindSPIFFEBundle && f.Target == td {
			return &res.Findings[i]
		}
	}
	return nil
}

// svidContext is a context with three SVIDs of local (the default, one
// with a hint, one without a URI name) and partner's bundle.
func (w *workloadAPI) svidContext(t *testing.T, local, partner trustDomain, id string, life time.Duration) *workload.X509SVIDResponse {
	now := time.Now()
	o := testpki.Options{NotBefore: now.Add(-time.Minute), NotAfter: now.Add(life)}
	noURI := o
	noURI.URIs, noURI.DNSNames = []string{}, []string{"api"}
	return &workload.X509SVIDResponse{
		Svids: []*workload.X509SVID{
			local.svid(t, id, "", o),
			local.svid(t, id, "external", o),
			local.svid(t, "spiffe://example.org/no-uri", "", noURI),
			local.svid(t, id, "", o), // the same ID again: one place, the first
		},
		FederatedBundles: map[string][]byte{"spiffe://partner.test": partner.bundle()},
	}
}

// TestStreamFailureClasses checks the class of each way the first
// connection can fail.
func TestStreamFailureClasses(t *testing.T) {
	firstAnswerTimeout = 500 * time.Millisecond
	defer func() { firstAnswerTimeout = defaultFirstAnswerTimeout }()
	noIdentity := startWorkloadAPI(t)
	noIdentity.refuse = status.Error(codes.PermissionDenied, "no identity issued")
	silent := startWorkloadAPI(t)
	silent.silent = true
	dir, err := os.MkdirTemp("", "cw-wl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// A socket file nobody listens on, as a crashed agent leaves it.
	deadSocket := filepath.Join(dir, "dead.sock")
	l, err := net.Listen("unix", deadSocket)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	for _, tc := range []struct {
		name, address string
		want          source.Class
	}{
		{"no registration entry", noIdentity.address(), source.ClassNoIdentity},
		{"agent says nothing", silent.address(), source.ClassTimeout},
		{"socket missing", "unix://" + filepath.Join(dir, "missing.sock"), source.ClassNotFound},
		{"nobody listening", "unix://" + deadSocket, source.ClassRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRunner(promslog.NewNopLogger())
			defer r.Stop()
			s := r.Apply(quickConfig(tc.address))
			res := eventually(t, s, string(tc.want), func(res source.Result) bool {
				return s.Ready() && len(res.Findings) == 1 && source.ClassOf(res.Findings[0].Err) == tc.want
			})
			if f := res.Findings[0]; f.Source != source.KindSPIFFESVID || f.Target != tc.address || len(f.Certs) != 0 {
				t.Errorf("finding %+v", f.Place)
			}
			if n, ok := sample(res, nameErrors, tc.address, string(tc.want)); !ok || n < 1 {
				t.Errorf("errors_total{class=%q} = %v, %v", tc.want, n, ok)
			}
		})
	}
}

// TestRunnerKeepsStreamsAcrossReloads: a reload that keeps an address keeps
// its stream and what it received; one that drops it stops it.
func TestRunnerKeepsStreamsAcrossReloads(t *testing.T) {
	api := startWorkloadAPI(t)
	local, partner := newTrustDomain(t, "example.org"), newTrustDomain(t, "partner.test")
	api.contexts <- api.svidContext(t, local, partner, "spiffe://example.org/a", time.Hour)
	r := NewRunner(promslog.NewNopLogger())
	defer r.Stop()
	s := r.Apply(quickConfig(api.address()))
	eventually(t, s, "first context", func(res source.Result) bool { return find(res, source.KindSPIFFESVID, "spiffe://example.org/a") != nil })
	cfg := quickConfig(api.address())
	cfg.WorkloadAPI[0].Labels = map[string]string{"node": "n2"}
	s2 := r.Apply(cfg)
	f := find(s2.Scrape(context.Background()), source.KindSPIFFESVID, "spiffe://example.org/a")
	if f == nil || f.Labels["node"] != "n2" {
		t.Fatalf("after a reload: %+v", f)
	}
	api.mu.Lock()
	streams := api.streams
	api.mu.Unlock()
	if streams != 1 {
		t.Errorf("%d streams opened, want the first one kept", streams)
	}
	if r.Apply(nil) != nil || len(r.watchers) != 0 {
		t.Error("a configuration without spiffe left watchers running")
	}
}
