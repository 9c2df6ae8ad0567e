//go:build !linux

package node

const quietLowat = 1024

// quietSupported is false: elsewhere connections are never made quiet.
const quietSupported = false

func setLowat(uintptr, int) {}
