//go:build linux

package files

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// watchEnv is a watching Source over a test directory, with what it did
// counted: directories listed (walks) and files stat'ed.
type watchEnv struct {
	t      *testing.T
	dir    string
	cache  *Cache
	s      *Source
	lists  atomic.Int64
	global map[string]any
	groups []groupSpec
	clock  *fakeClock
	// seams, set before the first scrape
	addErr func(dir string) error
	fsType func(dir string) int64
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newWatchEnv(t *testing.T, dir string, global map[string]any, groups ...groupSpec) *watchEnv {
	t.Helper()
	e := &watchEnv{t: t, dir: dir, global: global, groups: groups, clock: &fakeClock{now: time.Unix(1_800_000_000, 0)}}
	e.cache = NewWatchingCache()
	e.cache.testWatchHook = func(w *watcher) {
		w.now = e.clock.Now
		add := w.addWatch
		w.addWatch = func(dir string) error {
			if e.addErr != nil {
				if err := e.addErr(dir); err != nil {
					return err
				}
			}
			return add(dir)
		}
		w.fsType = func(dir string) (int64, error) {
			if e.fsType != nil {
				return e.fsType(dir), nil
			}
			return statfsType(dir)
		}
	}
	t.Cleanup(e.cache.Stop)
	e.reload(global, groups...)
	return e
}

// reload builds a new Source over the same cache, as a configuration
// reload does.
func (e *watchEnv) reload(global map[string]any, groups ...groupSpec) {
	e.t.Helper()
	doc := map[string]any{"files": groups}
	if global != nil {
		doc["global"] = global
	}
	y, err := yaml.Marshal(doc)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg, err := config.Parse(y, e.dir)
	if err != nil {
		e.t.Fatalf("config.Parse:\n%s\n%v", y, err)
	}
	e.s = New(cfg, e.cache, discard())
	e.s.beforeList = func(string) { e.lists.Add(1) }
}

// scrape collects and returns each finding's target (relative to the test
// directory) with what it holds: the certificates' common names, or the
// error class.
func (e *watchEnv) scrape() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, f := range collect(e.t, e.s) {
		rel, err := filepath.Rel(e.dir, f.Target)
		if err != nil {
			rel = f.Target
		}
		var v string
		if f.Err != nil {
			v = "class:" + string(source.ClassOf(f.Err))
		} else {
			var cns []string
			for _, c := range f.Certs {
				cns = append(cns, c.Subject.CommonName)
			}
			v = strings.Join(cns, ",")
		}
		if f.Key != "" {
			rel += "#" + f.Key
		}
		out[rel] = v
	}
	return out
}

func (e *watchEnv) status() map[string]float64 {
	out := map[string]float64{}
	for _, st := range e.s.watchStatus() {
		name := st.Name
		for i, l := range st.LabelNames {
			name += "," + l + "=" + st.Values[i]
		}
		out[name] = st.Value
	}
	return out
}

func (e *watchEnv) check(step string, got, want map[string]string) {
	e.t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		e.t.Fatalf("%s: got\n  %v\nwant\n  %v", step, got, want)
	}
}

// steady scrapes and checks that the scrape walked nothing and stat'ed
// nothing.
func (e *watchEnv) steady(step string, want map[string]string) {
	e.t.Helper()
	lists, stats := e.lists.Load(), testStats.Load()
	e.check(step, e.scrape(), want)
	if n := e.lists.Load() - lists; n != 0 {
		e.t.Errorf("%s: an unchanged tree was walked (%d directories listed)", step, n)
	}
	if n := testStats.Load() - stats; n != 0 {
		e.t.Errorf("%s: an unchanged tree had %d files stat'ed", step, n)
	}
}

func pemOf(t *testing.T, cn string) []byte { return testpki.PEM(leafCert(t, cn)) }

// replaceByRename writes data to a temporary file beside name and renames
// it over name, as editors and most deployment tools do.
func replaceByRename(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	tmp := write(t, dir, filepath.Join(filepath.Dir(name), ".tmp-"+filepath.Base(name)), data)
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// projectedVolume lays out what the kubelet's atomic writer makes of a
// Secret volume: a timestamped directory with the files, a "..data"
// symlink to it, and each key a symlink through "..data".
func projectedVolume(t *testing.T, dir, vol, stamp string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		write(t, dir, filepath.Join(vol, stamp, name), data)
	}
	must(t, os.Symlink(stamp, filepath.Join(dir, vol, "..data")))
	for name := range files {
		must(t, os.Symlink(filepath.Join("..data", name), filepath.Join(dir, vol, name)))
	}
}

// swapProjectedVolume updates it the way the atomic writer does: the new
// files in a new timestamped directory, "..data_tmp" pointing at it renamed
// over "..data", and the old directory removed.
func swapProjectedVolume(t *testing.T, dir, vol, oldStamp, newStamp string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		write(t, dir, filepath.Join(vol, newStamp, name), data)
	}
	tmp := filepath.Join(dir, vol, "..data_tmp")
	must(t, os.Symlink(newStamp, tmp))
	must(t, os.Rename(tmp, filepath.Join(dir, vol, "..data")))
	must(t, os.RemoveAll(filepath.Join(dir, vol, oldStamp)))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestWatchSeesEveryChange: each way a certificate file changes on disk is
