package revocation

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/outbound"
	"github.com/certwatch/certwatch/source"
)

// fetchOCSP asks e's responders in turn, until one gives a verified
// answer, and stores it; when none does, e keeps its last answer while it
// is valid and is retried after its first URL's backoff.
func (c *Checker) fetchOCSP(ctx context.Context, client *outbound.Client, cfg config.Fetch, e *ocspEntry) {
	// The CertID uses SHA-1, as responders expect (RFC 5019); only the
	// serial of the certificate is needed.
	req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: e.serial}, e.issuer, nil)
	if err != nil {
		now := time.Now()
		retry := c.recordFailure(MethodOCSP, e.urls[0], source.Errorf(source.ClassConfig, "building the OCSP request: %v", err), now)
		c.setOCSPRetry(e, retry)
		return
	}
	var retry time.Time
	for i, u := range e.urls {
		now := time.Now()
		if until := c.inBackoff(MethodOCSP, u, now); !until.IsZero() {
			if i == 0 {
				retry = until
			}
			continue
		}
		if i > 0 {
			if c.reserve(ctx, hostOf(u)) != nil {
				break
			}
		}
		a, err := c.askOCSP(ctx, client, u, req, e)
		now = time.Now()
		if err != nil {
			if ctx.Err() != nil {
				break // shutting down: not the responder's failure
			}
			r := c.recordFailure(MethodOCSP, u, err, now)
			if i == 0 {
				retry = r
			}
			continue
		}
		c.recordSuccess(MethodOCSP, u, now)
		c.mu.Lock()
		e.answer, e.has = a, true
		e.refreshAt = refreshAt(cfg, now, a.NextUpdate)
		e.expiresAt = e.refreshAt
		if a.NextUpdate.IsZero() {
			e.expiresAt = now.Add(time.Duration(cfg.MaxRefresh))
		} else if a.NextUpdate.After(e.expiresAt) {
			e.expiresAt = a.NextUpdate
		}
		e.retryAt = time.Time{}
		c.mu.Unlock()
		return
	}
	if retry.IsZero() {
		retry = time.Now().Add(backoff(cfg, 1))
	}
	c.setOCSPRetry(e, retry)
}

func (c *Checker) setOCSPRetry(e *ocspEntry, retry time.Time) {
	c.mu.Lock()
	e.retryAt = retry
	c.mu.Unlock()
}

// askOCSP posts req to url and verifies the answer about e's certificate.
func (c *Checker) askOCSP(ctx context.Context, client *outbound.Client, url string, req []byte, e *ocspEntry) (Answer, error) {
	resp, err := client.Post(ctx, url, "application/ocsp-request", req, maxOCSPResponse)
	if err != nil {
		return Answer{}, err
	}
	now := time.Now()
	r, err := verifyOCSP(resp.Body, &x509.Certificate{SerialNumber: e.serial}, e.issuer, now)
	if err != nil {
		return Answer{}, fmt.Errorf("%s: %w", url, err)
	}
	if !r.NextUpdate.IsZero() && r.NextUpdate.Before(now) {
		return Answer{}, source.Errorf(source.ClassStale, "%s: OCSP response expired at %s", url, r.NextUpdate.UTC().Format(time.RFC3339))
	}
	return answerOf(r, MethodOCSP, url), nil
}
