//go:build !unix

package hostile

import "errors"

// fifoSupported: this platform has no named pipes in the file system; the
// hostile setup leaves its FIFO place out.
const fifoSupported = false

func mkfifo(string) error { return errors.New("named pipes are not supported on this platform") }