// seen by the next scrape, and a scrape of a tree where nothing happened
// walks nothing and stats nothing.
func TestWatchSeesEveryChange(t *testing.T) {
	cases := []struct {
		name   string
		paths  []string
		setup  func(t *testing.T, dir string)
		before map[string]string
		change func(t *testing.T, dir string)
		after  map[string]string
	}{{
		name:   "written in place",
		paths:  []string{"d"},
		setup:  func(t *testing.T, dir string) { write(t, dir, "d/a.pem", pemOf(t, "old-a")) },
		before: map[string]string{"d/a.pem": "old-a"},
		// Same length of name: the file may keep its size and, within the
		// filesystem's timestamp granularity, its times; the event still
		// makes it be read.
		change: func(t *testing.T, dir string) { write(t, dir, "d/a.pem", pemOf(t, "new-a")) },
		after:  map[string]string{"d/a.pem": "new-a"},
	}, {
		name:   "replaced by rename",
		paths:  []string{"d"},
		setup:  func(t *testing.T, dir string) { write(t, dir, "d/a.pem", pemOf(t, "old-a")) },
		before: map[string]string{"d/a.pem": "old-a"},
		change: func(t *testing.T, dir string) { replaceByRename(t, dir, "d/a.pem", pemOf(t, "renamed-a")) },
		after:  map[string]string{"d/a.pem": "renamed-a"},
	}, {
		name:   "explicit file replaced by rename",
		paths:  []string{"d/a.pem"},
		setup:  func(t *testing.T, dir string) { write(t, dir, "d/a.pem", pemOf(t, "old-a")) },
		before: map[string]string{"d/a.pem": "old-a"},
		change: func(t *testing.T, dir string) { replaceByRename(t, dir, "d/a.pem", pemOf(t, "renamed-a")) },
		after:  map[string]string{"d/a.pem": "renamed-a"},
	}, {
		name:  "projected volume ..data swap, file named",
		paths: []string{"vol/tls.crt"},
		setup: func(t *testing.T, dir string) {
			projectedVolume(t, dir, "vol", "..2026_01", map[string][]byte{"tls.crt": pemOf(t, "v1")})
		},
		before: map[string]string{"vol/tls.crt": "v1"},
		change: func(t *testing.T, dir string) {
			swapProjectedVolume(t, dir, "vol", "..2026_01", "..2026_02", map[string][]byte{"tls.crt": pemOf(t, "v2")})
		},
		after: map[string]string{"vol/tls.crt": "v2"},
	}, {
		name:  "projected volume ..data swap, directory walked",
		paths: []string{"vol"},
		setup: func(t *testing.T, dir string) {
			projectedVolume(t, dir, "vol", "..2026_01", map[string][]byte{"tls.crt": pemOf(t, "v1"), "ca.crt": pemOf(t, "ca1")})
		},
		before: map[string]string{"vol/..2026_01/ca.crt": "ca1", "vol/..2026_01/tls.crt": "v1", "vol/ca.crt": "ca1", "vol/tls.crt": "v1"},
		change: func(t *testing.T, dir string) {
			swapProjectedVolume(t, dir, "vol", "..2026_01", "..2026_02", map[string][]byte{"tls.crt": pemOf(t, "v2"), "ca.crt": pemOf(t, "ca2")})
		},
		after: map[string]string{"vol/..2026_02/ca.crt": "ca2", "vol/..2026_02/tls.crt": "v2", "vol/ca.crt": "ca2", "vol/tls.crt": "v2"},
	}, {
		name:  "symlink to a file outside the walk, target written",
		paths: []string{"d"},
		setup: func(t *testing.T, dir string) {
			write(t, dir, "elsewhere/real.pem", pemOf(t, "real-1"))
			must(t, os.MkdirAll(filepath.Join(dir, "d"), 0o755))
			must(t, os.Symlink(filepath.Join(dir, "elsewhere/real.pem"), filepath.Join(dir, "d/link.pem")))
		},
		before: map[string]string{"d/link.pem": "real-1"},
		change: func(t *testing.T, dir string) { write(t, dir, "elsewhere/real.pem", pemOf(t, "real-2")) },
		after:  map[string]string{"d/link.pem": "real-2"},
	}, {
		name:  "symlink's target directory replaced as a whole",
		paths: []string{"d/link.pem"},
		setup: func(t *testing.T, dir string) {
			write(t, dir, "store/cur/real.pem", pemOf(t, "real-1"))
			must(t, os.MkdirAll(filepath.Join(dir, "d"), 0o755))
			must(t, os.Symlink(filepath.Join(dir, "store/cur/real.pem"), filepath.Join(dir, "d/link.pem")))
		},
		before: map[string]string{"d/link.pem": "real-1"},
		change: func(t *testing.T, dir string) {
			// renamed away, not deleted: no event names the file itself
			write(t, dir, "store/next/real.pem", pemOf(t, "real-2"))
			must(t, os.Rename(filepath.Join(dir, "store/cur"), filepath.Join(dir, "store/old")))
			must(t, os.Rename(filepath.Join(dir, "store/next"), filepath.Join(dir, "store/cur")))
		},
		after: map[string]string{"d/link.pem": "real-2"},
	}, {
		name:  "symlinked directory re-pointed",
		paths: []string{"d"},
		setup: func(t *testing.T, dir string) {
			write(t, dir, "v1/c.pem", pemOf(t, "c-v1"))
			write(t, dir, "v2/c.pem", pemOf(t, "c-v2"))
			must(t, os.MkdirAll(filepath.Join(dir, "d"), 0o755))
			must(t, os.Symlink(filepath.Join(dir, "v1"), filepath.Join(dir, "d/current")))
		},
		before: map[string]string{"d/current/c.pem": "c-v1"},
		change: func(t *testing.T, dir string) {
			tmp := filepath.Join(dir, "d/.current")
			must(t, os.Symlink(filepath.Join(dir, "v2"), tmp))
			must(t, os.Rename(tmp, filepath.Join(dir, "d/current")))
		},
		after: map[string]string{"d/current/c.pem": "c-v2"},
	}, {
		// "d/cur-old" sorts between "d/cur" and "d/cur/": the files under
		// the re-pointed link are still all marked.
		name:  "symlinked directory re-pointed, beside a name that sorts between",
		paths: []string{"d"},
		setup: func(t *testing.T, dir string) {
			write(t, dir, "v1/c.pem", pemOf(t, "c-v1"))
			write(t, dir, "v2/c.pem", pemOf(t, "c-v2"))
			write(t, dir, "d/cur-old/o.pem", pemOf(t, "old"))
			must(t, os.Symlink(filepath.Join(dir, "v1"), filepath.Join(dir, "d/cur")))
		},
		before: map[string]string{"d/cur-old/o.pem": "old", "d/cur/c.pem": "c-v1"},
		change: func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "d/cur")))
			must(t, os.Symlink(filepath.Join(dir, "v2"), filepath.Join(dir, "d/cur")))
		},
		after: map[string]string{"d/cur-old/o.pem": "old", "d/cur/c.pem": "c-v2"},
	}, {
		name:  "deleted",
		paths: []string{"d"},
		setup: func(t *testing.T, dir string) {
			write(t, dir, "d/a.pem", pemOf(t, "a"))
			write(t, dir, "d/b.pem", pemOf(t, "b"))
		},
		before: map[string]string{"d/a.pem": "a", "d/b.pem": "b"},
		change: func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "d/a.pem"))) },
		after:  map[string]string{"d/b.pem": "b"},
	}, {
		name:   "explicit file deleted",
		paths:  []string{"d/a.pem"},
		setup:  func(t *testing.T, dir string) { write(t, dir, "d/a.pem", pemOf(t, "a")) },
		before: map[string]string{"d/a.pem": "a"},
		change: func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "d/a.pem"))) },
		after:  map[string]string{"d/a.pem": "class:" + string(source.ClassNotFound)},
	}, {
		name:   "new file in a watched directory",
		paths:  []string{"d"},
		setup:  func(t *testing.T, dir string) { write(t, dir, "d/a.pem", pemOf(t, "a")) },
		before: map[string]string{"d/a.pem": "a"},
		change: func(t *testing.T, dir string) { write(t, dir, "d/new.pem", pemOf(t, "new")) },
		after:  map[string]string{"d/a.pem": "a", "d/new.pem": "new"},
	}, {
		name:   "new subdirectories, walked recursively",
		paths:  []string{"d"},
		setup:  func(t *testing.T, dir string) { write(t, dir, "d/a.pem", pemOf(t, "a")) },
		before: map[string]string{"d/a.pem": "a"},
		change: func(t *testing.T, dir string) {
			write(t, dir, "d/sub/b.pem", pemOf(t, "b"))
			write(t, dir, "d/x/y/z/c.pem", pemOf(t, "c"))
		},
		after: map[string]string{"d/a.pem": "a", "d/sub/b.pem": "b", "d/x/y/z/c.pem": "c"},
	}, {
		name:   "glob: a new matching file, a new non-matching one",
		paths:  []string{"d/**/*.pem"},
		setup:  func(t *testing.T, dir string) { write(t, dir, "d/s/a.pem", pemOf(t, "a")) },
		before: map[string]string{"d/s/a.pem": "a"},
		change: func(t *testing.T, dir string) {
			write(t, dir, "d/t/b.pem", pemOf(t, "b"))
			write(t, dir, "d/t/b.crt", pemOf(t, "not-matched"))
		},
		after: map[string]string{"d/s/a.pem": "a", "d/t/b.pem": "b"},
	}, {
		name:   "configured directory created later",
		paths:  []string{"later/certs"},
		setup:  func(t *testing.T, dir string) {},
		before: map[string]string{"later/certs": "class:" + string(source.ClassNotFound)},
		change: func(t *testing.T, dir string) { write(t, dir, "later/certs/a.pem", pemOf(t, "a")) },
		after:  map[string]string{"later/certs/a.pem": "a"},
	}, {
		name:   "watched directory removed and made again",
		paths:  []string{"d"},
		setup:  func(t *testing.T, dir string) { write(t, dir, "d/sub/a.pem", pemOf(t, "a")) },
		before: map[string]string{"d/sub/a.pem": "a"},
		change: func(t *testing.T, dir string) {
			must(t, os.RemoveAll(filepath.Join(dir, "d/sub")))
			write(t, dir, "d/sub/a.pem", pemOf(t, "a-again"))
		},
		after: map[string]string{"d/sub/a.pem": "a-again"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			e := newWatchEnv(t, dir, nil, groupSpec{Paths: tc.paths})
			e.check("first scrape", e.scrape(), tc.before)
			e.steady("unchanged", tc.before)
			tc.change(t, dir)
			e.check("after the change", e.scrape(), tc.after)
			e.steady("unchanged again", tc.after)
			// A second change of the same kind is seen as well: the watches
			// followed the first.
			if st := e.status(); st["certwatch_files_watch_paths,group=0,mode=inotify"] != float64(len(tc.paths)) {
				t.Errorf("the path is not watched any more: %v", st)
			}
		})
	}
}

// TestWatchProjectedVolumeRepeatedSwaps: a Secret volume updated again and
// again, each update seen by the next scrape.
func TestWatchProjectedVolumeRepeatedSwaps(t *testing.T) {
	dir := t.TempDir()
	projectedVolume(t, dir, "vol", "..s0", map[string][]byte{"tls.crt": pemOf(t, "gen-0")})
	e := newWatchEnv(t, dir, nil, groupSpec{Paths: []string{"vol/tls.crt"}})
	e.check("start", e.scrape(), map[string]string{"vol/tls.crt": "gen-0"})
	for i := 1; i <= 5; i++ {
		swapProjectedVolume(t, dir, "vol", fmt.Sprintf("..s%d", i-1), fmt.Sprintf("..s%d", i),
			map[string][]byte{"tls.crt": pemOf(t, fmt.Sprintf("gen-%d", i))})
		e.check(fmt.Sprintf("swap %d", i), e.scrape(), map[string]string{"vol/tls.crt": fmt.Sprintf("gen-%d", i)})
	}
	e.steady("settled", map[string]string{"vol/tls.crt": "gen-5"})
}

// TestWatchFallbacks: a path whose watches cannot be placed is polled (and
// still sees changes), counted by reason; it is watched again once the
// re-check interval has passed and the watch can be placed.
func TestWatchFallbacks(t *testing.T) {
	cases := []struct {
		name   string
		global map[string]any
		addErr error
		fsType int64
		reason string // "" when the path stays watched
	}{
		{name: "watches exhausted", addErr: syscall.ENOSPC, reason: reasonWatchLimit},
		{name: "other watch error", addErr: syscall.EACCES, reason: reasonError},
		{name: "NFS in auto mode", fsType: 0x6969, reason: reasonNetworkFS},
		{name: "FUSE in auto mode", fsType: 0x65735546, reason: reasonNetworkFS},
		{name: "NFS, inotify forced", global: map[string]any{"files_watch": "inotify"}, fsType: 0x6969},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "local/a.pem", pemOf(t, "local-1"))
			write(t, dir, "remote/b.pem", pemOf(t, "remote-1"))
			e := newWatchEnv(t, dir, tc.global, groupSpec{Paths: []string{"local", "remote"}})
			remote := filepath.Join(dir, "remote")
			var failing atomic.Bool
			failing.Store(true)
			e.addErr = func(d string) error {
				if d == remote && failing.Load() && tc.addErr != nil {
					return tc.addErr
				}
				return nil
			}
			e.fsType = func(d string) int64 {
				if d == remote && failing.Load() && tc.fsType != 0 {
					return tc.fsType
				}
				return 0xef53
			}
			e.check("first", e.scrape(), map[string]string{"local/a.pem": "local-1", "remote/b.pem": "remote-1"})
			st := e.status()
			watched, polled := 2.0, 0.0
			if tc.reason != "" {
				watched, polled = 1, 1
			}
			if st["certwatch_files_watch_paths,group=0,mode=inotify"] != watched || st["certwatch_files_watch_paths,group=0,mode=poll"] != polled {
				t.Errorf("paths watched/polled: %v", st)
			}
			for _, r := range fallbackReasons {
				want := 0.0
				if r == tc.reason {
					want = 1
				}
				if got := st["certwatch_files_watch_fallbacks_total,reason="+r]; got != want {
					t.Errorf("fallbacks %s = %v, want %v", r, got, want)
				}
			}
			// Polled or not, changes are seen.
			replaceByRename(t, dir, "remote/b.pem", pemOf(t, "remote-2"))
			write(t, dir, "local/a.pem", pemOf(t, "local-2"))
			e.check("changed", e.scrape(), map[string]string{"local/a.pem": "local-2", "remote/b.pem": "remote-2"})
			// Failing again at the retry does not count again.
			e.clock.advance(config.DefaultFilesRecheckInterval)
			e.scrape()
			if got := e.status()["certwatch_files_watch_fallbacks_total,reason="+tc.reason]; tc.reason != "" && got != 1 {
				t.Errorf("a failed retry counted again: %v", got)
			}
			if tc.reason == "" {
				return
			}
			// The limit lifted: the next retry watches it again.
			failing.Store(false)
			e.clock.advance(config.DefaultFilesRecheckInterval)
			e.scrape()
			if st := e.status(); st["certwatch_files_watch_paths,group=0,mode=inotify"] != 2 {
				t.Errorf("not watched again after the retry: %v", st)
			}
			e.steady("watched again", map[string]string{"local/a.pem": "local-2", "remote/b.pem": "remote-2"})
		})
	}
}

