//go:build unix

package hostile

import "syscall"

// fifoSupported: the file system has named pipes.
const fifoSupported = true

// mkfifo makes a named pipe; the hostile setup names one explicitly.
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }
