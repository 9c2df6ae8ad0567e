package dq

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
)

// newConsumerID names a consumer process for the registry and for the
// records of the jobs it claims: host/pid/random, so that two consumers of
// one process, or a restarted process that got the same pid, differ.
func newConsumerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [3]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b[:])
}