// TestWatchQueueOverflow fills the kernel's event queue for real (the
// event loop held back, more events than fs.inotify.max_queued_events),
// changes a certificate while events are being dropped, and checks that
// the overflow is counted and the change seen: every file is checked once.
func TestWatchQueueOverflow(t *testing.T) {
	data, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Fatal(err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || limit > 1<<17 {
		t.Fatalf("max_queued_events %q: this test makes that many events", data)
	}
	dir := t.TempDir()
	write(t, dir, "d/a.pem", pemOf(t, "a-1"))
	must(t, os.MkdirAll(filepath.Join(dir, "noise"), 0o755))
	e := newWatchEnv(t, dir, nil, groupSpec{Paths: []string{"d", "noise/*.pem"}})
	e.check("first", e.scrape(), map[string]string{"d/a.pem": "a-1"})

	w := e.s.watch.w
	w.mu.Lock() // the event loop blocks on its next event: the kernel queue fills
	noise := filepath.Join(dir, "noise", "n.txt")
	f, err := os.Create(noise)
	if err != nil {
		w.mu.Unlock()
		t.Fatal(err)
	}
	// Twice the queue's size: what fsnotify has read ahead comes on top.
	for i := 0; i < 2*limit+1000; i++ {
		// alternate two kinds of event so that the kernel cannot merge them
		if i%2 == 0 {
			_, err = f.Write([]byte{'x'})
		} else {
			err = f.Chmod(0o600)
		}
		if err != nil {
			w.mu.Unlock()
			t.Fatal(err)
		}
	}
	f.Close()
	// This change's events are dropped: the queue is full.
	write(t, dir, "d/a.pem", pemOf(t, "a-2"))
	w.mu.Unlock()

	e.check("after the overflow", e.scrape(), map[string]string{"d/a.pem": "a-2"})
	if got := e.status()["certwatch_files_watch_fallbacks_total,reason="+reasonOverflow]; got < 1 {
		t.Errorf("queue_overflow fallbacks %v, want at least 1", got)
	}
	e.steady("settled", map[string]string{"d/a.pem": "a-2"})
	// The barrier was renewed: each change is in the very next scrape.
	for i := 3; i <= 5; i++ {
		write(t, dir, "d/a.pem", pemOf(t, fmt.Sprintf("a-%d", i)))
		e.check(fmt.Sprintf("change %d after the overflow", i), e.scrape(), map[string]string{"d/a.pem": fmt.Sprintf("a-%d", i)})
	}
}

// TestWatchRecheckCatchesMissedChanges: a change no event reports (here the
// watch is taken away behind the watcher's back) is found by the periodic
// full check, and only then.
func TestWatchRecheckCatchesMissedChanges(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "d/a.pem", pemOf(t, "a-1"))
	e := newWatchEnv(t, dir, map[string]any{"files_recheck_interval": "5m"}, groupSpec{Paths: []string{"d"}})
	e.check("first", e.scrape(), map[string]string{"d/a.pem": "a-1"})
	must(t, e.s.watch.w.fsw.Remove(filepath.Join(dir, "d")))
	replaceByRename(t, dir, "d/a.pem", pemOf(t, "a-2"))
	e.steady("missed", map[string]string{"d/a.pem": "a-1"})
	e.clock.advance(4 * time.Minute)
	e.steady("still within the interval", map[string]string{"d/a.pem": "a-1"})
	e.clock.advance(time.Minute)
	stats := testStats.Load()
	e.check("re-checked", e.scrape(), map[string]string{"d/a.pem": "a-2"})
	if testStats.Load() == stats {
		t.Error("the periodic check stat'ed nothing")
	}
	// The full check placed the watch again.
	write(t, dir, "d/a.pem", pemOf(t, "a-3"))
	e.check("watched again", e.scrape(), map[string]string{"d/a.pem": "a-3"})
}

