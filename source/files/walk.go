package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/certwatch/certwatch/source"
)

type foundFile struct {
	path     string
	explicit bool
}

type problem struct {
	path string
	err  error
}

// discovery is what one configured path (a file, a directory or a glob)
// expanded to: regular files sorted by path, and the paths that failed.
type discovery struct {
	found    []foundFile
	problems []problem
}

// dirKey identifies a directory across routes (dev/inode where the platform
// has them, the resolved path elsewhere).
type dirKey struct {
	dev, ino uint64
	path     string
}

// discover expands paths (files, directories, globs) into regular files,
// minus those matching an exclude pattern, each file once (explicit when any
// path names it directly).
func discover(paths, excludes []string) ([]foundFile, []problem) {
	var out discovery
	index := map[string]int{}
	for _, p := range paths {
		d := discoverOne(p, excludes, nil)
		out.problems = append(out.problems, d.problems...)
		for _, f := range d.found {
			if i, ok := index[f.path]; ok {
				out.found[i].explicit = out.found[i].explicit || f.explicit
				continue
			}
			index[f.path] = len(out.found)
			out.found = append(out.found, f)
		}
	}
	sort.Slice(out.found, func(i, j int) bool { return out.found[i].path < out.found[j].path })
	return out.found, out.problems
}

// discoverOne expands one configured path. Symlinks are followed; a
// directory reached twice (a symlink loop) is walked once. Sockets, FIFOs
// and devices are never opened. beforeList, when set, runs before each
// directory is listed (tests use it to make a listing slow).
func discoverOne(p string, excludes []string, beforeList func(dir string)) discovery {
	w := &walker{excludes: excludes, seen: map[string]bool{}, beforeList: beforeList}
	p = filepath.Clean(p)
	if !hasMeta(p) {
		w.explicitPath(p)
	} else {
		base, depth := globBase(p)
		w.walk(base, p, depth, map[dirKey]bool{})
	}
	sort.Slice(w.found, func(i, j int) bool { return w.found[i].path < w.found[j].path })
	return discovery{found: w.found, problems: w.problems}
}

type walker struct {
	excludes   []string
	found      []foundFile
	problems   []problem
	seen       map[string]bool
	beforeList func(dir string)
}

func (d *walker) excluded(path string) bool {
	for _, ex := range d.excludes {
		if ok, _ := doublestar.PathMatch(ex, path); ok {
			return true
		}
	}
	return false
}

func (d *walker) add(path string, explicit bool) {
	if d.seen[path] || d.excluded(path) {
		return
	}
	d.seen[path] = true
	d.found = append(d.found, foundFile{path: path, explicit: explicit})
}

func (d *walker) fail(path string, err error) {
	if d.excluded(path) {
		return
	}
	d.problems = append(d.problems, problem{path: path, err: source.WithClass(source.Infer(err, source.ClassUnknown), err)})
}

func (d *walker) explicitPath(p string) {
	st, err := os.Stat(p)
	if err != nil {
		d.fail(p, err)
		return
	}
	switch {
	case st.Mode().IsRegular():
		d.add(p, true)
	case st.IsDir():
		d.walk(p, "", -1, map[dirKey]bool{})
	default:
		d.fail(p, notRegular(p, st))
	}
}

// walk visits dir recursively. When pattern is set only files matching it
// are kept, and depth (when >= 0) bounds how deep the pattern can reach.
// Paths are reported as walked (through symlinks, not their targets).
func (d *walker) walk(dir, pattern string, depth int, visited map[dirKey]bool) {
	st, err := os.Stat(dir)
	if err != nil {
		if pattern != "" && errors.Is(err, fs.ErrNotExist) {
			return // a glob over a directory that does not exist matches nothing
		}
		d.fail(dir, err)
		return
	}
	if !st.IsDir() {
		if pattern == "" || matches(pattern, dir) {
			d.add(dir, pattern == "")
		}
		return
	}
	if key, ok := dirKeyOf(dir, st); ok {
		if visited[key] {
			return // reached again through a symlink: a loop, or a second route to a tree already walked
		}
		visited[key] = true
	}
	if d.excluded(dir) {
		return
	}
	if d.beforeList != nil {
		d.beforeList(dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		d.fail(dir, fmt.Errorf("listing directory: %w", err))
		return
	}
	for _, e := range ents {
		full := filepath.Join(dir, e.Name())
		typ := e.Type()
		if typ&fs.ModeSymlink != 0 {
			st, err := os.Stat(full)
			if err != nil {
				if pattern == "" || matches(pattern, full) {
					d.fail(full, err) // a dangling link or a link loop
				}
				continue
			}
			typ = st.Mode().Type()
		}
		switch {
		case typ.IsDir():
			if depth != 0 {
				d.walk(full, pattern, depth-1, visited)
			}
		case typ.IsRegular():
			if pattern == "" || matches(pattern, full) {
				d.add(full, false)
			}
		}
	}
}

func matches(pattern, path string) bool {
	ok, _ := doublestar.PathMatch(pattern, path)
	return ok
}

func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[{") }

// globBase returns the directory before the first path element with glob
// metacharacters, and how many directory levels below it the pattern can
// reach (-1 when "**" makes it unbounded).
func globBase(pattern string) (string, int) {
	parts := strings.Split(pattern, string(filepath.Separator))
	i := 0
	for i < len(parts) && !hasMeta(parts[i]) {
		i++
	}
	base := strings.Join(parts[:i], string(filepath.Separator))
	if base == "" {
		base = string(filepath.Separator)
	}
	if strings.Contains(pattern, "**") {
		return base, -1
	}
	return base, len(parts) - i - 1
}
