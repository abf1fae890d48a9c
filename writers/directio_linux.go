package writers

import (
	"os"
	"syscall"
)

// setDirectIO turns direct I/O (O_DIRECT) on or off for f; it says whether
// f now has it. A file system that does not take it leaves it off.
func setDirectIO(f *os.File, on bool) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	set := false
	cerr := rc.Control(func(fd uintptr) {
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		if errno != 0 {
			return
		}
		if on {
			flags |= syscall.O_DIRECT
		} else {
			flags &^= syscall.O_DIRECT
		}
		if _, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFL, flags); errno == 0 {
			set = on
		}
	})
	return cerr == nil && set
}