// TestWatchReloadKeepsAndDropsWatches: a reload keeps the watches of the
// paths it keeps, drops those of the paths it drops, and a reload to poll
// drops them all.
func TestWatchReloadKeepsAndDropsWatches(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a/x.pem", pemOf(t, "x"))
	write(t, dir, "b/y.pem", pemOf(t, "y"))
	write(t, dir, "b/sub/z.pem", pemOf(t, "z"))
	e := newWatchEnv(t, dir, nil, groupSpec{Paths: []string{"a"}}, groupSpec{Paths: []string{"b"}})
	e.check("two groups", e.scrape(), map[string]string{"a/x.pem": "x", "b/y.pem": "y", "b/sub/z.pem": "z"})
	watched := func() []string {
		w := e.s.watch.w
		if w == nil {
			w = e.cache.watch
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		var out []string
		for d := range w.dirs {
			out = append(out, strings.TrimPrefix(d, dir))
		}
		return sortedStrings(out)
	}
	// a, b, b/sub, and the test directory above a and b (anchors)
	if got := fmt.Sprint(watched()); got != "[ /a /b /b/sub]" {
		t.Errorf("watched %s", got)
	}
	if got := e.status()["certwatch_files_watches"]; got != 4 {
		t.Errorf("certwatch_files_watches %v, want 4", got)
	}

	e.reload(nil, groupSpec{Paths: []string{"a"}})
	e.check("group b dropped", e.scrape(), map[string]string{"a/x.pem": "x"})
	if got := fmt.Sprint(watched()); got != "[ /a]" {
		t.Errorf("after dropping b, watched %s", got)
	}
	write(t, dir, "a/x.pem", pemOf(t, "x-2"))
	e.check("kept group still watched", e.scrape(), map[string]string{"a/x.pem": "x-2"})
	e.steady("kept group steady", map[string]string{"a/x.pem": "x-2"})

	e.reload(map[string]any{"files_watch": "poll"}, groupSpec{Paths: []string{"a"}})
	e.check("poll", e.scrape(), map[string]string{"a/x.pem": "x-2"})
	if got := fmt.Sprint(watched()); got != "[]" {
		t.Errorf("polling, watched %s", got)
	}
	if st := e.status(); st["certwatch_files_watch_paths,group=0,mode=poll"] != 1 || st["certwatch_files_watches"] != 0 {
		t.Errorf("polling: %v", st)
	}
	stats := testStats.Load()
	e.scrape()
	if testStats.Load() == stats {
		t.Error("polling stat'ed nothing")
	}
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestWatchOverlappingGroups: a file reached by two watching groups is still
// reported once, under the first, with its change seen.
func TestWatchOverlappingGroups(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "d/a.pem", pemOf(t, "a-1"))
	write(t, dir, "d/sub/b.pem", pemOf(t, "b-1"))
	e := newWatchEnv(t, dir, nil, groupSpec{Paths: []string{"d/sub"}, Labels: map[string]string{"team": "first"}},
		groupSpec{Paths: []string{"d"}, Labels: map[string]string{"team": "second"}})
	want := map[string]string{"d/a.pem": "a-1", "d/sub/b.pem": "b-1"}
	e.check("first", e.scrape(), want)
	replaceByRename(t, dir, "d/sub/b.pem", pemOf(t, "b-2"))
	want["d/sub/b.pem"] = "b-2"
	for range 3 {
		e.check("changed", e.scrape(), want)
	}
	for _, f := range collect(t, e.s) {
		if strings.HasSuffix(f.Target, "b.pem") && f.Labels["team"] != "first" {
			t.Errorf("b.pem reported under %v", f.Labels)
		}
	}
}

// TestWatchStopEndsGoroutines: Stop closes the inotify instance and every
// goroutine of the watcher ends.
func TestWatchStopEndsGoroutines(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "d/a.pem", pemOf(t, "a"))
	baseline := runtime.NumGoroutine()
	e := newWatchEnv(t, dir, nil, groupSpec{Paths: []string{"d"}})
	e.scrape()
	write(t, dir, "d/a.pem", pemOf(t, "b")) // wakes the background refresh
	e.scrape()
	if runtime.NumGoroutine() <= baseline {
		t.Fatal("the watcher runs no goroutine: the check below would prove nothing")
	}
	e.cache.Stop()
	waitGoroutines(t, baseline)
	// A stopped cache polls.
	write(t, dir, "d/a.pem", pemOf(t, "c"))
	e.reload(nil, groupSpec{Paths: []string{"d"}})
	e.check("after Stop", e.scrape(), map[string]string{"d/a.pem": "c"})
	waitGoroutines(t, baseline)
}

