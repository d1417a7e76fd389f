package files

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/certwatch/certwatch/source"
)

// A kubeconfig may name its certificates' files (certificate-authority,
// client-certificate, client-key) rather than embed them. The files source
// resolves such a reference as kubectl does, against the kubeconfig's
// directory, and reads the file with the limits and error classes of any
// file it reads; what it finds is reported under the kubeconfig's place,
// keyed like the embedded form ("cluster/NAME", "user/NAME").
//
// References are followed wherever they point, as kubectl would: kubeconfigs
// commonly name files elsewhere (~/.minikube/ca.crt from ~/.kube/config).
// What protects a file a hostile kubeconfig points at (/etc/shadow) is that
// nothing of it but certificates is ever reported: only regular files are
// opened, the content is parsed for PEM certificates alone (and keys for
// their public halves), wiped after, and never quoted in an error or a log
// line, which name the reference and the class of the failure only.
//
// A kubeconfig's cached outcome depends on the files it referred to, so
// their identities are part of its own (identity.refs): each refresh stats
// them again, and a referenced file replaced, changed or gone re-reads the
// kubeconfig.

// refReader reads the files one kubeconfig refers to and notes the identity
// of each, in order.
type refReader struct {
	s     *Source
	dir   string
	notes strings.Builder
}

func (s *Source) refReader(kubeconfigPath string) *refReader {
	return &refReader{s: s, dir: filepath.Dir(kubeconfigPath)}
}

// resolve makes a reference absolute against the kubeconfig's directory.
func (r *refReader) resolve(ref string) string {
	if !filepath.IsAbs(ref) {
		ref = filepath.Join(r.dir, ref)
	}
	return filepath.Clean(ref)
}

// read is the decode.ReadFile of one kubeconfig.
func (r *refReader) read(ref string) ([]byte, error) {
	path := r.resolve(ref)
	st, err := os.Stat(path)
	r.notes.WriteString(refNote(path, st, err))
	if err != nil {
		return nil, source.WithClass(source.Infer(err, source.ClassUnknown), err)
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(path, st)
	}
	if st.Size() > r.s.maxSize {
		return nil, source.Errorf(source.ClassTooLarge, "file is %d bytes, over the %d-byte limit (global.max_file_size)", st.Size(), r.s.maxSize)
	}
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return nil, source.WithClass(source.Infer(err, source.ClassUnknown), err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() { // replaced since the stat
		return nil, notRegular(path, st)
	}
	data, err := io.ReadAll(io.LimitReader(f, r.s.maxSize+1))
	if err != nil {
		clear(data)
		return nil, source.WithClass(source.Infer(err, source.ClassUnknown), fmt.Errorf("reading %s: %w", path, err))
	}
	if int64(len(data)) > r.s.maxSize {
		clear(data)
		return nil, source.Errorf(source.ClassTooLarge, "%s is over the %d-byte limit (global.max_file_size)", path, r.s.maxSize)
	}
	return data, nil
}

// refs is what the kubeconfig's identity records of the files it referred
// to: "" when it referred to none.
func (r *refReader) refs() string { return r.notes.String() }

// refNote records one referenced path and what a stat said of it, in a form
// restatRefs can rebuild and compare.
func refNote(path string, st os.FileInfo, err error) string {
	if err != nil {
		return path + "\x00!" + string(source.Infer(err, source.ClassUnknown)) + "\x00"
	}
	id := identityOf(st)
	return fmt.Sprintf("%s\x00%d:%d:%d:%d:%d\x00", path, id.dev, id.ino, id.size, id.mtimeNs, id.ctimeNs)
}

// restatRefs returns the refs of path's cached outcome as they are now: the
// same paths, stat'ed again. "" when the outcome referred to no file.
func (s *Source) restatRefs(path, optsKey string) string {
	c, ok := s.cache.outcome(path, optsKey)
	if !ok || c.id.refs == "" {
		return ""
	}
	var b strings.Builder
	for _, p := range refPaths(c.id.refs) {
		st, err := os.Stat(p)
		b.WriteString(refNote(p, st, err))
	}
	return b.String()
}

// refPaths returns the paths a refs record names, in order.
func refPaths(refs string) []string {
	fields := strings.Split(refs, "\x00")
	var paths []string
	for i := 0; i+1 < len(fields); i += 2 {
		paths = append(paths, fields[i])
	}
	return paths
}
