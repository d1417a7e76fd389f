//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/childproc"
)

// procCPU returns the CPU time (user + system) a process has used. It sums
// the nanosecond counters of /proc/PID/task/*/schedstat (the kernel's own
// accounting of time on CPU, per thread), which is far finer than the 10 ms
// ticks of /proc/PID/stat; Go threads do not exit, so no thread's time is
// lost. It falls back on /proc/PID/stat when schedstat is unavailable.
func procCPU(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total time.Duration
	ok := len(tasks) > 0
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that just went
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			ok = false
			break
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			ok = false
			break
		}
		total += time.Duration(ns)
	}
	if ok && total > 0 {
		return total
	}
	return procStatCPU(pid)
}

// procStatCPU is utime + stime from /proc/PID/stat, in 10 ms ticks.
func procStatCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields start after the last ')'.
	s := string(data)
	s = s[strings.LastIndexByte(s, ')')+2:]
	f := strings.Fields(s)
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // CLK_TCK is 100 on Linux
}

// procStatus returns a field of /proc/PID/status in bytes (VmRSS, VmHWM).
func procStatus(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field+":") {
			fs := strings.Fields(line[len(field)+1:])
			if len(fs) > 0 {
				kb, _ := strconv.ParseInt(fs[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// heapAfterGC is the live heap: HeapAlloc right after two full collections
// (the second frees what finalizers and cleanups released in the first).
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// memAfterGC also returns HeapInuse (spans in use, the heap's resident part).
func memAfterGC() (alloc, inuse uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.HeapInuse
}

// child is a process the bench started: the farm, a floor loop, the
// exporter binary. It gets SIGKILL when the bench dies.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *lockedBuffer
	done   chan struct{}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // keep the tail only
		b.buf.Reset()
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startChild starts name with args; its stdin is a pipe the child may watch
// to exit when the bench goes.
func startChild(name string, args ...string) *child {
	cmd := exec.Command(name, args...)
	c := &child{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		fatalf("%v", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		fatalf("%v", err)
	}
	c.stdout = bufio.NewReader(out)
	cmd.Stderr = c.stderr
	if err := childproc.Start(cmd); err != nil {
		fatalf("starting %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	atExit(c.stop)
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the child to go (SIGTERM, stdin closed) and kills it after 10 s.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.stdin.Close()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// readLine reads one line of the child's stdout, failing after timeout.
func (c *child) readLine(timeout time.Duration) string {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := c.stdout.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil && r.s == "" {
			fatalf("%s: %v; its stderr:\n%s", c.cmd.Path, r.err, c.stderr.String())
		}
		return r.s
	case <-time.After(timeout):
		fatalf("%s said nothing for %v; its stderr:\n%s", c.cmd.Path, timeout, c.stderr.String())
	}
	return ""
}

// self is the path of this bench binary, to start its internal subcommands.
func self() string {
	p, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	return p
}

// exitWithParent ends a child subcommand when its parent closes our stdin.
func exitWithParent() {
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		runCleanups()
		os.Exit(0)
	}()
}

// benchTB lets the test helpers (internal/testpki, internal/kubetest) run in
// a program. Methods they do not use are left to the nil embedded TB and
// would panic, which keeps this honest.
type benchTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

func newTB() *benchTB {
	t := &benchTB{}
	atExit(t.close)
	return t
}

func (t *benchTB) Helper()      {}
func (t *benchTB) Name() string { return "bench" }
func (t *benchTB) Failed() bool { t.mu.Lock(); defer t.mu.Unlock(); return t.failed }
func (t *benchTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *benchTB) TempDir() string {
	dir, err := os.MkdirTemp("", "certwatch-bench-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (t *benchTB) Log(args ...any)                 { logf("%s", fmt.Sprint(args...)) }
func (t *benchTB) Logf(format string, args ...any) { logf(format, args...) }
func (t *benchTB) Error(args ...any)               { t.fail(); t.Log(args...) }
func (t *benchTB) Errorf(format string, args ...any) {
	t.fail()
	t.Logf(format, args...)
}
func (t *benchTB) Fatal(args ...any)                 { t.fail(); fatalf("%s", fmt.Sprint(args...)) }
func (t *benchTB) Fatalf(format string, args ...any) { t.fail(); fatalf(format, args...) }
func (t *benchTB) FailNow()                          { t.fail(); fatalf("failed") }
func (t *benchTB) Skipf(format string, args ...any)  { fatalf("cannot run: "+format, args...) }
func (t *benchTB) Skip(args ...any)                  { fatalf("cannot run: %s", fmt.Sprint(args...)) }
func (t *benchTB) fail()                             { t.mu.Lock(); t.failed = true; t.mu.Unlock() }

func (t *benchTB) close() {
	t.mu.Lock()
	cs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}