// TestWatchBackgroundRefresh: after a burst of events settles, the files are
// re-read without a scrape asking, so that the next scrape reads nothing.
func TestWatchBackgroundRefresh(t *testing.T) {
	dir := t.TempDir()
	for i := range 20 {
		write(t, dir, fmt.Sprintf("d/%02d.pem", i), pemOf(t, fmt.Sprintf("c%02d", i)))
	}
	e := newWatchEnv(t, dir, nil, groupSpec{Paths: []string{"d"}})
	e.scrape()
	for i := range 20 {
		replaceByRename(t, dir, fmt.Sprintf("d/%02d.pem", i), pemOf(t, fmt.Sprintf("n%02d", i)))
	}
	// Wait for the background passes to have read them all and cleared
	// their marks (no timing is asserted; the bound only keeps a failure
	// from hanging).
	w, g := e.s.watch.w, &e.s.groups[0]
	done := func() bool {
		w.mu.Lock()
		marked := len(w.dirty)
		w.mu.Unlock()
		if marked > 0 {
			return false
		}
		for i := range 20 {
			c, ok := e.cache.outcome(filepath.Join(dir, fmt.Sprintf("d/%02d.pem", i)), g.optsKey)
			if !ok || len(c.entries) == 0 || len(c.entries[0].Certs) == 0 || c.entries[0].Certs[0].Subject.CommonName != fmt.Sprintf("n%02d", i) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(20 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal("the background refresh did not read the renewed files")
		}
		time.Sleep(20 * time.Millisecond)
	}
	loads := testLoads.Load()
	got := e.scrape()
	if n := testLoads.Load() - loads; n != 0 {
		t.Errorf("the scrape after the background refresh read %d files", n)
	}
	for i := range 20 {
		if v := got[fmt.Sprintf("d/%02d.pem", i)]; v != fmt.Sprintf("n%02d", i) {
			t.Errorf("d/%02d.pem: %s", i, v)
		}
	}
}

// TestWatchUnreadable: a file made unreadable (chmod 000), and readable
// again, is seen by the next scrape each time. Root reads mode 000 files, so
// as root the check runs in a child process of the test binary as nobody.
func TestWatchUnreadable(t *testing.T) {
	if os.Geteuid() != 0 {
		checkWatchUnreadable(t)
		return
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		must(t, os.Chmod(d, 0o755))
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "files.test")
	copyFile(t, self, bin, 0o755)
	cmd := exec.Command(bin, "-test.run=^TestWatchUnreadableChild$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOCOVERDIR=") && !strings.HasPrefix(kv, "TMPDIR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CERTWATCH_WATCH_CHILD=1", "HOME="+dir, "TMPDIR=/tmp")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestWatchUnreadableChild")) {
		t.Fatalf("the check as uid 65534 failed: %v\n%s", err, out)
	}
}

