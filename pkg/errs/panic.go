package errs

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// PanicError is a panic recovered from a handler (a consumer, a timer, an
// RPC), with the stack where it happened: a bug, reported like any other
// failure instead of crashing the process (SE-9). Its kind is internal.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// Guard runs fn and turns a panic inside it into a *PanicError.
func Guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn()
}

// PanicOf returns err's *PanicError, if it is one.
func PanicOf(err error) (*PanicError, bool) {
	var p *PanicError
	ok := errors.As(err, &p)
	return p, ok
}
