//go:build !linux

package ptimer

import "errors"

func newKernelTimer(func()) (kernelTimer, error) { return nil, errors.New("no kernel timer here") }
