//go:build !linux || !cgo

package main

import (
	"fmt"
	"os"
)

// timerSlackMain: only Linux has a timer slack (timerslack_linux.go).
func timerSlackMain() int {
	fmt.Fprintln(os.Stderr, "no timer slack on this system")
	return 1
}
