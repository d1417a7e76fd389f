package inventory

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/certwatch/certwatch/source"
)

// Environment of the browser test.
const (
	// skipBrowserEnv=1 skips the browser test where Chromium cannot be
	// installed; otherwise a missing chromium fails it.
	skipBrowserEnv = "CERTWATCH_SKIP_BROWSER_TESTS"
	// artifactsEnv names a directory for the screenshots (a temporary one
	// otherwise).
	artifactsEnv = "CERTWATCH_ARTIFACTS"
	// updateScreenshotEnv=1 replaces docs/inventory.png, the README's
	// picture of the inventory, with the one this run takes.
	updateScreenshotEnv = "CERTWATCH_UPDATE_SCREENSHOT"
)

// TestBrowser drives Debian's headless Chromium through the inventory over
// a fixture of about a thousand places: the list, sorting by a column,
// filtering by text and by verdict, a place's page and a PEM download, and
// the hostile names, which must never run as script.
func TestBrowser(t *testing.T) {
	if os.Getenv(skipBrowserEnv) == "1" {
		t.Skipf("%s=1", skipBrowserEnv)
	}
	exe, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not on PATH: run .ci/install-test-deps.sh as root (Debian's chromium package), or set %s=1 to skip this test", skipBrowserEnv)
	}
	artifacts := os.Getenv(artifactsEnv)
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	const bulk = 1000
	f := newFixture(t, bulk)
	srv := httptest.NewServer(f.mux)
	t.Cleanup(srv.Close)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
			chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1440, 900),
			chromedp.UserDataDir(t.TempDir()))...)
	t.Cleanup(cancelAlloc)
	var dialogs atomic.Int32
	var dialogText atomic.Value
	var ctx context.Context
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithListener(func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
			dialogText.Store(d.Message)
			go func() { // dismiss it, or the page hangs
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}()
		}
	}))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a deadline
		t.Fatalf("starting chromium: %v", err)
	}

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, stop := context.WithTimeout(ctx, time.Minute)
		defer stop()
		if err := chromedp.Do(c, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		c, stop := context.WithTimeout(ctx, time.Minute)
		defer stop()
		v, err := chromedp.Run(c, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	evalList := func(expr string) []string {
		t.Helper()
		c, stop := context.WithTimeout(ctx, time.Minute)
		defer stop()
		v, err := chromedp.Run(c, chromedp.Evaluate[[]string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	shot := func(name string) string {
		t.Helper()
		c, stop := context.WithTimeout(ctx, time.Minute)
		defer stop()
		png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(artifacts, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// waitFor waits until the page that a click or a form led to has loaded:
	// its URL has the query and its document is complete. Evaluating while
	// the old page goes away fails; that is retried.
	waitFor := func(what, query string) {
		t.Helper()
		expr := fmt.Sprintf(`location.search.includes(%q) && document.readyState === "complete"`, query)
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, stop := context.WithTimeout(ctx, 5*time.Second)
			ok, err := chromedp.Run(c, chromedp.Evaluate[bool](expr))
			stop()
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the page with %q did not load: %v", what, query, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	rowsSel := `[...document.querySelectorAll("table.list tbody tr[class^='u-']")]`
	cells := func(col string) []string {
		return evalList(rowsSel + `.map(r => r.querySelector("td.` + col + `").innerText.trim())`)
	}

	// The list: the first 100 of every place, the soonest to expire first.
	do("the list", chromedp.Navigate(srv.URL+PagePath), chromedp.WaitVisible(`table.list`))
	if n := len(cells("c-place")); n != DefaultPageSize {
		t.Fatalf("%d rows shown, want %d", n, DefaultPageSize)
	}
	if total := eval(`document.querySelector(".stat .n").innerText`); total != thousands(f.places()) {
		t.Errorf("total %q, want %s", total, thousands(f.places()))
	}
	if first := cells("c-place")[0]; !strings.Contains(first, "expired.pem") {
		t.Errorf("first row %q, want the expired place", first)
	}
	shot("list.png")

	// Sort by subject: a click on the column header, then again for the
	// reverse order.
	do("sort by subject", chromedp.Click(`th.c-subject a`))
	waitFor("sorted by subject", "sort=subject_cn")
	subjects := cells("c-subject")
	if !slices.IsSorted(subjects) || eval(`document.querySelector("th.c-subject").getAttribute("aria-sort")`) != "ascending" {
		t.Errorf("subjects after sorting: %q", subjects[:5])
	}
	do("reverse the sort", chromedp.Click(`th.c-subject a`))
	waitFor("sorted by subject, descending", "order=desc")
	desc := cells("c-subject")
	if !slices.IsSortedFunc(desc, func(a, b string) int { return strings.Compare(b, a) }) || desc[0] == subjects[0] {
		t.Errorf("subjects after reversing: %q", desc[:5])
	}

	// Filter by text through the form.
	do("search", chromedp.Navigate(srv.URL+PagePath), chromedp.WaitVisible(`input[name=q]`),
		chromedp.SetValue(`input[name=q]`, "host-0042."), chromedp.Click(`.filters button[type=submit]`))
	waitFor("searched", "q=host-0042")
	if got := cells("c-subject"); len(got) != 1 || !strings.HasPrefix(got[0], "host-0042.") {
		t.Errorf("search for host-0042.: %q", got)
	}

	// Filter by verdict through the form.
	do("filter by verdict", chromedp.Navigate(srv.URL+PagePath), chromedp.WaitVisible(`select[name=reason]`),
		chromedp.SetValue(`select[name=reason]`, "hostname_mismatch"), chromedp.Click(`.filters button[type=submit]`))
	waitFor("filtered", "reason=hostname_mismatch")
	if got := cells("c-reason"); len(got) != 1 || !strings.HasPrefix(got[0], "hostname_mismatch") {
		t.Errorf("verdict filter: %q", got)
	}

	// The hostile names are shown as text.
	do("hostile names", chromedp.Navigate(srv.URL+PagePath+"?sort=reason&page_size=15"), chromedp.WaitVisible(`table.list`))
	if got := cells("c-subject"); !slices.Contains(got, scriptCN) {
		t.Errorf("the script CN is not shown as text among %q", got)
	}
	// The long names wrap inside their cells: the table is no wider than
	// the page.
	if w := eval(`String(document.querySelector(".tablewrap").scrollWidth <= document.querySelector(".tablewrap").clientWidth)`); w != "true" {
		t.Error("long names widen the table beyond the page")
	}
	readme := shot("list-reasons.png")

	// A place's page, reached from its row, and its PEM downloads.
	do("open a place", chromedp.Navigate(srv.URL+PagePath+"?source=endpoint&reason=ok"), chromedp.WaitVisible(`table.list`),
		chromedp.Click(`table.list tbody a.target`))
	waitFor("the place", "target=")
	if got := eval(`document.querySelector("h1").innerText`); got != f.okAddr {
		t.Errorf("place page title %q, want %s", got, f.okAddr)
	}
	body := eval(`document.body.innerText`)
	for _, want := range []string{"TLS", "Cipher suite", "Probe now", "Download PEM", "serverAuth", "intermediate"} {
		if !strings.Contains(body, want) {
			t.Errorf("the place's page lacks %q", want)
		}
	}
	shot("place-endpoint.png")
	links := evalList(`[...document.querySelectorAll("a.button[download]")].map(a => a.href)`)
	if len(links) != 2 {
		t.Fatalf("%d PEM links, want 2", len(links))
	}
	// Download each through the browser, as a click on its link does, and
	// parse what arrives. (The pages allow no script to fetch anything.)
	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	for i := range links {
		do("download PEM", chromedp.Click(fmt.Sprintf(`#pem-%d`, i)))
		want := []string{"localhost", f.chain.Intermediate.Cert.Subject.CommonName}[i]
		var got *x509.Certificate
		for deadline := time.Now().Add(30 * time.Second); got == nil; time.Sleep(50 * time.Millisecond) {
			names, _ := filepath.Glob(filepath.Join(downloads, "certificate-*.pem"))
			for _, name := range names {
				data, _ := os.ReadFile(name)
				if block, _ := pem.Decode(data); block != nil && block.Type == "CERTIFICATE" {
					if c, err := x509.ParseCertificate(block.Bytes); err == nil && c.Subject.CommonName == want {
						got = c
					}
				}
			}
			if got == nil && time.Now().After(deadline) {
				t.Fatalf("PEM %d (%s) was not downloaded: %q", i, want, names)
			}
		}
	}

	// The hostile place's own page.
	v := placeValues(source.KindFile, filepath.Join(f.dir, "pki/hostile.pem"), "")
	do("the hostile place", chromedp.Navigate(srv.URL+PlacePath+"?"+v.Encode()), chromedp.WaitVisible(`h1`))
	if !strings.Contains(eval(`document.body.innerText`), scriptCN) {
		t.Error("the hostile place's page does not show its CN as text")
	}
	shot("place-hostile.png")

	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened (last: %v): a name from a certificate ran as script", n, dialogText.Load())
	}
	t.Logf("screenshots in %s", artifacts)

	if os.Getenv(updateScreenshotEnv) == "1" {
		data, err := os.ReadFile(readme)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "inventory.png"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("docs/inventory.png updated from %s", readme)
	}
}
