//go:build !unix

package hostile

import "errors"

// errNoFIFO: this platform has no named pipes in the file system; the
// hostile setup leaves its FIFO place out.
var errNoFIFO = errors.New("named pipes are not supported on this platform")

func mkfifo(string) error { return errNoFIFO }
