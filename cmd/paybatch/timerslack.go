package main

import (
	"fmt"
	"strconv"
)

// timerSlackEnv sets the process's timer slack in nanoseconds (see
// timerslack_linux.go; other systems ignore it).
const timerSlackEnv = "PAYBATCH_TIMER_SLACK_NS"

// checkTimerSlack refuses a timerSlackEnv that is not a count of
// nanoseconds: the constructor that reads it runs before main and can only
// leave the slack as it was, so the run says why instead of going on with a
// setting the user did not get.
func checkTimerSlack(getenv func(string) string) error {
	s := getenv(timerSlackEnv)
	if s == "" {
		return nil
	}
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return fmt.Errorf("%s=%q: want the timer slack in nanoseconds, e.g. 1000000 for 1 ms, the default (0 keeps the slack the process inherited, normally the kernel's 50 µs)", timerSlackEnv, s)
	}
	return nil
}
