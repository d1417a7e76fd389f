package spiffe

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/decode"
)

// firstAnswerTimeout is defaultFirstAnswerTimeout; tests shorten it.
var firstAnswerTimeout = defaultFirstAnswerTimeout

// Reconnection backoff after the stream breaks: doubling from the first to
// the last, with jitter, reset by every context received.
const (
	firstBackoff = 500 * time.Millisecond
	maxBackoff   = 30 * time.Second
	// defaultFirstAnswerTimeout bounds the wait for the first X.509
	// context on a new stream: an agent that accepts the connection and
	// says nothing is reported as a timeout, not as connecting forever.
	defaultFirstAnswerTimeout = 15 * time.Second
	// maxMessageBytes caps one Workload API message (gRPC's default is
	// 4 MiB; a thousand SVIDs with their bundles fit in far less).
	maxMessageBytes = 16 << 20
)

// svid is one X.509 SVID as received: its chain and the public half of its
// key. The private key is parsed only to take its public half, and the
// received bytes are wiped.
type svid struct {
	id, hint  string
	certs     []*x509.Certificate
	keyPublic crypto.PublicKey
	// bundle is the SVID's trust domain's bundle as the agent gave it with
	// the SVID: what the SVID is verified against.
	bundle   []*x509.Certificate
	pool     *x509.CertPool // bundle, as roots
	bundleID string         // bundle's content, for the inspector's cache
	err      error          // the SVID could not be read
}

// x509Context is one X.509 context received from the Workload API.
type x509Context struct {
	at    time.Time
	svids []svid
	// bundles holds each trust domain's X.509 authorities: the SVIDs' own
	// and the federated ones.
	bundles map[spiffeid.TrustDomain][]*x509.Certificate
	// own says which trust domains are the SVIDs' own (the rest are
	// federated).
	own map[spiffeid.TrustDomain]bool
}

// watcher keeps the X.509 context stream of one Workload API open.
type watcher struct {
	cfg    config.WorkloadAPI
	logger *slog.Logger

	mu        sync.Mutex
	last      *x509Context // last context received, nil before the first
	up        bool         // the stream is established and delivered a context
	failedAt  time.Time    // when the stream last went down (zero while up)
	lastErr   error        // why it is down
	errors    map[source.Class]float64
	attempted bool // a first connection attempt has ended, either way
	dialErr   error

	cancel context.CancelFunc
	done   chan struct{}
}

func newWatcher(cfg config.WorkloadAPI, logger *slog.Logger) *watcher {
	return &watcher{cfg: cfg, logger: logger.With("kind", source.KindSPIFFESVID, "target", cfg.Address),
		errors: map[source.Class]float64{}, done: make(chan struct{})}
}

func (w *watcher) start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(ctx)
}

func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

// run connects, reads the stream until it breaks, and reconnects with
// backoff until stopped.
func (w *watcher) run(ctx context.Context) {
	defer close(w.done)
	conn, err := w.dial()
	if err != nil { // an address that cannot be used; validated by config
		w.fail(err)
		return
	}
	defer conn.Close()
	client := workload.NewSpiffeWorkloadAPIClient(conn)
	backoff := firstBackoff
	for {
		received, err := w.stream(ctx, client)
		if ctx.Err() != nil {
			return
		}
		w.fail(err)
		if received {
			backoff = firstBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, maxBackoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// dial prepares the connection; gRPC connects lazily, through dialContext
// so that the socket's own error (missing, not permitted) is kept.
func (w *watcher) dial() (*grpc.ClientConn, error) {
	network, addr, err := splitAddress(w.cfg.Address)
	if err != nil {
		return nil, source.WithClass(source.ClassConfig, err)
	}
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		w.mu.Lock()
		w.dialErr = err
		w.mu.Unlock()
		return c, err
	}
	return grpc.NewClient("passthrough:///"+w.cfg.Address,
		grpc.WithTransportCredentials(insecure.NewCredentials()), // a local socket: SPIFFE's Workload API is plaintext
		grpc.WithContextDialer(dialer),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes)))
}

// splitAddress turns a Workload API address into what net.Dial takes.
func splitAddress(address string) (network, addr string, err error) {
	u, err := url.Parse(address)
	if err != nil {
		return "", "", fmt.Errorf("workload API address %q: %w", address, err)
	}
	switch u.Scheme {
	case "unix":
		p := u.Path
		if p == "" {
			p = u.Opaque
		}
		return "unix", p, nil
	case "tcp":
		return "tcp", u.Host, nil
	}
	return "", "", fmt.Errorf("workload API address %q: want unix:// or tcp://", address)
}

// stream reads X.509 contexts until the stream breaks. It reports whether
// it received any.
func (w *watcher) stream(ctx context.Context, client workload.SpiffeWorkloadAPIClient) (bool, error) {
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true"))
	defer cancel()
	// The first answer must come in time; later ones come when SPIRE
	// rotates something, which may be hours apart.
	var timedOut atomic.Bool
	firstAnswer := time.AfterFunc(firstAnswerTimeout, func() { timedOut.Store(true); cancel() })
	defer firstAnswer.Stop()
	stream, err := client.FetchX509SVID(ctx, &workload.X509SVIDRequest{})
	if err != nil {
		return false, w.classify(err, timedOut.Load())
	}
	received := false
	for {
		resp, err := stream.Recv()
		if err != nil {
			return received, w.classify(err, timedOut.Load())
		}
		if !received {
			firstAnswer.Stop()
			received = true
		}
		c := parseContext(resp)
		w.mu.Lock()
		w.last, w.up, w.lastErr, w.failedAt, w.attempted = c, true, nil, time.Time{}, true
		w.mu.Unlock()
		w.logger.Debug("X.509 context received", "svids", len(c.svids), "bundles", len(c.bundles))
	}
}

