// Package files is the source that finds certificates in files: PEM bundles
// (certificates mixed with keys and other blocks), DER, PKCS#12/PFX, Java
// keystores and kubeconfig files, named by paths, directories (walked
// recursively, symlinks followed, loops cut) and globs with "**". A cache
// keyed by each file's identity (device, inode, size, modification and
// change time where the platform has them) means an unchanged file is
// neither re-read nor re-parsed.
//
// Walking and reading happen in passes that run in the background (pass.go):
// a scrape starts one and answers at its deadline with what the cache holds
// then, so a slow tree or a hung mount never holds the answer.
package files

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/decode"
)

// Source reads the file groups of one configuration. Build a new one on
// every configuration change; pass the previous Cache to keep what was read.
type Source struct {
	logger  *slog.Logger
	groups  []group
	maxSize int64
	cache   *Cache
	shard   shard.Shard

	// overlapWarned holds the pairs of groups already named in a warning
	// about a file both reach.
	overlapWarned sync.Map

	// Test hooks: run before a file is opened and before a directory is
	// listed, so tests can make either slow or hang.
	beforeOpen func(path string)
	beforeList func(dir string)

	watch *sourceWatch // watch.go: inotify or polling
}

type group struct {
	index    int // position in the configuration's files list
	cfg      config.FileGroup
	walkKeys []string // one per path: what identifies its walk in the cache
	verify   source.VerifyParams
	password []byte // nil when no password_file
	loadErr  error  // the group's CA or password file is unreadable
	optsKey  string // what, besides a file's identity, its cached parse depends on
}

// New compiles the file groups of a configuration. Paths and exclude
// patterns are made absolute and clean, so that a file's target label is the
// same whatever the working directory and the spelling of --config.file.
func New(cfg *config.Config, cache *Cache, logger *slog.Logger) *Source {
	s := &Source{logger: logger, maxSize: int64(cfg.Global.MaxFileSize), cache: cache, shard: cfg.Shard}
	configDir := "."
	if cfg.Path != "" {
		configDir = filepath.Dir(cfg.Path)
	}
	for i, gc := range cfg.Files {
		gc.Paths = absolutePaths(gc.Paths, "")
		gc.Exclude = absolutePaths(gc.Exclude, configDir)
		g := group{index: i, cfg: gc, verify: source.VerifyParams{RootsID: "system"}}
		for _, p := range gc.Paths {
			g.walkKeys = append(g.walkKeys, p+"\x00"+strings.Join(gc.Exclude, "\x00"))
		}
		if gc.CAFile != "" {
			ca, err := source.LoadCAFile(gc.CAFile)
			if err != nil {
				g.loadErr = source.WithClass(source.ClassConfig, fmt.Errorf("reading ca_file %s: %w", gc.CAFile, err))
			} else {
				g.verify = ca.VerifyParams()
			}
		}
		g.verify.Revocation = gc.Revocation
		if gc.PasswordFile != "" {
			data, err := os.ReadFile(gc.PasswordFile)
			if err != nil {
				g.loadErr = source.WithClass(source.ClassConfig, fmt.Errorf("reading password_file %s: %w", gc.PasswordFile, err))
			} else {
				line, _, _ := strings.Cut(string(data), "\n")
				g.password = []byte(strings.TrimRight(line, "\r"))
			}
		}
		// The certificate limit decides what a file's parse gives: a reload
		// that changes it must re-read unchanged files too.
		g.optsKey = g.verify.RootsID + "|" + hashPassword(g.password) + "|" + strconv.Itoa(cfg.Global.MaxCertificatesPerPlace)
		s.groups = append(s.groups, g)
	}
	s.initWatch(cfg)
	return s
}

// absolutePaths returns paths cleaned and absolute. The configuration has
// already joined relative paths to its directory, which may itself be
// relative to the working directory. A relative exclude pattern is taken
// against base (the configuration's directory), except one starting with
// "**", which matches anywhere.
func absolutePaths(paths []string, base string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		switch {
		case p == "", strings.HasPrefix(p, "**"):
		case base != "" && !filepath.IsAbs(p):
			p = filepath.Join(base, p)
			fallthrough
		default:
			if abs, err := filepath.Abs(p); err == nil {
				p = abs
			}
		}
		out = append(out, p)
	}
	return out
}