// TestWatchUnreadableChild is TestWatchUnreadable's unprivileged half.
func TestWatchUnreadableChild(t *testing.T) {
	if os.Getenv("CERTWATCH_WATCH_CHILD") == "" {
		t.Skip("helper process of TestWatchUnreadable")
	}
	if os.Geteuid() == 0 {
		t.Fatal("the child still runs as root")
	}
	checkWatchUnreadable(t)
}

func checkWatchUnreadable(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "d/a.pem", pemOf(t, "a"))
	e := newWatchEnv(t, dir, nil, groupSpec{Paths: []string{"d"}})
	e.check("readable", e.scrape(), map[string]string{"d/a.pem": "a"})
	must(t, os.Chmod(filepath.Join(dir, "d/a.pem"), 0))
	e.check("unreadable", e.scrape(), map[string]string{"d/a.pem": "class:" + string(source.ClassPermission)})
	e.steady("still unreadable", map[string]string{"d/a.pem": "class:" + string(source.ClassPermission)})
	must(t, os.Chmod(filepath.Join(dir, "d/a.pem"), 0o644))
	e.check("readable again", e.scrape(), map[string]string{"d/a.pem": "a"})
	// The directory made unlistable: reported as a polling walk reports
	// it, and back.
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dir, "d"), 0o755) }) // should the check fail
	must(t, os.Chmod(filepath.Join(dir, "d"), 0))
	e.check("directory unlistable", e.scrape(), map[string]string{"d": "class:" + string(source.ClassPermission)})
	must(t, os.Chmod(filepath.Join(dir, "d"), 0o755))
	e.check("directory listable again", e.scrape(), map[string]string{"d/a.pem": "a"})
}

