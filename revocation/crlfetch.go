package revocation

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/crl"
	"github.com/certwatch/certwatch/outbound"
	"github.com/certwatch/certwatch/source"
)

// fetchCRL fetches e's CRL, revalidating what it holds, and keeps the
// parsed list when its signature verifies against e's issuer. A failure
// keeps the last list.
func (c *Checker) fetchCRL(ctx context.Context, client *outbound.Client, cfg config.Fetch, e *crlEntry) {
	now := time.Now()
	if until := c.inBackoff(MethodCRL, e.url, now); !until.IsZero() {
		c.mu.Lock()
		e.retryAt = until
		c.mu.Unlock()
		return
	}
	c.mu.RLock()
	header := http.Header{}
	if e.list != nil {
		if e.etag != "" {
			header.Set("If-None-Match", e.etag)
		}
		if e.lastModified != "" {
			header.Set("If-Modified-Since", e.lastModified)
		}
	}
	c.mu.RUnlock()

	resp, err := client.Get(ctx, e.url, header, int64(cfg.MaxCRLSize))
	var list *crl.List
	if err == nil && resp.Status != http.StatusNotModified {
		list, err = parseCRL(resp.Body, e)
	}
	now = time.Now()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		retry := c.recordFailure(MethodCRL, e.url, err, now)
		c.mu.Lock()
		e.retryAt = retry
		c.mu.Unlock()
		return
	}
	c.recordSuccess(MethodCRL, e.url, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if list != nil {
		e.list = list
		e.etag, e.lastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	}
	e.fetchedAt = now
	e.refreshAt = refreshAt(cfg, now, e.list.CRL.NextUpdate)
	e.retryAt = time.Time{}
}

// parseCRL reads a CRL as distribution points publish it (DER; PEM is
// accepted too) and verifies it against e's issuer.
func parseCRL(body []byte, e *crlEntry) (*crl.List, error) {
	der := body
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("-----BEGIN")) {
		if b, _ := pem.Decode(bytes.TrimSpace(body)); b != nil && b.Type == "X509 CRL" {
			der = b.Bytes
		}
	}
	list, err := crl.Parse(der, e.issuer)
	if err != nil {
		return nil, source.WithClass(source.ClassParse, fmt.Errorf("%s: %w", e.url, err))
	}
	if list.CRL.Delta {
		return nil, source.Errorf(source.ClassParse, "%s: a delta CRL, which cannot answer on its own", e.url)
	}
	return list, nil
}
