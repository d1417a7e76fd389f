// Package childproc starts the child processes tests and benchmarks run
// (etcd, kube-apiserver, SPIRE, certwatch itself) so that none outlives
// the process that started it, even when that process dies without running
// its cleanups (a -timeout panic, a SIGKILL).
package childproc

import (
	"os/exec"
	"reflect"
	"runtime"
	"sync"
	"syscall"
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