// TestWatchKubeconfigReferences: a kubeconfig that names a certificate file
// elsewhere sees that file's change at the next scrape, though nothing
// watches the file's directory.
func TestWatchKubeconfigReferences(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "elsewhere/ca.pem", pemOf(t, "ca-1"))
	write(t, dir, "kube/config.kubeconfig", []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: x
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: %s
`, filepath.Join(dir, "elsewhere/ca.pem"))))
	e := newWatchEnv(t, dir, nil, groupSpec{Paths: []string{"kube"}})
	e.check("first", e.scrape(), map[string]string{"kube/config.kubeconfig#cluster/x": "ca-1"})
	replaceByRename(t, dir, "elsewhere/ca.pem", pemOf(t, "ca-2"))
	e.check("referenced file changed", e.scrape(), map[string]string{"kube/config.kubeconfig#cluster/x": "ca-2"})
}

// TestWatchOneDirectoryTwoPaths: inotify watches a directory once, whatever
// the paths that lead to it (/etc/ssl/certs beside the directory it links
// to); both groups that reach it see its changes, and still do after the
// group whose path named the watch is dropped.
func TestWatchOneDirectoryTwoPaths(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "real/a.pem", pemOf(t, "a-1"))
	must(t, os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "alias")))
	e := newWatchEnv(t, dir, nil, groupSpec{Paths: []string{"real"}}, groupSpec{Paths: []string{"alias"}})
	e.check("first", e.scrape(), map[string]string{"real/a.pem": "a-1", "alias/a.pem": "a-1"})
	replaceByRename(t, dir, "real/a.pem", pemOf(t, "a-2"))
	e.check("changed", e.scrape(), map[string]string{"real/a.pem": "a-2", "alias/a.pem": "a-2"})
	e.steady("steady", map[string]string{"real/a.pem": "a-2", "alias/a.pem": "a-2"})

	e.reload(nil, groupSpec{Paths: []string{"alias"}})
	e.check("group of the first path dropped", e.scrape(), map[string]string{"alias/a.pem": "a-2"})
	e.scrape() // the path that took the watch over is checked in full once
	write(t, dir, "real/a.pem", pemOf(t, "a-3"))
	e.check("changed after the drop", e.scrape(), map[string]string{"alias/a.pem": "a-3"})
	write(t, dir, "alias/b.pem", pemOf(t, "b"))
	e.check("new file after the drop", e.scrape(), map[string]string{"alias/a.pem": "a-3", "alias/b.pem": "b"})
}

// TestWatchAgreesWithPolling applies a long random sequence of changes to a
// tree (writes in place, replacements by rename, new and deleted files and
// directories, symlinked files and directories re-pointed, Kubernetes-style
// ..data swaps) through groups that overlap, and after each one compares a
// watching scrape with a cold one of the same tree (a new cache that reads
// every file): the same answer, every time.
func TestWatchAgreesWithPolling(t *testing.T) {
	dir := t.TempDir()
	var pool [][]byte
	for i := range 12 {
		pool = append(pool, pemOf(t, fmt.Sprintf("gen-%02d", i)))
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	content := func() []byte { return pool[rng.IntN(len(pool))] }
	// Rewrites in place of the same size, within the filesystem's
	// timestamp granularity, leave a file's identity as it was: polling
	// misses them, watching must not.
	writeNow := func(p string, data []byte) { must(t, os.WriteFile(p, data, 0o644)) }
	for _, d := range []string{"tree/a", "tree/b/c", "targets/t1", "targets/t2"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	write(t, dir, "targets/t1/x.pem", content())
	write(t, dir, "targets/t2/x.pem", content())
	must(t, os.Symlink(filepath.Join(dir, "targets/t1"), filepath.Join(dir, "tree/current")))
	must(t, os.Symlink(filepath.Join(dir, "targets/t1/x.pem"), filepath.Join(dir, "tree/a/link.pem")))
	projectedVolume(t, dir, "vol", "..v0", map[string][]byte{"tls.crt": content(), "ca.crt": content()})
	groups := []groupSpec{{Paths: []string{"tree"}}, {Paths: []string{"vol/tls.crt", "vol/ca.crt"}}, {Paths: []string{"tree/**/*.pem"}},
		{Paths: []string{"vol"}}}
	watching := newWatchEnv(t, dir, nil, groups...)
	// The truth: a cold scrape, every file read.
	cold := func() map[string]string {
		polling := &watchEnv{t: t, dir: dir, cache: NewCache()}
		polling.reload(nil, groups...)
		return polling.scrape()
	}

	files := func() []string {
		var out []string
		_ = filepath.WalkDir(filepath.Join(dir, "tree"), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	dirs := []string{"tree/a", "tree/b", "tree/b/c", "tree"}
	vol := 0
	ops := []func() string{
		func() string { // write in place
			if f := files(); len(f) > 0 {
				p := f[rng.IntN(len(f))]
				writeNow(p, content())
				return "write " + p
			}
			return "nothing"
		},
		func() string { // replace by rename
			if f := files(); len(f) > 0 {
				p := f[rng.IntN(len(f))]
				tmp := p + ".tmp"
				must(t, os.WriteFile(tmp, content(), 0o644))
				must(t, os.Rename(tmp, p))
				return "rename over " + p
			}
			return "nothing"
		},
		func() string { // new file
			p := filepath.Join(dir, dirs[rng.IntN(len(dirs))], fmt.Sprintf("n%03d.pem", rng.IntN(1000)))
			must(t, os.WriteFile(p, content(), 0o644))
			return "new " + p
		},
		func() string { // delete a file
			if f := files(); len(f) > 0 {
				p := f[rng.IntN(len(f))]
				must(t, os.Remove(p))
				return "delete " + p
			}
			return "nothing"
		},
		func() string { // new directory with a file, or a directory removed
			p := filepath.Join(dir, "tree/b", fmt.Sprintf("sub%d", rng.IntN(3)))
			if _, err := os.Stat(p); err == nil {
				must(t, os.RemoveAll(p))
				return "rmdir " + p
			}
			must(t, os.MkdirAll(filepath.Join(p, "deep"), 0o755))
			must(t, os.WriteFile(filepath.Join(p, "deep", "d.pem"), content(), 0o644))
			return "mkdir " + p
		},
		func() string { // re-point the symlinked directory
			link := filepath.Join(dir, "tree/current")
			target, _ := os.Readlink(link)
			next := filepath.Join(dir, "targets/t1")
			if target == next {
				next = filepath.Join(dir, "targets/t2")
			}
			tmp := link + ".new"
			must(t, os.Symlink(next, tmp))
			must(t, os.Rename(tmp, link))
			return "re-point current to " + next
		},
		func() string { // a symlink target written outside the tree
			p := filepath.Join(dir, fmt.Sprintf("targets/t%d/x.pem", 1+rng.IntN(2)))
			writeNow(p, content())
			return "write target " + p
		},
		func() string { // the kubelet updates the volume
			vol++
			swapProjectedVolume(t, dir, "vol", fmt.Sprintf("..v%d", vol-1), fmt.Sprintf("..v%d", vol),
				map[string][]byte{"tls.crt": content(), "ca.crt": content()})
			return "..data swap"
		},
	}
	watching.check("start", watching.scrape(), cold())
	for step := range 150 {
		what := ops[rng.IntN(len(ops))]()
		want := cold()
		got := watching.scrape()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d (%s): watching\n  %v\nread cold\n  %v", step, what, got, want)
		}
	}
}

// TestWatchLateEvents: when the events are late (the event loop held back,
// as in a starved process), a scrape does not wait for them forever: it
// polls, counts a watch_error fallback, and watching goes on afterwards.
func TestWatchLateEvents(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "d/a.pem", pemOf(t, "a-1"))
	e := newWatchEnv(t, dir, nil, groupSpec{Paths: []string{"d"}})
	w := e.s.watch.w
	e.check("first", e.scrape(), map[string]string{"d/a.pem": "a-1"})

	hold := make(chan struct{})
	w.testHold.Store(&hold)
	w.barrierWait.Store(int64(200 * time.Millisecond))
	replaceByRename(t, dir, "d/a.pem", pemOf(t, "a-2"))
	e.check("events late: polled", e.scrape(), map[string]string{"d/a.pem": "a-2"})
	if n := e.status()["certwatch_files_watch_fallbacks_total,reason="+reasonError]; n < 1 {
		t.Errorf("watch_error fallbacks %v, want at least 1", n)
	}
	w.barrierWait.Store(int64(barrierTimeout))
	w.testHold.Store(nil)
	close(hold)

	e.check("events flowing again", e.scrape(), map[string]string{"d/a.pem": "a-2"})
	e.steady("watching again", map[string]string{"d/a.pem": "a-2"})
	write(t, dir, "d/a.pem", pemOf(t, "a-3"))
	e.check("a change after", e.scrape(), map[string]string{"d/a.pem": "a-3"})
	e.steady("and steady", map[string]string{"d/a.pem": "a-3"})
}