// Groups returns how many file groups the configuration has: the skipped
// counts that Collect returns have one value per group, in this order.
func (s *Source) Groups() int { return len(s.groups) }

func (s *Source) failure(g *group, path string, err error) source.Finding {
	s.logger.Warn("Reading certificate file failed", "kind", source.KindFile, "target", path,
		"class", source.ClassOf(err), "err", err)
	return s.failed(g, path, err)
}

func (s *Source) failed(g *group, path string, err error) source.Finding {
	return source.Finding{Place: source.Place{Source: source.KindFile, Target: path, Labels: g.cfg.Labels}, Verify: g.verify, Err: err}
}

// refresh brings the cached outcome of one file up to date: a stat, and a
// read and parse only when the file's identity changed.
func (s *Source) refresh(path string, g *group) { s.refreshOwned(path, g, nil) }

// refreshOwned is refresh for a read that may have lost its file to an
// earlier group meanwhile (owns reports whether it still has it; nil: it
// always does): the outcome is then not stored, so that a file reached by
// two groups ends up cached with the options of the group it is reported
// under, whichever read finishes last.
func (s *Source) refreshOwned(path string, g *group, owns func() bool) {
	put := func(e cached) {
		if owns == nil || owns() {
			s.cache.put(path, e)
		}
	}
	testStats.Add(1)
	st, err := os.Stat(path)
	if err != nil {
		put(cached{optsKey: g.optsKey, failed: true, entries: failedEntry(source.WithClass(source.Infer(err, source.ClassUnknown), err))})
		return
	}
	if !st.Mode().IsRegular() { // replaced since discovery, by a FIFO for instance: never opened
		put(cached{optsKey: g.optsKey, failed: true, entries: failedEntry(notRegular(path, st))})
		return
	}
	id := identityOf(st)
	id.refs = s.restatRefs(path, g.optsKey) // a kubeconfig's referenced files (kubeconfig.go)
	if s.cache.fresh(path, id, g.optsKey) {
		return
	}
	entries, container, refs, err := s.loadWithRefs(path, st.Size(), g.password)
	id.refs = refs
	if err != nil {
		// Failures are cached too: a junk file is not re-parsed every scrape.
		// A file without certificates is cached as such, not as nothing, so
		// that findings can still report it when it is named explicitly.
		entries = failedEntry(err)
	}
	put(cached{id: id, optsKey: g.optsKey, entries: entries, container: container})
}

func failedEntry(err error) []decode.Entry { return []decode.Entry{{Err: err}} }

// claimingExtensions are the file names that say "certificate (or CRL)
// inside": a walked file with one of them that cannot be read is an error,
// where a walked file without one is skipped (see findings).
var claimingExtensions = map[string]bool{
	".crt": true, ".pem": true, ".cer": true, ".der": true, ".p12": true, ".pfx": true,
	".jks": true, ".jceks": true, ".keystore": true, ".kubeconfig": true, ".crl": true,
}

func claimsCertificate(path string) bool {
	base := filepath.Base(path)
	return claimingExtensions[strings.ToLower(filepath.Ext(base))] || strings.EqualFold(base, "kubeconfig")
}

// findings turns the cached outcome of one file into its findings. skipped
// is true when a file found by a walk or a glob is left out: one holding no
// certificate or CRL but well-formed (a key, a CSR), or one that neither claims a
// certificate by its name nor holds a certificate container (an OpenSSL
// .cnf, a serial file, a README), readable or not.
func (s *Source) findings(g *group, path string, c cached, explicit bool) (out []source.Finding, skipped bool) {
	out = make([]source.Finding, 0, len(c.entries))
	for _, e := range c.entries {
		if e.Err != nil && len(e.Certs) == 0 && len(e.CRLs) == 0 && e.Key == "" {
			if !explicit && (errors.Is(e.Err, decode.ErrNoCertificates) || !c.container && !claimsCertificate(path)) {
				s.logger.Debug("Skipping file without certificates", "target", path, "class", source.ClassOf(e.Err))
				return nil, true
			}
			out = append(out, s.failure(g, path, e.Err))
			continue
		}
		f := source.Finding{
			Place:      source.Place{Source: source.KindFile, Target: path, Key: e.Key, Labels: g.cfg.Labels},
			Certs:      e.Certs,
			KeyPublics: e.KeyPublics,
			CRLs:       e.CRLs,
			Verify:     g.verify,
			Err:        e.Err,
		}
		if e.Err != nil {
			s.logger.Warn("Certificate file partly unreadable", "kind", source.KindFile, "target", path,
				"key", e.Key, "class", source.ClassOf(e.Err), "err", e.Err)
		}
		out = append(out, f)
	}
	return out, false
}

