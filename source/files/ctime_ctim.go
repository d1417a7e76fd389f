//go:build linux || openbsd

package files

import "syscall"

func changeTime(sys *syscall.Stat_t) int64 { return sys.Ctim.Nano() }
