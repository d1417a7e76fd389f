package hostile

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Allowance is how late past Prometheus' scrape timeout an answer may
// arrive and still count as in time: 10 %.
func Allowance(timeout time.Duration) time.Duration { return timeout + timeout/10 }

// Scrape GETs url as Prometheus would with the given scrape timeout (sent as
// X-Prometheus-Scrape-Timeout-Seconds, in the text format) and returns how
// long the whole answer took and its body. The client gives up after
// giveUp, so that an exporter that never answers cannot stall the soak.
func Scrape(url string, timeout, giveUp time.Duration) (time.Duration, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	client := &http.Client{Timeout: giveUp}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return time.Since(start), nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return took, nil, fmt.Errorf("reading the answer of %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return took, body, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return took, body, nil
}