// Counters of the files stat'ed, opened and parsed, for tests to tell a
// cache hit (and, watching, that nothing was stat'ed).
var testLoads, testParses, testStats atomic.Int64

// load reads and parses one file, refusing files over the size cap.
// container says whether the content is a certificate container even though
// it may not parse: certificate PEM blocks, a keystore, a kubeconfig.
func (s *Source) load(path string, size int64, password []byte) (entries []decode.Entry, container bool, err error) {
	entries, container, _, err = s.loadWithRefs(path, size, password)
	return entries, container, err
}

// loadWithRefs is load, also returning the identities of the files a
// kubeconfig referred to (kubeconfig.go), "" for any other file.
func (s *Source) loadWithRefs(path string, size int64, password []byte) (entries []decode.Entry, container bool, refs string, err error) {
	if size > s.maxSize {
		return nil, false, "", source.Errorf(source.ClassTooLarge, "file is %d bytes, over the %d-byte limit (global.max_file_size)", size, s.maxSize)
	}
	testLoads.Add(1)
	if s.beforeOpen != nil {
		s.beforeOpen(path)
	}
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return nil, false, "", source.WithClass(source.Infer(err, source.ClassUnknown), err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil, false, "", notRegular(path, st)
	}
	data, err := io.ReadAll(io.LimitReader(f, s.maxSize+1))
	if err != nil {
		return nil, false, "", source.WithClass(source.Infer(err, source.ClassUnknown), fmt.Errorf("reading: %w", err))
	}
	if int64(len(data)) > s.maxSize { // it grew after the stat
		return nil, false, "", source.Errorf(source.ClassTooLarge, "file is over the %d-byte limit (global.max_file_size)", s.maxSize)
	}
	testParses.Add(1)
	refReader := s.refReader(path)
	entries, err = decode.DecodeFile(data, password, refReader.read)
	refs = refReader.refs()
	container = len(entries) > 0 || source.ClassOf(err) == source.ClassWrongPassword || looksLikeContainer(data)
	clear(data) // the file may hold private keys
	return entries, container, refs, err
}

var certificateMarkers = [][]byte{[]byte("-----BEGIN CERTIFICATE"), []byte("-----BEGIN TRUSTED CERTIFICATE"),
	[]byte("-----BEGIN X509 CERTIFICATE"), []byte("-----BEGIN X509 CRL")}

// looksLikeContainer tells content that means to hold certificates (or
// CRLs) even when it does not parse: PEM certificate or CRL blocks or a Java
// keystore's magic.
func looksLikeContainer(data []byte) bool {
	if bytes.HasPrefix(data, []byte{0xfe, 0xed, 0xfe, 0xed}) || bytes.HasPrefix(data, []byte{0xce, 0xce, 0xce, 0xce}) { // JKS, JCEKS
		return true
	}
	for _, m := range certificateMarkers {
		if bytes.Contains(data, m) {
			return true
		}
	}
	return false
}

func notRegular(path string, st os.FileInfo) error {
	return source.Errorf(source.ClassParse, "%s is not a regular file (%s)", path, st.Mode().Type())
}

func hashPassword(p []byte) string {
	if p == nil {
		return "none"
	}
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:8])
}

// identity is what tells that a file changed without reading it (see
// identityOf in the platform files).
type identity struct {
	dev, ino uint64
	size     int64
	mtimeNs  int64
	ctimeNs  int64  // a chmod or a rename over the file also counts
	refs     string // a kubeconfig's referenced files, as they were read (kubeconfig.go)
}
