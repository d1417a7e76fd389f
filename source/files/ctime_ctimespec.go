//go:build darwin || freebsd || netbsd

package files

import "syscall"

func changeTime(sys *syscall.Stat_t) int64 { return sys.Ctimespec.Nano() }
