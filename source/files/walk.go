package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

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

// discover expands paths (files, directories, globs) into regular files,
// minus those matching an exclude pattern. Symlinks are followed; a directory
// reached twice (a symlink loop) is walked once. Sockets, FIFOs and devices
// are never opened.
func discover(paths, excludes []string) ([]foundFile, []problem) {
	d := &discovery{excludes: excludes, seen: map[string]bool{}}
	for _, p := range paths {
		p = filepath.Clean(p)
		if !hasMeta(p) {
			d.explicitPath(p)
			continue
		}
		base, depth := globBase(p)
		d.walk(base, p, depth, map[[2]uint64]bool{})
	}
	sort.Slice(d.found, func(i, j int) bool { return d.found[i].path < d.found[j].path })
	return d.found, d.problems
}

type discovery struct {
	excludes []string
	found    []foundFile
	problems []problem
	seen     map[string]bool
}

func (d *discovery) excluded(path string) bool {
	for _, ex := range d.excludes {
		if ok, _ := doublestar.PathMatch(ex, path); ok {
			return true
		}
	}
	return false
}

func (d *discovery) add(path string, explicit bool) {
	if d.seen[path] || d.excluded(path) {
		return
	}
	d.seen[path] = true
	d.found = append(d.found, foundFile{path: path, explicit: explicit})
}

func (d *discovery) fail(path string, err error) {
	if d.excluded(path) {
		return
	}
	d.problems = append(d.problems, problem{path: path, err: source.WithClass(source.Infer(err, source.ClassUnknown), err)})
}

func (d *discovery) explicitPath(p string) {
	st, err := os.Stat(p)
	if err != nil {
		d.fail(p, err)
		return
	}
	switch {
	case st.Mode().IsRegular():
		d.add(p, true)
	case st.IsDir():
		d.walk(p, "", -1, map[[2]uint64]bool{})
	default:
		d.fail(p, notRegular(p, st))
	}
}

// walk visits dir recursively. When pattern is set only files matching it
// are kept, and depth (when >= 0) bounds how deep the pattern can reach.
func (d *discovery) walk(dir, pattern string, depth int, visited map[[2]uint64]bool) {
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
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		key := [2]uint64{uint64(sys.Dev), sys.Ino} //nolint:unconvert // Dev's type differs by platform
		if visited[key] {
			return // reached again through a symlink: a loop, or a second route to a tree already walked
		}
		visited[key] = true
	}
	if d.excluded(dir) {
		return
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
