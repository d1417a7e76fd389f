//go:build linux

package files

import "golang.org/x/sys/unix"

// watchSupported: the watching relies on inotify's semantics (a directory's
// watch reports its entries' changes).
const watchSupported = true

// networkFS are the filesystem types (statfs f_type) whose files may change
// without the local kernel knowing: what another machine writes to an NFS,
// SMB/CIFS, Ceph, 9P, AFS, GlusterFS/FUSE or Lustre mount raises no event
// here. In auto mode their directories are polled.
var networkFS = map[int64]bool{
	unix.NFS_SUPER_MAGIC:   true,
	unix.SMB_SUPER_MAGIC:   true,
	unix.CIFS_SUPER_MAGIC:  true,
	unix.SMB2_SUPER_MAGIC:  true,
	unix.FUSE_SUPER_MAGIC:  true,
	unix.CEPH_SUPER_MAGIC:  true,
	unix.V9FS_MAGIC:        true,
	unix.AFS_SUPER_MAGIC:   true,
	unix.AFS_FS_MAGIC:      true,
	unix.CODA_SUPER_MAGIC:  true,
	unix.NCP_SUPER_MAGIC:   true,
	unix.OCFS2_SUPER_MAGIC: true,
	0x01161970:             true, // GFS2
	0x0BD00BD0:             true, // Lustre
}

func statfsType(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Type), nil //nolint:unconvert // Type's width differs by architecture
}
