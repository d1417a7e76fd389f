//go:build linux || openbsd || darwin || freebsd || netbsd

package files

import (
	"os"
	"syscall"
)

// openFlags: should a path have become a FIFO since it was checked, opening
// it must not wait for a writer.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK

// identityOf reads what tells that a file changed without reading it:
// device, inode, size, modification and change time (a chmod or a rename
// over the file changes the latter).
func identityOf(st os.FileInfo) identity {
	id := identity{size: st.Size(), mtimeNs: st.ModTime().UnixNano()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(sys.Dev), sys.Ino //nolint:unconvert // Dev's type differs by platform
		id.ctimeNs = changeTime(sys)
	}
	return id
}

// dirKeyOf identifies a directory by device and inode, so that one reached
// again through a symlink is recognised whatever the route.
func dirKeyOf(_ string, st os.FileInfo) (dirKey, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return dirKey{}, false
	}
	return dirKey{dev: uint64(sys.Dev), ino: sys.Ino}, true //nolint:unconvert // Dev's type differs by platform
}
