package split

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Spec is one process split mode runs and keeps running.
type Spec struct {
	Name    string   // nats-1, intake-2, proxy … — also its PID file's name
	Path    string   // the binary
	Args    []string // its arguments
	Env     []string // added to the supervisor's environment (the last value of a name wins)
	Addr    string   // the address it serves (banner, health)
	Health  string   // URL answering 200 once it is ready; "" = Addr accepts TCP
	Metrics string   // its Prometheus endpoint, if any
}

// proc is a supervised process: started, restarted when it dies, stopped
// on request.
type proc struct {
	Spec
	runDir, logDir string
	log            *slog.Logger
	stopping       *atomic.Bool // split mode is stopping: no more restarts

	started atomic.Bool

	mu       sync.Mutex
	pid      int
	restarts int

	stop chan struct{} // closed to stop it
	done chan struct{} // closed when it is stopped for good
}

func (p *proc) pidFile() string { return filepath.Join(p.runDir, p.Name+".pid") }
func (p *proc) logFile() string { return filepath.Join(p.logDir, p.Name+".log") }

// PID is the process's current PID (0 between a death and its restart).
func (p *proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// restart delays after a death: short at first, longer while it keeps
// dying at once; reset after it ran for stableAfter.
const (
	minRestartDelay = 200 * time.Millisecond
	maxRestartDelay = 5 * time.Second
	stableAfter     = 10 * time.Second
	stopGrace       = 30 * time.Second
)

// supervise runs the process until stop is closed, restarting it when it
// exits by itself. It holds its OS thread: children get SIGKILL when the
// thread that started them ends (Pdeathsig), so a supervisor killed with
// -9 leaves no process behind.
func (p *proc) supervise(started chan<- error) {
	runtime.LockOSThread()
	defer close(p.done)
	delay := minRestartDelay
	first := true
	for {
		t0 := time.Now()
		cmd, exited, err := p.start()
		if first {
			started <- err
			first = false
			if err != nil {
				return
			}
		}
		if err != nil {
			p.log.Error("cannot restart", "name", p.Name, "err", err)
		} else {
			select {
			case <-p.stop:
				p.terminate(cmd, exited)
				return
			case err := <-exited:
				p.setPID(0)
				if p.stopping.Load() {
					<-p.stop
					_ = os.Remove(p.pidFile())
					return
				}
				p.mu.Lock()
				p.restarts++
				n := p.restarts
				p.mu.Unlock()
				p.log.Warn("process exited; restarting", "name", p.Name, "err", err, "restarts", n, "log", p.logFile())
			}
		}
		if time.Since(t0) > stableAfter {
			delay = minRestartDelay
		}
		select {
		case <-p.stop:
			_ = os.Remove(p.pidFile())
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, maxRestartDelay)
	}
}

func (p *proc) start() (*exec.Cmd, <-chan error, error) {
	logf, err := os.OpenFile(p.logFile(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A group of its own: a Ctrl-C at the terminal reaches the supervisor
	// only, which stops the processes in order (proxy first).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	logf.Close() // the child holds its own descriptor
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p.setPID(cmd.Process.Pid)
	if err := writeAtomic(p.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n")); err != nil {
		p.log.Error("cannot write the PID file", "name", p.Name, "err", err)
	}
	p.log.Info("process started", "name", p.Name, "pid", cmd.Process.Pid)
	return cmd, exited, nil
}

// terminate asks the process to stop (SIGTERM: graceful shutdown) and
// kills it when it has not stopped after stopGrace.
func (p *proc) terminate(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopGrace):
		p.log.Warn("process did not stop in time; killing it", "name", p.Name)
		_ = cmd.Process.Kill()
		<-exited
	}
	p.setPID(0)
	_ = os.Remove(p.pidFile())
}

func (p *proc) setPID(pid int) {
	p.mu.Lock()
	p.pid = pid
	p.mu.Unlock()
}

// Stop stops the process for good and waits for it.
func (p *proc) Stop() {
	if !p.started.Load() {
		return
	}
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// waitReady waits until the process answers its health check.
func (p *proc) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if err := p.check(ctx, client); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return fmt.Errorf("%s is not ready (last: %v); see %s", p.Name, err, p.logFile())
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s stopped", p.Name)
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *proc) check(ctx context.Context, client *http.Client) error {
	if p.Health == "" {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", p.Addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Health, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// writeAtomic writes through a temporary name, so a reader never sees
// half a file.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
