// Package childproc starts the child processes tests and benchmarks run
// (etcd, kube-apiserver, SPIRE, certwatch itself) so that none outlives
// the process that started it, even when that process dies without running
// its cleanups (a -timeout panic, a SIGKILL).
package childproc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Start starts cmd with a parent-death signal (SIGKILL, on the systems that
// have one: Linux, FreeBSD). The signal fires when the *thread* that forked
// the child exits, and Go ends a thread when a goroutine locked to it
// returns, so every child is forked from one goroutine that stays locked to
// its thread for the life of the process. cmd.SysProcAttr is replaced.
func Start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = deathSignal()
	spawner.once.Do(func() {
		spawner.reqs = make(chan request)
		go func() {
			runtime.LockOSThread() // never unlocked
			for r := range spawner.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	r := request{cmd: cmd, err: make(chan error, 1)}
	spawner.reqs <- r
	return <-r.err
}

var spawner struct {
	once sync.Once
	reqs chan request
}

type request struct {
	cmd *exec.Cmd
	err chan error
}

// deathSignal sets Pdeathsig where the field exists; reflection rather than
// build-tagged files, since only a few systems have it.
func deathSignal() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if f := reflect.ValueOf(attr).Elem().FieldByName("Pdeathsig"); f.IsValid() && f.CanSet() && f.CanInt() {
		f.SetInt(int64(syscall.SIGKILL))
	}
	return attr
}

// Process is a child a test harness runs, its output appended to a log
// file shared by its restarts; each start writes a line beginning with a
// marker, so the last run's part of the log can be found.
type Process struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string
	Done    chan struct{} // closed when the process has exited and been reaped
	Err     error         // its exit status, valid once Done is closed
	marker  string
	stopped sync.Once
}

// Spawn starts cmd (Start's way) with its output appended to logPath,
// after a line "<marker> <time>: <name> <args>".
func Spawn(cmd *exec.Cmd, name, logPath, marker string) (*Process, error) {
	p := &Process{Name: name, Cmd: cmd, LogPath: logPath, marker: marker, Done: make(chan struct{})}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	fmt.Fprintf(log, "%s %s: %s %s\n", marker, time.Now().Format(time.RFC3339Nano), name, strings.Join(cmd.Args[1:], " "))
	cmd.Stdout, cmd.Stderr = log, log
	if err := Start(cmd); err != nil {
		return nil, err
	}
	go func() {
		p.Err = cmd.Wait()
		close(p.Done)
	}()
	return p, nil
}

// Stop sends SIGTERM, then SIGKILL if the process has not exited within
// timeout, and waits until it is reaped.
func (p *Process) Stop(timeout time.Duration) {
	p.stopped.Do(func() {
		if p.Exited() {
			return
		}
		if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			_ = p.Cmd.Process.Kill()
		}
		select {
		case <-p.Done:
		case <-time.After(timeout):
			_ = p.Cmd.Process.Kill()
		}
	})
	<-p.Done
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.Done:
		return true
	default:
		return false
	}
}

// PortTaken reports whether the last run's log says it lost a port race.
func (p *Process) PortTaken() bool {
	data, _ := os.ReadFile(p.LogPath)
	if i := bytes.LastIndex(data, []byte(p.marker+" ")); i >= 0 {
		data = data[i:]
	}
	return bytes.Contains(data, []byte("address already in use"))
}
