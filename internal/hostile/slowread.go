package hostile

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certwatch/certwatch/internal/testpki"
)

// SlowRead is a file whose reads stall, made without FUSE: it lives on an
// ext4 file system in a loop device, with its pages dropped from the page
// cache, and a blkio cgroup (v1) throttles reads from that device to a few
// hundred bytes a second for the processes put into it. A read of it by a
// confined process waits in the kernel for minutes, as on a stuck network
// or a dying disk, while its stat and open are served from the inode cache
// at once. A FIFO would not do: certwatch checks the type before opening and
// refuses anything but regular files. O_NONBLOCK does not help a reader
// either: it has no effect on regular files.
//
// It needs root, losetup, mkfs.ext4, mount and a cgroup v1 blkio hierarchy
// with throttling; newSlowRead says which is missing.
type SlowRead struct {
	Path string // the file; about 512 KiB, a valid certificate in PEM

	dev    string // /dev/loopN
	devNum string // "major:minor"
	mnt    string
	cgroup string
}

const (
	blkioRoot    = "/sys/fs/cgroup/blkio"
	readBytesSec = 256 // a 128 KiB read-ahead takes over 8 minutes
)

func newSlowRead(tb testing.TB, dir string) (*SlowRead, error) {
	tb.Helper()
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root (loop device, mount, blkio cgroup)")
	}
	if _, err := os.Stat(filepath.Join(blkioRoot, "blkio.throttle.read_bps_device")); err != nil {
		return nil, fmt.Errorf("no cgroup v1 blkio throttling at %s", blkioRoot)
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found", tool)
		}
	}
	s := &SlowRead{mnt: filepath.Join(dir, "slow-mnt")}
	img := filepath.Join(dir, "slow.img")
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(16 << 20)
		f.Close()
	}
	if err != nil {
		return nil, err
	}
	if err := run("mkfs.ext4", "-q", "-F", img); err != nil {
		return nil, err
	}
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		return nil, fmt.Errorf("losetup: %w", err)
	}
	s.dev = strings.TrimSpace(string(out))
	tb.Cleanup(func() { _ = run("losetup", "-d", s.dev) })
	devNum, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(s.dev), "dev"))
	if err != nil {
		return nil, err
	}
	s.devNum = strings.TrimSpace(string(devNum))
	if err := os.Mkdir(s.mnt, 0o755); err != nil {
		return nil, err
	}
	if err := run("mount", s.dev, s.mnt); err != nil {
		return nil, err
	}
	mounted := true
	tb.Cleanup(func() {
		if mounted {
			_ = run("umount", "-l", s.mnt)
		}
	})

	// A valid certificate padded to about 512 KiB of PEM, so that even one
	// read-ahead window of it is far behind the throttle.
	cert := testpki.New(tb, nil, testpki.Options{CommonName: "soak slow file", PadBytes: 380 << 10})
	s.Path = filepath.Join(s.mnt, "slow.pem")
	if err := os.WriteFile(s.Path, testpki.PEM(cert), 0o600); err != nil {
		return nil, err
	}
	// Unmount and mount again: the file's pages leave the page cache. Then
	// stat it from here (not throttled) so the inode is cached and only
	// reading the content goes to the device.
	if err := run("umount", s.mnt); err != nil {
		return nil, err
	}
	mounted = false
	if err := run("mount", "-o", "ro", s.dev, s.mnt); err != nil {
		return nil, err
	}
	mounted = true
	if _, err := os.Stat(s.Path); err != nil {
		return nil, err
	}

	s.cgroup = filepath.Join(blkioRoot, fmt.Sprintf("certwatch-soak-%d-%s", os.Getpid(), filepath.Base(dir)))
	if err := os.Mkdir(s.cgroup, 0o755); err != nil {
		return nil, fmt.Errorf("making the blkio cgroup: %w", err)
	}
	tb.Cleanup(s.release)
	if err := s.limit(readBytesSec); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *SlowRead) limit(bps int) error {
	rule := s.devNum + " " + strconv.Itoa(bps)
	if err := os.WriteFile(filepath.Join(s.cgroup, "blkio.throttle.read_bps_device"), []byte(rule), 0o644); err != nil {
		return fmt.Errorf("throttling %s: %w", s.dev, err)
	}
	return nil
}

// Wrapper returns a script that moves itself into the throttled cgroup and
// then runs bin with its arguments (exec: the process keeps its pid). Start
// the exporter through it so that it is confined before it reads anything:
// certwatch reads its files at start-up, before a Confine after the start
// could catch it. Still call Confine with the pid once started, for the
// cleanup's order.
func (s *SlowRead) Wrapper(tb testing.TB, bin string) string {
	tb.Helper()
	script := filepath.Join(tb.TempDir(), "confined-"+filepath.Base(bin))
	body := fmt.Sprintf("#!/bin/sh\necho $$ > %s || exit 111\nexec %s \"$@\"\n",
		shellQuote(filepath.Join(s.cgroup, "cgroup.procs")), shellQuote(bin))
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		tb.Fatalf("hostile: %v", err)
	}
	return script
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Confine puts process pid into the throttled cgroup: its reads of Path
// stall from now on. Until tb ends: then the throttle is lifted (reads
// waiting in the kernel finish at once, so the process can exit) and the
// process goes back to the root cgroup. Call it after the process was
// started with the same tb, so that this runs before the process is stopped.
func (s *SlowRead) Confine(tb testing.TB, pid int) error {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(s.cgroup, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("moving %d into %s: %w", pid, s.cgroup, err)
	}
	tb.Cleanup(s.release)
	return nil
}

// Release lifts the throttle (reads waiting in the kernel finish at once),
// moves the confined processes back to the root cgroup and removes the
// cgroup. Call it before stopping a confined process: one waiting on a
// throttled read cannot exit until the read completes. It may be called
// more than once; the cleanups call it too.
func (s *SlowRead) Release() { s.release() }

func (s *SlowRead) release() {
	if s.cgroup == "" {
		return
	}
	_ = s.limit(0) // 0 removes the rule; queued reads are dispatched
	if data, err := os.ReadFile(filepath.Join(s.cgroup, "cgroup.procs")); err == nil {
		for _, pid := range strings.Fields(string(data)) {
			_ = os.WriteFile(filepath.Join(blkioRoot, "cgroup.procs"), []byte(pid), 0o644)
		}
	}
	if err := os.Remove(s.cgroup); err == nil || errors.Is(err, os.ErrNotExist) {
		s.cgroup = ""
	}
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
