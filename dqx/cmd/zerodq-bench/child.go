package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// selfCommand returns a command that runs this program again with args, as
// one of its subprocesses. Under `go test` the executable is the test binary,
// whose TestMain recognises childEnv and runs args instead of the tests.
func selfCommand(args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.SysProcAttr = childProcAttr()
	return cmd, nil
}

// peakRSSMB is the process's peak resident set size (VmHWM) in MB, or -1
// where /proc/self/status does not exist.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "VmHWM:" && f[2] == "kB" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return -1
			}
			return kb / 1024
		}
	}
	return -1
}

// tail returns the last n bytes of b, for error messages quoting a
// subprocess's output.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// exitError describes how a subprocess ended, quoting the end of its stderr.
func exitError(what string, err error, stderr []byte) error {
	return fmt.Errorf("%s: %w; stderr: %s", what, err, tail(stderr, 2000))
}