// classify gives a stream failure its class. The agent answers an
// unregistered workload with PermissionDenied ("no identity issued");
// a socket that cannot be reached keeps the dialer's own error.
func (w *watcher) classify(err error, timedOut bool) error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.PermissionDenied:
		return source.Errorf(source.ClassNoIdentity, "the agent issued no identity to certwatch (no registration entry matches it): %s", st.Message())
	case codes.Canceled:
		if timedOut { // the first answer's deadline cancelled the call
			return source.Errorf(source.ClassTimeout, "no X.509 context within %s", firstAnswerTimeout)
		}
	case codes.DeadlineExceeded:
		return source.Errorf(source.ClassTimeout, "workload API: %s", st.Message())
	case codes.Unavailable:
		w.mu.Lock()
		dialErr := w.dialErr
		w.mu.Unlock()
		if dialErr != nil {
			return source.WithClass(source.Infer(dialErr, source.ClassUnreachable), fmt.Errorf("connecting to the workload API: %w", dialErr))
		}
		return source.Errorf(source.ClassUnreachable, "workload API unavailable: %s", st.Message())
	case codes.ResourceExhausted:
		return source.Errorf(source.ClassTooLarge, "workload API: %s", st.Message())
	}
	return source.Errorf(source.ClassUnknown, "workload API: %s", strings.TrimSpace(st.Message()))
}

// fail records that the stream is down.
func (w *watcher) fail(err error) {
	class := source.ClassOf(err)
	w.mu.Lock()
	if w.up || w.failedAt.IsZero() {
		w.failedAt = time.Now()
	}
	w.up, w.lastErr, w.attempted = false, err, true
	w.errors[class]++
	w.mu.Unlock()
	w.logger.Warn("Workload API stream failed", "class", class, "err", err)
}

// parseContext reads one X.509 context. A malformed SVID or bundle is
// reported as such; the rest of the context is kept.
func parseContext(resp *workload.X509SVIDResponse) *x509Context {
	c := &x509Context{at: time.Now(), bundles: map[spiffeid.TrustDomain][]*x509.Certificate{}, own: map[spiffeid.TrustDomain]bool{}}
	seenHints := map[string]bool{}
	type bundle struct {
		certs []*x509.Certificate
		pool  *x509.CertPool
		id    string
	}
	shared := map[string]bundle{}
	for _, s := range resp.GetSvids() {
		v := svid{id: s.GetSpiffeId(), hint: s.GetHint()}
		// The Workload API says the first of several SVIDs with one hint is
		// the one to use; the others are still served, and reported.
		if v.hint != "" && seenHints[v.hint] {
			v.err = source.Errorf(source.ClassParse, "another SVID earlier in the context has the hint %q", v.hint)
		}
		seenHints[v.hint] = true
		certs, err := decode.ParseDERChain(s.GetX509Svid())
		switch {
		case err != nil:
			v.err = source.WithClass(source.ClassParse, fmt.Errorf("SVID %s: %w", v.id, err))
		case len(certs) == 0:
			v.err = source.Errorf(source.ClassParse, "SVID %s: no certificate", v.id)
		default:
			v.certs = certs
		}
		v.keyPublic = publicOf(s.GetX509SvidKey())
		clear(s.X509SvidKey) // the private key is never kept
		// SVIDs of one trust domain come with the same bundle: one parse
		// and one pool serve them all.
		b, ok := shared[string(s.GetBundle())]
		if !ok {
			b.certs = parseBundle(s.GetBundle())
			b.pool, b.id = poolOf(b.certs), bundleID(b.certs)
			shared[string(s.GetBundle())] = b
		}
		v.bundle, v.pool, v.bundleID = b.certs, b.pool, b.id
		// An SVID whose ID is malformed is still judged against the bundle
		// it came with: the inspector says why it is not a valid SVID.
		if td, err := spiffeid.TrustDomainFromString(v.id); err == nil {
			c.own[td] = true
			if _, have := c.bundles[td]; !have {
				c.bundles[td] = v.bundle
			}
		}
		c.svids = append(c.svids, v)
	}
	for name, der := range resp.GetFederatedBundles() {
		td, err := spiffeid.TrustDomainFromString(name)
		if err != nil {
			continue
		}
		if _, have := c.bundles[td]; !have {
			c.bundles[td] = parseBundle(der)
		}
	}
	return c
}

// publicOf returns the public half of a PKCS#8 private key, or nil.
func publicOf(der []byte) crypto.PublicKey {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil
	}
	if s, ok := key.(crypto.Signer); ok {
		return s.Public()
	}
	return nil
}

// parseBundle reads a bundle's concatenated DER certificates; a malformed
// one yields the certificates before it.
func parseBundle(der []byte) []*x509.Certificate {
	certs, _ := decode.ParseDERChain(der)
	return certs
}

// state returns what the watcher knows now.
func (w *watcher) state() (last *x509Context, up bool, failedAt time.Time, lastErr error, errs map[source.Class]float64, attempted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	errs = make(map[source.Class]float64, len(w.errors))
	for k, v := range w.errors {
		errs[k] = v
	}
	return w.last, w.up, w.failedAt, w.lastErr, errs, w.attempted
}
