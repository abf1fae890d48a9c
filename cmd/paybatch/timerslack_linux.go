//go:build linux && cgo

package main

// The binary's timer slack: how late the kernel may wake a thread whose
// timed sleep is due, so that it can serve several wake-ups at once. At a
// paced rate the process is idle between requests and wakes for each
// departure and each answer; every time it does, the Go runtime's sysmon
// thread, which a system call wakes from its deep sleep, polls at 20 µs
// until the process is idle again — 6 of its sleeps a row at 300/s, each a
// system call, and system calls and wake-ups are what costs on a virtual
// machine (#19). A slack of 1 ms (the kernel's default is 50 µs) lets those
// polls and the runtime's other short timed waits end together. A timer
// fires at most that much later than it is due: never earlier, so a
// departure the pacer spaces is never closer to the one before it than the
// pacer said, and the 1 ms is small against the pacer's spacing allowance
// for the network's jitter (pipeline.Pacer).
//
// The slack is each thread's own and new threads inherit their creator's,
// so it is set by a constructor that runs before the Go runtime starts its
// first thread (sysmon among them): every thread of the process has it,
// DuckDB's included. PAYBATCH_TIMER_SLACK_NS sets it in nanoseconds (0
// keeps the slack the process inherited); a value that is not a count of
// nanoseconds is left alone here and refused by run (checkTimerSlack).

/*
#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>

static void paybatch_timer_slack(void) __attribute__((constructor));

static void paybatch_timer_slack(void) {
	unsigned long ns = 1000000UL;
	const char *s = getenv("PAYBATCH_TIMER_SLACK_NS");
	if (s != NULL && *s != '\0') {
		char *end = NULL;
		if (*s < '0' || *s > '9') {
			return;
		}
		errno = 0;
		ns = strtoul(s, &end, 10);
		if (*end != '\0' || errno != 0) {
			return;
		}
	}
	if (ns > 0) {
		prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0);
	}
}

static long paybatch_get_timer_slack(void) {
	return prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
}
*/
import "C"

import "time"

// currentTimerSlack is the calling thread's timer slack.
func currentTimerSlack() time.Duration {
	return time.Duration(C.paybatch_get_timer_slack())
}
