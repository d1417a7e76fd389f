//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
)

// The file tree: directories d0000, d0001, ... of filesPerDir files each, so
// that N files are the first N/filesPerDir directories and the trees for
// 1,000, 10,000 and 100,000 files share their files. Generated once into the
// cache folder and reused; a directory is complete when its marker exists.
const (
	treeVersion = 1
	filesPerDir = 100
	dirMarker   = ".complete"
)

// The mix, by index modulo 20 (see fileContent):
//
//	 0-11  60%  ECDSA P-256 leaf + its intermediate (fullchain.pem)      2 certs
//	12-15  20%  RSA-2048 leaf + its RSA intermediate                    2 certs
//	16      5%  ECDSA leaf + intermediate + root                        3 certs
//	17      5%  ECDSA leaf + intermediate + private key (haproxy PEM)  2 certs + key
//	18      5%  a root CA alone (a ca.crt beside the leaf)              1 cert
//	19      5%  a trust bundle: both roots and two intermediates        4 certs
var certsByClass = [20]int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 4}

func certsInFile(i int) int { return certsByClass[i%20] }

func certsInFirst(n int) int {
	total := 0
	for i := range n {
		total += certsInFile(i)
	}
	return total
}

type tree struct {
	dir string
	pki *benchPKI
}

type treeManifest struct {
	Version int       `json:"version"`
	PKI     string    `json:"pki"` // fingerprint of the ECDSA root the tree chains to
	Created time.Time `json:"created"`
}

// openTree returns the tree in cache, its PKI created when missing, and the
// tree wiped when it was made with another PKI or layout.
func openTree(tb *benchTB, cache string) *tree {
	t := &tree{dir: filepath.Join(cache, fmt.Sprintf("files-v%d", treeVersion)), pki: loadOrCreatePKI(tb, filepath.Join(cache, "pki"))}
	sum := sha256.Sum256(t.pki.ecRoot.Cert.Raw)
	want := treeManifest{Version: treeVersion, PKI: hex.EncodeToString(sum[:8])}
	var have treeManifest
	data, err := os.ReadFile(filepath.Join(t.dir, "manifest.json"))
	if err == nil && json.Unmarshal(data, &have) == nil && have.Version == want.Version && have.PKI == want.PKI &&
		time.Since(have.Created) < leafLifetime/2 {
		return t
	}
	if err == nil {
		logf("the file tree in %s is stale: regenerating it", t.dir)
	}
	if err := os.RemoveAll(t.dir); err != nil {
		fatalf("%v", err)
	}
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		fatalf("%v", err)
	}
	want.Created = time.Now()
	data, _ = json.Marshal(want)
	if err := os.WriteFile(filepath.Join(t.dir, "manifest.json"), data, 0o644); err != nil {
		fatalf("%v", err)
	}
	return t
}

func (t *tree) rootsFile() string { return filepath.Join(t.dir, "..", "pki", "roots.pem") }

func dirName(d int) string { return fmt.Sprintf("d%04d", d) }

func (t *tree) fileName(i int) string {
	return filepath.Join(t.dir, dirName(i/filesPerDir), fmt.Sprintf("f%06d.pem", i))
}

// dirs returns the directories holding the first n files.
func (t *tree) dirs(n int) []string {
	var out []string
	for d := range (n + filesPerDir - 1) / filesPerDir {
		out = append(out, filepath.Join(t.dir, dirName(d)))
	}
	return out
}

// files returns the paths of the first n files, sorted as the source sorts them.
func (t *tree) files(n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = t.fileName(i)
	}
	sort.Strings(out)
	return out
}

// ensure generates the missing directories among the first n files, in
// parallel. Most of the time is signing: ECDSA is quick, RSA-2048 is ~1 ms.
func (t *tree) ensure(tb *benchTB, n int) {
	if n%filesPerDir != 0 {
		fatalf("file counts must be multiples of %d", filesPerDir)
	}
	var todo []int
	for d := range n / filesPerDir {
		if _, err := os.Stat(filepath.Join(t.dir, dirName(d), dirMarker)); err != nil {
			todo = append(todo, d)
		}
	}
	if len(todo) == 0 {
		return
	}
	start := time.Now()
	logf("generating %d certificate files into %s (once; reused by later runs)", len(todo)*filesPerDir, t.dir)
	var done atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range next {
				dir := filepath.Join(t.dir, dirName(d))
				if err := os.MkdirAll(dir, 0o755); err != nil {
					fatalf("%v", err)
				}
				for i := d * filesPerDir; i < (d+1)*filesPerDir; i++ {
					data, mode := t.fileContent(tb, i)
					if err := os.WriteFile(t.fileName(i), data, mode); err != nil {
						fatalf("%v", err)
					}
				}
				if err := os.WriteFile(filepath.Join(dir, dirMarker), nil, 0o644); err != nil {
					fatalf("%v", err)
				}
				if n := done.Add(1); n%100 == 0 {
					logf("  %d/%d directories", n, len(todo))
				}
			}
		}()
	}
	for _, d := range todo {
		next <- d
	}
	close(next)
	wg.Wait()
	logf("generated %d files in %.1f s", len(todo)*filesPerDir, time.Since(start).Seconds())
}

// fileContent is the content of file i (see certsByClass); a fresh call
// issues a fresh leaf (a renewal: new serial, new validity).
func (t *tree) fileContent(tb *benchTB, i int) ([]byte, os.FileMode) {
	p := t.pki
	name := fmt.Sprintf("svc-%06d.bench.example", i)
	switch class := i % 20; {
	case class < 12:
		leaf, issuer := p.leaf(tb, i, false, name, nil)
		return testpki.PEM(leaf, issuer), 0o644
	case class < 16:
		leaf, issuer := p.leaf(tb, i, true, name, nil)
		return testpki.PEM(leaf, issuer), 0o644
	case class == 16:
		leaf, issuer := p.leaf(tb, i, false, name, nil)
		return testpki.PEM(leaf, issuer, p.ecRoot), 0o644
	case class == 17:
		leaf, issuer := p.leaf(tb, i, false, name, nil)
		return append(testpki.PEM(leaf, issuer), testpki.KeyPEM(tb, leaf.Key)...), 0o600
	case class == 18:
		if (i/20)%2 == 0 {
			return testpki.PEM(p.ecRoot), 0o644
		}
		return testpki.PEM(p.rsaRoot), 0o644
	default:
		return testpki.PEM(p.ecRoot, p.rsaRoot, p.ecInts[0], p.rsaInts[0]), 0o644
	}
}

// rewrite replaces file i with a renewed certificate the way renewal tools
// do (write a temporary file, rename it over the old one).
func (t *tree) rewrite(path string, data []byte, mode os.FileMode) {
	tmp := filepath.Join(t.dir, ".rewrite-"+filepath.Base(path)) // outside the scanned folders
	if err := os.WriteFile(tmp, data, mode); err != nil {
		fatalf("%v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		fatalf("%v", err)
	}
}
