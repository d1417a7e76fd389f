//go:build unix

package hostile

import "syscall"

// errNoFIFO is what mkfifo says where the file system has no named pipes.
var errNoFIFO error

// mkfifo makes a named pipe; the hostile setup names one explicitly.
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }
