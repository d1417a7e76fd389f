//go:build !(linux || openbsd || darwin || freebsd || netbsd)

package files

import (
	"os"
	"path/filepath"
)

// openFlags: no O_NONBLOCK here; discovery never hands a FIFO over, and
// Windows has none to open.
const openFlags = os.O_RDONLY

// identityOf uses what os.FileInfo offers everywhere: size and modification
// time. A file replaced by another of the same size and time goes unnoticed
// until either changes.
func identityOf(st os.FileInfo) identity {
	return identity{size: st.Size(), mtimeNs: st.ModTime().UnixNano()}
}

// dirKeyOf identifies a directory by its path with every symlink resolved,
// so that one reached again through a link is recognised.
func dirKeyOf(path string, _ os.FileInfo) (dirKey, bool) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return dirKey{}, false
	}
	return dirKey{path: real}, true
}
